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


# --- hostile repositories, broken caches, limits ---------------------------------------------------

def gitlink_commit(remote: Remote, files: dict[str, str], path: str, message: str) -> str:
    """Commit ``files`` plus a submodule entry (a gitlink) at ``path`` pointing at the current head."""
    for name, text in files.items():
        (remote.work / name).write_text(text)
    git(remote.work, "add", "-A")
    git(remote.work, "update-index", "--add", "--cacheinfo", f"160000,{git(remote.work, 'rev-parse', 'HEAD')},{path}")
    git(remote.work, "commit", "--quiet", "-m", message)
    git(remote.work, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    return git(remote.work, "rev-parse", "HEAD")


def test_a_gitmodules_with_a_command_never_runs_nor_breaks_later_fetches(remote, tmp_path):
    remote.commit({"zones/a.lua": "1\n"}, "one")
    marker = tmp_path / "submodule-command-ran"
    gitmodules = (f'[submodule "evil"]\n\tpath = evil\n\turl = {remote.bare}\n\tupdate = !touch {marker}\n'
                  f'[submodule "other"]\n\tpath = other\n\turl = ext::sh -c touch% {marker}\n')
    sha = gitlink_commit(remote, {".gitmodules": gitmodules}, "evil", "add a submodule")
    assert fetch(source(remote, tmp_path)).commit == sha
    later = remote.commit({"zones/a.lua": "2\n"}, "two")
    checkout = fetch(source(remote, tmp_path))  # used to fail: invalid value for 'submodule.evil.update'
    assert checkout.commit == later and (checkout.path / "zones/a.lua").read_text() == "2\n"
    assert not marker.exists()
    assert list((checkout.path / "evil").glob("*")) == []  # never cloned into
    assert not (checkout.path / ".git" / "modules").exists()


def test_hooks_filters_and_the_hosts_git_configuration_are_ignored(remote, tmp_path, monkeypatch):
    ran = tmp_path / "ran"
    ran.mkdir()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("post-checkout", "reference-transaction", "post-merge"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {ran}/{hook}\n")
        (hooks / hook).chmod(0o755)
    # A global and a system configuration with hooks, an LFS-like filter and ext:: allowed: none of it applies.
    evil_config = tmp_path / "gitconfig"
    evil_config.write_text(f"[core]\n\thooksPath = {hooks}\n"
                           f"[filter \"lfs\"]\n\tsmudge = sh -c 'touch {ran}/lfs-smudge; cat'\n\trequired = true\n"
                           f"[filter \"tidy\"]\n\tsmudge = sh -c 'touch {ran}/tidy-smudge; cat'\n"
                           f"\tprocess = sh -c 'touch {ran}/tidy-process'\n"
                           "[protocol \"ext\"]\n\tallow = always\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(evil_config))
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(evil_config))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".gitconfig").write_text(evil_config.read_text())
    remote.commit({".gitattributes": "*.lua filter=lfs\n*.zone filter=tidy\n", "zones/a.lua": "version 1\n",
                   "zones/b.zone": "b\n"}, "attributes")
    fetch(source(remote, tmp_path))
    # A hook planted in the cache itself (an older version's template, a tampering user) stays idle too.
    planted = tmp_path / "cache" / ".git" / "hooks"
    planted.mkdir(exist_ok=True)
    for hook in ("post-checkout", "reference-transaction"):
        (planted / hook).write_text(f"#!/bin/sh\ntouch {ran}/planted-{hook}\n")
        (planted / hook).chmod(0o755)
    remote.commit({"zones/a.lua": "version 2\n"}, "two")
    checkout = fetch(source(remote, tmp_path))
    assert (checkout.path / "zones/a.lua").read_text() == "version 2\n"
    assert sorted(path.name for path in ran.iterdir()) == []
    with pytest.raises(FetchError):
        fetch(SourceConfig(url=f"ext::sh -c touch% {ran}/ext", branch="main", cache=tmp_path / "ext-cache"))
    assert not (ran / "ext").exists()


def test_git_variables_of_the_calling_process_do_not_redirect_git(remote, tmp_path, monkeypatch):
    """Started from a hook or a shell with GIT_DIR set, fetch must still work on its own cache."""
    sha = remote.commit({"zones/a.lua": "1\n"}, "one")
    monkeypatch.setenv("GIT_DIR", str(remote.work / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(remote.work))
    assert fetch(source(remote, tmp_path)).commit == sha
    assert git(remote.work, "status", "--porcelain") == ""  # the other repository untouched


def test_a_commit_with_too_many_files_or_bytes_is_refused_before_checkout(remote, tmp_path):
    from publisher.config import FetchConfig
    from publisher.service.fetch import TooLargeError

    remote.commit({f"zones/z{i}.lua": f"{i}\n" for i in range(30)}, "thirty files")
    with pytest.raises(TooLargeError, match=r"has 30 files and \d+ bytes, over \[fetch\] max_files \(20\)"):
        fetch(source(remote, tmp_path), limits=FetchConfig(max_files=20))
    assert not (tmp_path / "cache" / "zones").exists()
    remote.commit({"zones/big.lua": "-- " + "x" * 200_000 + "\n"}, "one big file")
    with pytest.raises(TooLargeError, match=r"max_size \(150000\)"):
        fetch(source(remote, tmp_path), limits=FetchConfig(max_size=150_000))
    assert fetch(source(remote, tmp_path)).path.joinpath("zones/big.lua").stat().st_size > 200_000


def test_a_history_larger_than_max_size_is_not_kept(remote, tmp_path):
    import random

    from publisher.config import FetchConfig
    from publisher.service.fetch import TooLargeError

    noise = random.Random(1).randbytes(600_000).hex()  # incompressible
    remote.commit({"blob.txt": noise}, "a large file")
    remote.commit({"blob.txt": "small now\n"}, "removed again")  # the tree is small, the history is not
    with pytest.raises(TooLargeError, match=r"larger than \[fetch\] max_size \(400000 bytes\)"):
        fetch(source(remote, tmp_path), limits=FetchConfig(max_size=400_000))
    assert not (tmp_path / "cache").exists()


def test_a_broken_cache_is_cloned_again(remote, tmp_path):
    remote.commit({"zones/a.lua": "1\n"}, "one")
    cache = fetch(source(remote, tmp_path)).path
    later = remote.commit({"zones/a.lua": "2\n"}, "two")
    (cache / ".git" / "index.lock").write_text("")  # a checkout killed midway leaves this
    assert fetch(source(remote, tmp_path)).commit == later
    newest = remote.commit({"zones/a.lua": "3\n"}, "three")
    for pack in (cache / ".git" / "objects").rglob("*"):
        if pack.is_file():
            pack.write_bytes(b"garbage")  # a disk error, an interrupted gc
    checkout = fetch(source(remote, tmp_path))
    assert checkout.commit == newest and (checkout.path / "zones/a.lua").read_text() == "3\n"
    (cache / ".git" / "HEAD").write_text("nonsense\n")
    assert fetch(source(remote, tmp_path)).commit == newest
    import shutil
    shutil.rmtree(cache / ".git")
    (cache / "leftover").write_text("not a repository")
    assert fetch(source(remote, tmp_path)).commit == newest


def test_an_unreachable_remote_keeps_the_cache(remote, tmp_path):
    sha = remote.commit({"zones/a.lua": "1\n"}, "one")
    fetch(source(remote, tmp_path))
    moved = remote.bare.with_name("moved.git")
    remote.bare.rename(moved)
    with pytest.raises(FetchError, match="does not appear to be a git repository"):
        fetch(source(remote, tmp_path))
    assert is_ancestor(tmp_path / "cache", sha, sha)  # history still there for the next fetch
    moved.rename(remote.bare)
    assert fetch(source(remote, tmp_path)).commit == sha


def test_gits_reason_is_reported_without_the_urls_credentials(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    url = f"https://deploy:s3cret-token@127.0.0.1:{port}/dns/zones.git"
    for action in (lambda s: fetch(s), remote_head):
        with pytest.raises(FetchError) as raised:
            action(SourceConfig(url=url, branch="main", cache=tmp_path / "cache"))
        message = str(raised.value)
        assert "s3cret-token" not in message and "deploy:" not in message, message
        assert f"https://[redacted]@127.0.0.1:{port}/dns/zones.git branch main" in message
        assert "Failed to connect" in message or "Connection refused" in message, message


def test_a_remote_that_never_answers_times_out(tmp_path):
    import socket

    from publisher.config import FetchConfig

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections, never says a word
        url = f"git://127.0.0.1:{silent.getsockname()[1]}/zones.git"
        with pytest.raises(FetchError, match=r"did not finish within 1 s \(\[fetch\] timeout\)"):
            fetch(SourceConfig(url=url, branch="main", cache=tmp_path / "cache"), limits=FetchConfig(timeout=1))


def test_source_urls_in_fetch_messages_hide_every_userinfo():
    from publisher.redaction import redact as public_url  # the one rule fetch's messages use

    assert public_url("https://user:pw@git.example.org/x.git") == "https://[redacted]@git.example.org/x.git"
    assert public_url("https://ghp_token@github.com/x.git") == "https://[redacted]@github.com/x.git"
    assert public_url("ssh://git@git.example.org/x.git") == "ssh://[redacted]@git.example.org/x.git"
    assert public_url("git@git.example.org:x.git") == "git@git.example.org:x.git"
    assert public_url("/srv/git/zones.git") == "/srv/git/zones.git"
