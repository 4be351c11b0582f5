"""Evaluated zones kept by content: a zone whose files did not change is not evaluated again.

``evaluate_repository`` asks for each zone's ``ZoneEvaluation`` (the validated ``ZoneResult``
and its ``.clones`` copies) under a key that covers everything the result depends on:

* the zone file's bytes, and for a Lua zone the bytes of every template (``templates.lua``,
  ``templates/*.lua``) and every problem reading them;
* the zone's source as the repository listing found it: its name, file, kind, what its
  ``.clones`` and ``<zone>.yml`` say, the layout findings on it, where its file resolves to;
* the evaluation options that apply to it (its default TTL, the maximum TTL, the sandbox limits,
  the size limit, the server whose verdict counts);
* the version of the evaluating code: a hash of ``publisher/zone/**.py``, its ``lua/*.lua``,
  ``publisher/model.py`` and ``publisher/rdata.py``, the Python, dnspython and lupa versions.

A BIND zone's ``$INCLUDE``d files are known only once it has been read, so its entry lists
every path an ``$INCLUDE`` looked at and what it found there (a file and its hash, something
else, nothing); a lookup checks them again and a difference is a miss.

Entries are ``marshal``led plain tuples behind a SHA-256 of the payload, so a corrupt or
truncated entry is a miss, never a crash, and nothing in an entry can run code.  They are written
to a temporary file and renamed (several processes may share the directory), touched when read,
and the least recently used are removed beyond ``max_bytes``.  A zone stopped by a CPU or wall
time limit is not stored: with less load it may pass next time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import marshal
import os
import stat
import sys
import time
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import dns.version

from publisher.model import (Finding, IgnoreRule, ServiceRecord, Zone, ZoneResult, cyclic_gc_paused,
                             records_from_rows)
from publisher.zone.repository import ReadLog, file_signature
from publisher.zone.sandbox import lupa_directory

FORMAT = 1
MAGIC = b"zone-publisher evaluation 1\n"
DEFAULT_MAX_BYTES = 512 << 20
_DIGEST_BYTES = 32
_TOUCH_AFTER = 60.0  # seconds: an entry read more often is not touched again (one write saved per hit)
_STALE_TEMPORARY = 3600.0  # seconds after which a temporary file is an interrupted write

# Findings that say more about the machine's load at the time than about the zone's files: a zone
# with one is evaluated again next time (codes of lua_zone._LIMIT_CODES, bind_zone, sandbox).
TRANSIENT_CODES = frozenset({"lua-cpu-limit", "lua-time-limit", "lua-process-limit", "lua-limit",
                             "lua-sandbox-failure", "zone-cpu-limit", "zone-file-unreadable", "file-unreadable"})


class ZoneEvaluation(NamedTuple):
    """What evaluating one zone source produced: the zone, validated, with the findings of the
    repository listing on it; and one result per ``.clones`` entry that is cloned."""

    result: ZoneResult
    clones: tuple[ZoneResult, ...] = ()

    @property
    def transient(self) -> bool:
        """True when a finding depends on load (a time limit), so the evaluation is not kept."""
        return any(f.code in TRANSIENT_CODES for f in self.result.findings)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the code that turns files into ``ZoneResult``s, and of the versions of what it
    runs on: an upgrade invalidates every entry."""
    zone_dir = Path(__file__).parent
    package = zone_dir.parent
    files = sorted(zone_dir.rglob("*.py")) + sorted((zone_dir / "lua").glob("*.lua")) + \
        [package / "model.py", package / "rdata.py"]
    digest = hashlib.sha256()
    for path in files:
        data = path.read_bytes()
        digest.update(f"{path.relative_to(package).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    digest.update(f"{sys.version}\0{dns.version.version}\0{_installed(lupa_directory())}".encode())
    return digest.hexdigest()


def _installed(directory: Path | None) -> list:
    """The files of an installed package by name, size and modification time: they change when it is
    upgraded (cheaper than asking importlib.metadata, which reads every distribution's metadata)."""
    if directory is None:
        return []
    try:
        with os.scandir(directory) as listing:
            return sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in listing if e.is_file())
    except OSError:
        return []


