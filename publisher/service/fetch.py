"""Fetch the configured branch of the configured git remote into a cache and check out its head.

Only ``[source] url`` and ``branch`` are ever fetched: a payload's URLs are never used.  The cache is a
normal clone kept between runs, so each fetch is incremental.  The checkout is forced and cleaned
(``git checkout --force`` + ``git clean -ffdx``) so nothing left over from an earlier run, or an
interrupted one, can leak into a publish; symlinks pointing outside the repository are refused,
since the evaluators would otherwise read files of the server.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import git

from publisher.config import SourceConfig


class FetchError(Exception):
    """The repository could not be fetched or checked out (the message names URL and branch)."""


class UnsafeCheckoutError(FetchError):
    """The checked-out tree contains a symlink that leaves the repository."""


@dataclass(frozen=True)
class Checkout:
    """A clean working tree at ``commit``."""

    path: Path
    commit: str
    author_name: str
    author_email: str
    subject: str


def git_environment(source: SourceConfig) -> dict[str, str]:
    """Environment for git: never prompt; use the deploy key when one is configured."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true", "SSH_ASKPASS": "/bin/true"}
    if source.ssh_key is not None:
        # BatchMode: fail instead of asking; the host key must already be in known_hosts.
        env["GIT_SSH_COMMAND"] = (f"ssh -i {shlex.quote(str(source.ssh_key))} -o IdentitiesOnly=yes "
                                  "-o BatchMode=yes")
    return env


def _describe(source: SourceConfig) -> str:
    return f"{source.url} branch {source.branch}"


def _git_error(source: SourceConfig, action: str, error: git.GitCommandError) -> FetchError:
    detail = (error.stderr or "").strip().replace("stderr: ", "").strip("'\n ")
    lines = [line for line in detail.splitlines() if line.strip()]
    return FetchError(f"cannot {action} {_describe(source)}: {lines[-1] if lines else f'git exit {error.status}'}")


def remote_head(source: SourceConfig) -> str | None:
    """The commit the remote branch points at now (``git ls-remote``), or None when it is gone."""
    if not source.url:
        raise FetchError("[source] has no url: nothing to poll")
    try:
        output = git.Git().execute(["git", "ls-remote", "--heads", "--", source.url, f"refs/heads/{source.branch}"],
                                   env={**os.environ, **git_environment(source)})
    except git.GitCommandError as error:
        raise _git_error(source, "poll", error) from error
    for line in output.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{source.branch}":
            return sha
    return None


def _open_cache(source: SourceConfig, cache: Path) -> git.Repo:
    if (cache / ".git").is_dir():
        repo = git.Repo(cache)
    else:
        cache.mkdir(parents=True, exist_ok=True)
        repo = git.Repo.init(cache)
    if "origin" in [remote.name for remote in repo.remotes]:
        if repo.remotes.origin.url != source.url:
            repo.git.remote("set-url", "origin", source.url)
    else:
        repo.git.remote("add", "origin", source.url)
    return repo


def fetch(source: SourceConfig, cache: Path | None = None) -> Checkout:
    """Fetch ``source.branch`` from ``source.url`` into ``cache`` (default ``source.cache``) and check
    its head out cleanly.  Raises FetchError (or UnsafeCheckoutError)."""
    if not source.url:
        raise FetchError("[source] has no url: nothing to fetch")
    cache = Path(cache or source.cache or "var/cache/repository")
    branch = source.branch
    tracking = f"refs/remotes/origin/{branch}"
    try:
        repo = _open_cache(source, cache)
    except (git.GitCommandError, git.InvalidGitRepositoryError, OSError) as error:
        raise FetchError(f"cannot prepare the cache {cache}: {error}") from error
    try:
        with repo.git.custom_environment(**git_environment(source)):
            repo.git.fetch("--no-tags", "--prune", "origin", f"+refs/heads/{branch}:{tracking}")
    except git.GitCommandError as error:
        raise _git_error(source, "fetch", error) from error
    try:
        commit = repo.git.rev_parse("--verify", f"{tracking}^{{commit}}")
        repo.git.checkout("--force", "--detach", commit)
        repo.git.clean("-ffdx")
        head = repo.commit(commit)
    except git.GitCommandError as error:
        raise _git_error(source, "check out", error) from error
    escaping = symlinks_leaving(cache)
    if escaping:
        shown = ", ".join(escaping[:5]) + (" …" if len(escaping) > 5 else "")
        raise UnsafeCheckoutError(f"commit {commit[:12]} of {_describe(source)} has symlinks pointing outside "
                                  f"the repository: {shown}; nothing published")
    return Checkout(cache, commit, head.author.name or "", head.author.email or "", head.summary)


def is_ancestor(cache: Path, commit: str, descendant: str) -> bool:
    """True when ``commit`` is ``descendant`` or one of its ancestors in the cache's history; False
    when either is unknown there (never fetched, or rewritten away by a force-push)."""
    try:
        git.Repo(cache).git.merge_base("--is-ancestor", commit, descendant)
    except (git.GitCommandError, git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return False
    return True


def symlinks_leaving(root: Path) -> list[str]:
    """Repository-relative paths of symlinks whose target resolves outside ``root`` (or loops)."""
    root = Path(os.path.realpath(root))
    found = []
    for directory, subdirectories, files in os.walk(root):
        if directory == str(root) and ".git" in subdirectories:
            subdirectories.remove(".git")
        for name in subdirectories + files:
            path = Path(directory) / name
            if not path.is_symlink():
                continue
            try:
                target = Path(os.path.realpath(path, strict=False))
            except (OSError, RuntimeError):
                found.append(str(path.relative_to(root)))
                continue
            inside_git = target == root / ".git" or root / ".git" in target.parents
            if inside_git or (target != root and root not in target.parents):
                found.append(str(path.relative_to(root)))
    return sorted(found)
