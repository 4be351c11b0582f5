"""Fetch the configured branch of the configured git remote into a cache and check out its head.

Only ``[source] url`` and ``branch`` are ever fetched: a payload's URLs are never used.  The cache is a
normal clone kept between runs, so each fetch is incremental.  The checkout is forced and cleaned
(``git checkout --force`` + ``git clean -ffdx``) so nothing left over from an earlier run, or an
interrupted one, can leak into a publish; symlinks pointing outside the repository are refused,
since the evaluators would otherwise read files of the server.

What the repository contains is hostile, so git runs with nothing it could act on: no system or
global configuration, no hooks, no submodules (``.gitmodules`` is never read), no filters or LFS,
only the usual transport protocols, a timeout on every command, and ``[fetch]`` bounds on the
objects downloaded and on the files of the commit checked out.  A cache that git can no longer use
(interrupted, corrupted, left locked) is deleted and cloned again, once, when the remote answers.
Error messages are git's own reason, with any credentials of the URL masked.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from publisher.config import FetchConfig, SourceConfig
from publisher.redaction import REDACTED, redact

log = logging.getLogger(__name__)

# Settings given on every git command line: they win over the cache's own configuration.
_SAFE_SETTINGS = (
    "core.hooksPath=/dev/null",  # no hook runs, whatever a template or an old cache holds
    "core.fsmonitor=false",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",  # else fetch reads .gitmodules of the checked-out tree
    "diff.external=",
    "credential.helper=",
    "filter.lfs.smudge=", "filter.lfs.clean=", "filter.lfs.process=", "filter.lfs.required=false",
    "protocol.allow=never",
    "protocol.https.allow=always", "protocol.http.allow=always", "protocol.ssh.allow=always",
    "protocol.git.allow=always", "protocol.file.allow=always",
    "gc.autoDetach=false",  # no background process outliving the command and its timeout
    "advice.detachedHead=false",
)
_GIT = ("git", *(part for setting in _SAFE_SETTINGS for part in ("-c", setting)))


class FetchError(Exception):
    """The repository could not be fetched or checked out (the message names URL and branch)."""


class UnsafeCheckoutError(FetchError):
    """The checked-out tree contains a symlink that leaves the repository."""


class TooLargeError(FetchError):
    """The repository or the commit is over a ``[fetch]`` bound."""


@dataclass(frozen=True)
class Checkout:
    """A clean working tree at ``commit``."""

    path: Path
    commit: str
    author_name: str
    author_email: str
    subject: str


def _masked(text: str, source: SourceConfig) -> str:
    """``text`` (git's output) with the URL's credentials hidden, however git spelled them (it may
    quote the URL, or print the user name or the password alone, percent-decoded or not)."""
    if source.url and "://" in source.url:
        userinfo = urlsplit(source.url).netloc.rpartition("@")[0]
        parts = {userinfo, *userinfo.split(":")} if userinfo else set()
        for secret in sorted(parts | {unquote(part) for part in parts}, key=len, reverse=True):
            if len(secret) >= 3:  # a one- or two-letter name would blank out git's words
                text = text.replace(secret, REDACTED)
    return redact(text)


def git_environment(source: SourceConfig) -> dict[str, str]:
    """Environment for git: no prompt, no system or global configuration, no inherited ``GIT_*``
    variable (a hook's ``GIT_DIR`` would redirect every command), the deploy key when configured."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true", "SSH_ASKPASS": "/bin/true",
                "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_LFS_SKIP_SMUDGE": "1",
                "GIT_PROTOCOL_FROM_USER": "0", "GIT_ALLOW_PROTOCOL": "https:http:ssh:git:file",
                "GIT_NO_REPLACE_OBJECTS": "1", "LC_ALL": "C"})
    if source.ssh_key is not None:
        # BatchMode: fail instead of asking; the host key must already be in known_hosts.
        env["GIT_SSH_COMMAND"] = (f"ssh -i {shlex.quote(str(source.ssh_key))} -o IdentitiesOnly=yes "
                                  "-o BatchMode=yes")
    return env