def entry_key(*parts: object) -> str:
    """The key of an entry: the SHA-256 of ``parts`` (JSON of strings, numbers and lists) and the
    code version.  The caller names everything the result depends on (see ``evaluate``)."""
    text = json.dumps([FORMAT, code_version(), *parts], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_with_signature(path: Path, max_bytes: int) -> tuple[bytes, Path, tuple[int, ...]] | None:
    """The bytes of the regular file ``path`` (at most ``max_bytes``), the path it resolves to and
    its ``bind_zone.file_signature``; None when it cannot be read that way (the evaluation that
    follows reports why; such a zone is not cached)."""
    try:
        resolved = path.resolve()
        descriptor = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, RuntimeError):
        return None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_size > max_bytes:
            return None
        chunks = []
        left = status.st_size + 1
        while left > 0:
            chunk = os.read(descriptor, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) != status.st_size:
            return None  # changed while being read
        return data, resolved, file_signature(status)
    except OSError:
        return None
    finally:
        os.close(descriptor)


class EvaluationCache:
    """The entries of one directory (created when first written)."""

    def __init__(self, directory: Path | str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._stored = False

    # -- reading --------------------------------------------------------------------------------

    def load(self, key: str, repo: Path) -> ZoneEvaluation | None:
        """The evaluation stored under ``key``, or None when there is none, it is corrupt, or one
        of the files its ``$INCLUDE``s looked at is not as it was."""
        found = self._load(key, repo)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def _load(self, key: str, repo: Path) -> ZoneEvaluation | None:
        path = self.directory / key
        try:
            with open(path, "rb") as handle:
                data = handle.read()
                modified = os.fstat(handle.fileno()).st_mtime
                if time.time() - modified > _TOUCH_AFTER:
                    os.utime(handle.fileno())  # least recently used goes first when pruning
        except OSError:
            return None
        payload = _verified_payload(data)
        if payload is None:
            return None
        try:
            with cyclic_gc_paused():
                version, stored_key, dependencies, result, clones = marshal.loads(payload)
            if version != FORMAT or stored_key != key:
                return None
            if dependencies and _dependencies(repo, (Path(repo, p) for p, _ in dependencies)) != \
                    [tuple(state) for _, state in dependencies]:
                return None
            return ZoneEvaluation(_decode_result(result), tuple(map(_decode_result, clones)))
        except (ValueError, TypeError, EOFError, IndexError, KeyError, OverflowError, OSError):
            return None

    # -- writing --------------------------------------------------------------------------------

    def store(self, key: str, evaluation: ZoneEvaluation, repo: Path, *,
              read: Sequence[tuple[Path, tuple[int, ...]]] = (), log: ReadLog | None = None) -> bool:
        """Keep ``evaluation`` under ``key``; ``read`` are the files hashed into the key with
        their signatures when hashed, ``log`` what a BIND read looked at.  Nothing is stored (False)
        when the evaluation depends on load, or a file changed while it was evaluated."""
        if evaluation.transient:
            return False
        dependencies: list[tuple[str, tuple]] = []
        if log is not None:
            hashed = dict(read)
            probed = list(dict.fromkeys(log.probed))
            try:
                relative = [p.relative_to(repo).as_posix() for p in probed]
            except ValueError:
                return False
            states = _dependencies(repo, probed, signatures=hashed)
            for path, signature in log.opened:
                if hashed.get(path, signature) != signature:
                    return False  # changed between the read and the hash
                if path not in hashed:
                    return False  # opened but never probed: not a file the cache can check
            dependencies = list(zip(relative, states))
        with cyclic_gc_paused():  # a tuple per record, none in a cycle
            payload = marshal.dumps((FORMAT, key, tuple(dependencies), _encode_result(evaluation.result),
                                     tuple(map(_encode_result, evaluation.clones))))
        self._write(key, MAGIC + hashlib.sha256(payload).digest() + payload)
        return True

    def _write(self, key: str, data: bytes) -> None:
        # A name no other writer uses (O_EXCL makes sure), without importing tempfile on every plan.
        temporary = self.directory / f".tmp-{os.getpid()}-{time.monotonic_ns()}-{key[:16]}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError:
            return  # a cache that cannot be written is a cache that misses
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.replace(temporary, self.directory / key)
            self._stored = True
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass

    def prune(self) -> None:
        """Remove the least recently used entries beyond ``max_bytes`` (and interrupted writes);
        only after this process stored something, so a run of hits lists nothing."""
        if not self._stored:
            return
        self._stored = False
        entries = []
        now = time.time()
        try:
            with os.scandir(self.directory) as listing:
                for entry in listing:
                    try:
                        status = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if entry.name.startswith(".tmp-"):
                        if now - status.st_mtime > _STALE_TEMPORARY:
                            _unlink(entry.path)
                        continue
                    entries.append((status.st_mtime, status.st_size, entry.path))
        except OSError:
            return
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            _unlink(path)
            total -= size


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # another process pruned it first


def _verified_payload(data: bytes) -> bytes | None:
    header = len(MAGIC) + _DIGEST_BYTES
    if len(data) < header or not data.startswith(MAGIC):
        return None
    payload = data[header:]
    if hashlib.sha256(payload).digest() != data[len(MAGIC):header]:
        return None
    return payload


def _dependencies(repo: Path, probed: Iterable[Path],
                  signatures: dict[Path, tuple[int, ...]] | None = None) -> list[tuple]:
    """What each probed path resolves to now: ``("outside",)`` the repository, or (the resolved
    path relative to the repository, "absent" | "other" | "file", the file's SHA-256).  With
    ``signatures``, each file hashed is added to it (resolved path -> signature)."""
    states: list[tuple] = []
    for path in probed:
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError):
            states.append(("unresolvable",))
            continue
        if not resolved.is_relative_to(repo):
            states.append(("outside",))
            continue
        where = resolved.relative_to(repo).as_posix()
        if not resolved.exists():
            states.append((where, "absent"))
            continue
        found = read_with_signature(resolved, 1 << 62)
        if found is None:
            states.append((where, "other"))
            continue
        data, _, signature = found
        if signatures is not None:
            signatures.setdefault(resolved, signature)
        states.append((where, "file", content_digest(data)))
    return states


