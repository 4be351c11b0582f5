"""Fetching from a real git remote (a bare repository on disk, pushed to with the git command)."""

import os
import subprocess
from pathlib import Path

import pytest

from publisher.config import SourceConfig
from publisher.service.fetch import (FetchError, UnsafeCheckoutError, fetch, git_environment, is_ancestor, remote_head,
                             symlinks_leaving)

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "Alice Example", "GIT_AUTHOR_EMAIL": "alice@example.org",
           "GIT_COMMITTER_NAME": "Alice Example", "GIT_COMMITTER_EMAIL": "alice@example.org"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout.strip()


class Remote:
    """A bare repository and a working clone that commits and pushes to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "remote.git"
        self.work = root / "work"
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        git(root, "clone", "--quiet", str(self.bare), str(self.work))
        git(self.work, "checkout", "--quiet", "-B", "main")

    def commit(self, files: dict[str, str], message: str, branch: str = "main") -> str:
        git(self.work, "checkout", "--quiet", "-B", branch)
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "-m", message)
        git(self.work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        return git(self.work, "rev-parse", "HEAD")

    def link(self, name: str, target: str, message: str) -> str:
        (self.work / name).symlink_to(target)
        return self.commit({}, message)


@pytest.fixture
def remote(tmp_path):
    return Remote(tmp_path)


def source(remote: Remote, tmp_path: Path, branch: str = "main") -> SourceConfig:
    return SourceConfig(url=str(remote.bare), branch=branch, cache=tmp_path / "cache")


def test_fetch_checks_out_the_branch_head_with_its_author(remote, tmp_path):
    sha = remote.commit({"zones/example.com.lua": "a(_a, '192.0.2.1')\n"}, "Add example.com")
    checkout = fetch(source(remote, tmp_path))
    assert checkout.commit == sha
    assert (checkout.author_name, checkout.author_email, checkout.subject) == ("Alice Example", "alice@example.org",
                                                                                 "Add example.com")
    assert (checkout.path / "zones/example.com.lua").read_text() == "a(_a, '192.0.2.1')\n"
    assert remote_head(source(remote, tmp_path)) == sha


def test_incremental_fetch_and_clean_checkout(remote, tmp_path):
    remote.commit({"zones/a.lua": "1\n", "zones/b.lua": "1\n"}, "one")
    first = fetch(source(remote, tmp_path))
    # Leftovers from an earlier (or interrupted) run must not survive.
    (first.path / "zones/a.lua").write_text("tampered\n")
    (first.path / "zones/stray.lua").write_text("left over\n")
    (first.path / "build").mkdir()
    second_sha = remote.commit({"zones/b.lua": "2\n"}, "two")
    second = fetch(source(remote, tmp_path))
    assert second.commit == second_sha and second.path == first.path
    assert (second.path / "zones/a.lua").read_text() == "1\n"
    assert (second.path / "zones/b.lua").read_text() == "2\n"
    assert not (second.path / "zones/stray.lua").exists() and not (second.path / "build").exists()


def test_only_the_configured_branch_is_fetched(remote, tmp_path):
    main = remote.commit({"zones/a.lua": "main\n"}, "main")
    other = remote.commit({"zones/a.lua": "feature\n"}, "feature work", branch="feature")
    checkout = fetch(source(remote, tmp_path))
    assert checkout.commit == main
    refs = git(checkout.path, "for-each-ref", "--format=%(refname)")
    assert "refs/remotes/origin/main" in refs and "feature" not in refs
    assert subprocess.run(["git", "cat-file", "-e", other], cwd=checkout.path, capture_output=True).returncode != 0


def test_missing_branch_and_unreachable_remote_are_clear_errors(remote, tmp_path):
    remote.commit({"a": "1"}, "one")
    with pytest.raises(FetchError, match="branch gone"):
        fetch(source(remote, tmp_path, branch="gone"))
    assert remote_head(source(remote, tmp_path, branch="gone")) is None
    missing = SourceConfig(url=str(tmp_path / "nowhere.git"), branch="main", cache=tmp_path / "c2")
    with pytest.raises(FetchError, match="nowhere.git"):
        fetch(missing)


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside", "../.git/config"])
def test_symlinks_leaving_the_repository_are_rejected(remote, tmp_path, target):
    remote.commit({"zones/a.lua": "1\n"}, "one")
    remote.link("zones/evil.lua", target, "sneaky")
    with pytest.raises(UnsafeCheckoutError, match="zones/evil.lua"):
        fetch(source(remote, tmp_path))


def test_symlinks_inside_the_repository_are_fine(remote, tmp_path):
    remote.commit({"zones/a.lua": "1\n"}, "one")
    sha = remote.link("zones/b.lua", "a.lua", "alias file")
    assert fetch(source(remote, tmp_path)).commit == sha
    assert symlinks_leaving(tmp_path / "cache") == []


def test_remote_url_change_in_configuration_is_followed(remote, tmp_path):
    remote.commit({"a": "1"}, "one")
    fetch(source(remote, tmp_path))
    other = Remote(tmp_path / "second")
    sha = other.commit({"b": "2"}, "elsewhere")
    assert fetch(SourceConfig(url=str(other.bare), branch="main", cache=tmp_path / "cache")).commit == sha


def test_deploy_key_goes_to_git_ssh_command(tmp_path):
    key = tmp_path / "deploy key"
    env = git_environment(SourceConfig(url="git@git.example.org:dns/zones.git", ssh_key=key))
    assert env["GIT_SSH_COMMAND"] == f"ssh -i '{key}' -o IdentitiesOnly=yes -o BatchMode=yes"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert "GIT_SSH_COMMAND" not in git_environment(SourceConfig(url="https://example.org/x.git"))


def test_is_ancestor_knows_the_fetched_history(remote, tmp_path):
    first = remote.commit({"a": "1"}, "one")
    second = remote.commit({"a": "2"}, "two")
    fetch(source(remote, tmp_path))
    cache = tmp_path / "cache"
    assert is_ancestor(cache, first, second) and is_ancestor(cache, second, second)
    assert not is_ancestor(cache, second, first)
    assert not is_ancestor(cache, "f" * 40, second)  # never fetched
    assert not is_ancestor(tmp_path / "no-cache", first, second)