def _describe(source: SourceConfig) -> str:
    return f"{redact(source.url or '')} branch {source.branch}"


def _reason(stderr: str, status: int) -> str:
    """git's own words: its fatal/error lines, else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    chosen = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines[-1:]
    text = "; ".join(chosen) or f"git exited {status}"
    return text[:500]


def _directory_size(path: Path) -> int:
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:  # a temporary file git just renamed
                pass
    return total


def _git(source: SourceConfig, limits: FetchConfig, action: str, *args: str, cwd: Path | str = "/",
         watch: Path | None = None) -> str:
    """Run one hardened git command; its output, or FetchError with git's reason.  With ``watch``,
    the command is stopped once that directory grows over ``limits.max_size``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen([*_GIT, *args], cwd=cwd, env=git_environment(source), stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=err, start_new_session=True)
        except OSError as error:
            raise FetchError(f"cannot {action} {_describe(source)}: cannot run git: {error.strerror}") from error
        deadline = time.monotonic() + limits.timeout
        problem = None
        while True:
            try:
                process.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    problem = FetchError(f"cannot {action} {_describe(source)}: git did not finish within "
                                         f"{limits.timeout:g} s ([fetch] timeout)")
                elif watch is not None and _directory_size(watch) > limits.max_size:
                    problem = TooLargeError(f"cannot {action} {_describe(source)}: the repository is larger than "
                                            f"[fetch] max_size ({limits.max_size} bytes)")
                if problem is not None:
                    os.killpg(process.pid, 9)
                    process.wait()
                    raise problem
        out.seek(0)
        err.seek(0)
        output = out.read().decode("utf-8", "replace")
        if process.returncode != 0:
            detail = _masked(_reason(err.read().decode("utf-8", "replace"), process.returncode), source)
            raise FetchError(f"cannot {action} {_describe(source)}: {detail}")
        return output


def remote_head(source: SourceConfig, limits: FetchConfig = FetchConfig()) -> str | None:
    """The commit the remote branch points at now (``git ls-remote``), or None when it is gone."""
    if not source.url:
        raise FetchError("[source] has no url: nothing to poll")
    output = _git(source, limits, "poll", "ls-remote", "--heads", "--", source.url, f"refs/heads/{source.branch}")
    for line in output.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{source.branch}":
            return sha
    return None


def _open_cache(source: SourceConfig, limits: FetchConfig, cache: Path) -> None:
    """Make ``cache`` a git work tree (an empty template: no sample hooks, nothing else)."""
    if (cache / ".git").is_dir():
        return
    if cache.exists():
        shutil.rmtree(cache)  # a half-made cache, or anything else: it is ours to replace
    cache.mkdir(parents=True)
    _git(source, limits, "prepare the cache for", "init", "--quiet", "--template=", str(cache))


def _check_size(source: SourceConfig, limits: FetchConfig, cache: Path, commit: str) -> None:
    """Refuse a commit with more files or bytes than ``[fetch]`` allows, before writing any of them."""
    listing = _git(source, limits, "list", "ls-tree", "-r", "-l", "-z", "--full-tree", commit, cwd=cache)
    files = size = 0
    for entry in listing.split("\0"):
        fields = entry.split("\t", 1)[0].split()
        if len(fields) == 4 and fields[1] == "blob":
            files += 1
            size += int(fields[3]) if fields[3].isdigit() else 0
    if files > limits.max_files or size > limits.max_size:
        raise TooLargeError(f"commit {commit[:12]} of {_describe(source)} has {files} files and {size} bytes, over "
                            f"[fetch] max_files ({limits.max_files}) or max_size ({limits.max_size}); nothing published")