# -- the entry format: plain tuples of strings and numbers -------------------------------------------

def _encode_result(result: ZoneResult) -> tuple:
    zone = result.zone
    encoded_zone = None
    if zone is not None:
        encoded_zone = (zone.origin, tuple(map(tuple, zone.records)), zone.file, zone.secondaries,
                        zone.secondary_nameservers, tuple(map(tuple, zone.ignores)),
                        tuple(map(tuple, zone.services)), zone.clone_of, zone.kind)
    return (result.origin, result.file, tuple(map(tuple, result.findings)), encoded_zone)


_new_finding = functools.partial(tuple.__new__, Finding)


def _decode_result(encoded: tuple) -> ZoneResult:
    origin, file, findings, encoded_zone = encoded
    if not all(len(f) == len(Finding._fields) for f in findings):
        raise ValueError("a finding of another shape")
    zone = None
    if encoded_zone is not None:
        z_origin, records, z_file, secondaries, secondary_ns, ignores, services, clone_of, kind = encoded_zone
        zone = Zone(z_origin, records_from_rows(records), z_file, tuple(secondaries), tuple(secondary_ns),
                    tuple(IgnoreRule(*i) for i in ignores), tuple(ServiceRecord(*s) for s in services),
                    clone_of, kind)
    return ZoneResult(origin, file, zone, tuple(map(_new_finding, findings)))