def _fetch_into(source: SourceConfig, limits: FetchConfig, cache: Path, ref: str | None = None,
                local_ref: str | None = None) -> Checkout:
    branch = source.branch
    remote_ref = ref or f"refs/heads/{branch}"
    tracking = local_ref or f"refs/remotes/origin/{branch}"
    try:
        _open_cache(source, limits, cache)
    except OSError as error:
        raise FetchError(f"cannot prepare the cache {cache}: {error.strerror or error}") from error
    # The URL is given on the command line, never stored in the cache's configuration.
    try:
        _git(source, limits, "fetch", "fetch", "--quiet", "--no-tags", "--prune", "--no-recurse-submodules",
             "--no-write-fetch-head", "--", source.url, f"+{remote_ref}:{tracking}", cwd=cache,
             watch=cache / ".git")
        if _directory_size(cache / ".git") > limits.max_size:  # a fetch too quick for the watch
            raise TooLargeError(f"cannot fetch {_describe(source)}: the repository is larger than [fetch] max_size "
                                f"({limits.max_size} bytes)")
    except TooLargeError:
        shutil.rmtree(cache, ignore_errors=True)  # an oversized download is not worth keeping
        raise
    commit = _git(source, limits, "check out", "rev-parse", "--verify", "--quiet", f"{tracking}^{{commit}}",
                  cwd=cache).strip()
    _check_size(source, limits, cache, commit)
    _git(source, limits, "check out", "checkout", "--quiet", "--force", "--detach", "--no-recurse-submodules",
         commit, cwd=cache)
    _git(source, limits, "check out", "clean", "-ffdxq", cwd=cache)
    escaping = symlinks_leaving(cache)
    if escaping:
        shown = ", ".join(escaping[:5]) + (" …" if len(escaping) > 5 else "")
        raise UnsafeCheckoutError(f"commit {commit[:12]} of {_describe(source)} has symlinks pointing outside "
                                  f"the repository: {shown}; nothing published")
    facts = _git(source, limits, "read", "log", "-1", "--no-show-signature", "--format=%an%x00%ae%x00%s", commit,
                 cwd=cache)
    name, email, subject = (facts.rstrip("\n").split("\0") + ["", "", ""])[:3]
    return Checkout(cache, commit, name, email, subject)


def fetch(source: SourceConfig, cache: Path | None = None, *, limits: FetchConfig = FetchConfig(),
          ref: str | None = None, local_ref: str | None = None) -> Checkout:
    """Fetch ``source.branch`` from ``source.url`` into ``cache`` (default ``source.cache``) and check
    its head out cleanly.  Raises FetchError (UnsafeCheckoutError, TooLargeError).  With ``ref`` (a
    pull request's head ref at the forge, or a commit) that ref is fetched from the same URL, with
    the same hardening and limits, into ``local_ref``."""
    if not source.url:
        raise FetchError("[source] has no url: nothing to fetch")
    cache = Path(cache or source.cache or "var/cache/repository")
    try:
        return _fetch_into(source, limits, cache, ref, local_ref)
    except (UnsafeCheckoutError, TooLargeError):  # the commit's content, not the cache: cloning again won't help
        raise
    except FetchError as error:
        # The remote answering and the branch being there mean the cache is what failed.
        try:
            if remote_head(source, limits) is None:
                raise error
        except FetchError:
            raise error from None
        log.warning("the repository cache %s is unusable (%s); cloning again", cache, error)
        shutil.rmtree(cache, ignore_errors=True)
        return _fetch_into(source, limits, cache, ref, local_ref)


def is_ancestor(cache: Path, commit: str, descendant: str) -> bool:
    """True when ``commit`` is ``descendant`` or one of its ancestors in the cache's history; False
    when either is unknown there (never fetched, or rewritten away by a force-push)."""
    if not (Path(cache) / ".git").is_dir():
        return False
    try:
        _git(SourceConfig(), FetchConfig(timeout=60), "compare", "merge-base", "--is-ancestor", commit, descendant,
             cwd=cache)
    except FetchError:
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
