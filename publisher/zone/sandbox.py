"""The Lua sandbox: zone code runs in a worker process, in a fresh Lua 5.1 runtime per zone.

Lua 5.1 (``lupa.lua51``) because LuaDNS runs 5.1: its zone files observe exactly what 5.1 gives
them (number formatting, ``unpack``, the library, error messages); tests/test_sandbox.py holds
that to Debian's ``lua5.1``.

Three layers hold it in:

1. **The Lua environment** (``lua/prelude.lua``): zone code sees only safe library copies and the
   record functions, which are written in Lua; no Python object or callable is ever put in reach,
   and the runtime is created with ``register_eval=False, register_builtins=False`` and an
   attribute filter that refuses everything.  A count hook enforces CPU time (also inside
   ``pcall`` and coroutines), lupa's ``max_memory`` bounds memory, the prelude counts records.
2. **The worker process**: a separate Python started with ``-I -S`` (no site module, so no
   ``.pth`` file runs in it) and an empty environment (so no secrets), with ``RLIMIT_AS`` and
   ``RLIMIT_CPU`` set per zone.  A C call that no hook can interrupt (a pathological pattern
   match) is killed by the kernel or by the parent.
3. **The parent's wall clock**: if no answer arrives in ``wall_seconds`` the parent kills the
   worker, reports that zone as failed, and starts a fresh worker for the next one.

Parent and worker speak length-prefixed frames over pipes: a JSON header plus raw bytes, never
pickle, so even a subverted worker cannot make the parent run code.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import select
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

LUA_DIR = Path(__file__).parent / "lua"


@dataclass(frozen=True)
class SandboxLimits:
    """Per-zone limits (``[sandbox]`` in the configuration).  The defaults let a 1,000,000-record
    zone of plain record calls through (see bench/README.md for what it takes) and stop an endless
    loop within seconds, so one bad zone does not hold up a CI run for long."""

    cpu_seconds: float = 10.0  # Lua CPU time (instruction hook), compile included
    memory_bytes: int = 1 << 30  # Lua heap (lupa max_memory)
    max_records: int = 2_000_000
    wall_seconds: float = 60.0  # hard limit: the parent kills the worker after this
    process_memory_bytes: int = 0  # RLIMIT_AS of the worker; 0 = derived from memory_bytes


@dataclass(frozen=True)
class Chunk:
    """One Lua source to run: ``name`` is how errors and records refer to it (repo-relative)."""

    name: str
    source: bytes


@dataclass(frozen=True)
class SandboxResult:
    """Raw outcome of one zone, as the worker reports it.

    ``status``: "ok", "syntax" (``error`` = chunk number TAB message), "error" (a Lua error),
    or "killed" (the worker died or was killed: ``error`` says why).  ``limit`` is "", "cpu",
    "memory", "records", "wall" or "process".  ``compiled`` says how the zone file was compiled:
    "whole", or "split" (``split_constant_tables``).  ``columns`` holds the prelude's tab/newline
    separated columns (see ``lua_zone``), keyed by name.
    """

    status: str
    error: str = ""
    limit: str = ""
    limit_message: str = ""
    limit_chunk: int = 0
    limit_line: int = 0
    count: int = 0
    finding_count: int = 0
    compiled: str = ""
    columns: dict[str, bytes] | None = None


# The fields of the table `run` in prelude.lua returns: the header values, then the columns.
HEADER_FIELDS = {"status": "status", "error": "error", "limit": "limit", "limit_message": "limit_message",
                 "limit_file": "limit_chunk", "limit_line": "limit_line", "count": "count",
                 "finding_count": "finding_count", "compiled": "compiled"}
COLUMN_NAMES = ("names", "types", "ttls", "datas", "files", "lines", "fix", "findings", "services", "ignores",
                "secondaries", "secondary_ns")


# --------------------------------------------------------------------------------------------
# Huge zone files: one constant table per closure
# --------------------------------------------------------------------------------------------
# A Lua 5.1 function holds at most 2^18 - 1 constants, so a generated file of a million record
# calls does not compile ("constant table overflow"; LuaDNS's Lua 5.1 refuses it too).  For big
# files the worker also hands the prelude a rewritten source in which runs of whole-line literal
# record calls are wrapped, on their own lines, in `if true then (function() ... end)() end`, so
# each closure has a constant table of its own.  The prelude compiles the rewrite and, if it
# does not compile, the file as written (whose error is then reported).
#
# Why the rewrite means the same: in each run of at least three consecutive call lines that start
# in code (not inside a long string, a long comment or a string continued over a line), only the
# lines strictly inside the run are wrapped.  The line before the wrapper is a complete call and
# the line after it starts with a name, so `if` can only stand where a statement starts, and if
# the rewrite compiles, the original compiles with the same statements in its place.  The wrapped
# statements are calls of record-function names with literal arguments: they declare no local,
# use no `...`, `return` or `break`, and name at most 17 variables (a global stays a global, a
# local becomes an upvalue of the same variable), so running them in an immediately called
# closure has the same effect.  What differs is invisible to zone files without `debug`: one more
# stack frame (an `error(message, 3)` in a user-redefined record function would name another
# line) and "upvalue" instead of "local" in the message when such a variable holds nil.

SPLIT_THRESHOLD = 512 << 10  # bytes: smaller files cannot hold 2^18 constants in practice
LINES_PER_CLOSURE = 10_000  # at most 9 constants a line: well under 2^18 per closure
_LITERAL = rb"""(?:"[^"\\\n]*"|'[^'\\\n]*'|[0-9]+)"""
_CALL_LINE = (rb"[ \t]*(?:a|aaaa|cname|ns|ptr|txt|spf|mx|srv|caa|sshfp|tlsa|ds|alias|dname|https|svcb)"
              rb"[ \t]*\([ \t]*" + _LITERAL + rb"(?:[ \t]*,[ \t]*" + _LITERAL + rb"){0,7}[ \t]*\)[ \t]*;?[ \t\r]*\n")
_CALL_RUN = re.compile(rb"^(?:" + _CALL_LINE + rb"){3,%d}" % LINES_PER_CLOSURE, re.MULTILINE)
# Where a token that can span lines, or hide code, may start; and the whole token.
_TOKEN_START = re.compile(rb"""--|\[=*\[|["']""")
_LONG_BRACKET = re.compile(rb"\[(=*)\[.*?\]\1\]", re.DOTALL)
_LONG_OPEN = re.compile(rb"\[=*\[")
_LINE_COMMENT = re.compile(rb"--[^\n]*")
_SHORT_STRING = re.compile(rb""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'""", re.DOTALL)
OPEN_CLOSURE, CLOSE_CLOSURE = b"if true then (function() ", b" end)() end"


def _token_end(source: bytes, start: int) -> int:
    """End of the string or comment starting at ``start``; -1 if it never ends."""
    if source.startswith(b"--", start):
        long = _LONG_BRACKET.match(source, start + 2)
        if long:
            return long.end()
        if _LONG_OPEN.match(source, start + 2):
            return -1  # an unfinished long comment
        return _LINE_COMMENT.match(source, start).end()
    match = (_LONG_BRACKET if source[start] == 0x5B else _SHORT_STRING).match(source, start)
    return match.end() if match else -1


def split_constant_tables(source: bytes) -> bytes | None:
    """``source`` with its runs of literal call lines wrapped in closures (line numbers kept), or
    None when nothing would be wrapped or the file cannot be read that way (see above)."""
    parts, copied, code_from, wrapped = [], 0, 0, 0
    for run in _CALL_RUN.finditer(source):
        start, end = run.span()
        # Is `start` in code?  Skip over strings and comments between the last known point and it.
        position = code_from
        while position < start:
            token = _TOKEN_START.search(source, position, start)
            if token is None:
                break
            position = _token_end(source, token.start())
            if position < 0:
                return None
        if position > start:  # the run begins inside a string or comment: leave it alone
            code_from = position
            continue
        code_from = end
        second = source.index(b"\n", start) + 1
        last = source.rindex(b"\n", start, end - 1) + 1
        parts += [source[copied:second], OPEN_CLOSURE, source[second:last - 1], CLOSE_CLOSURE]
        copied = last - 1
        wrapped += 1
    if not wrapped:
        return None
    parts.append(source[copied:])
    return b"".join(parts)


# --------------------------------------------------------------------------------------------
# Framing (both sides)
# --------------------------------------------------------------------------------------------


def _write_frame(fd: int, header: dict, payload: bytes | Sequence[bytes] = b"") -> None:
    """One frame; ``payload`` may come in parts (written one after the other, never joined)."""
    parts = [payload] if isinstance(payload, bytes) else payload
    data = json.dumps(header).encode()
    _write_all(fd, struct.pack(">IQ", len(data), sum(map(len, parts))) + data)
    for part in parts:
        _write_all(fd, part)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes | None:
    """``size`` bytes from ``fd``; None on EOF; TimeoutError past ``deadline`` (monotonic)."""
    parts = []
    remaining = size
    while remaining:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(remaining, 1 << 24))
        if not chunk:
            return None
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _read_frame(fd: int, deadline: float | None = None) -> tuple[dict, bytes] | None:
    head = _read_exactly(fd, 12, deadline)
    if head is None:
        return None
    header_size, payload_size = struct.unpack(">IQ", head)
    header = _read_exactly(fd, header_size, deadline)
    payload = _read_exactly(fd, payload_size, deadline) if payload_size else b""
    if header is None or payload is None:
        return None
    return json.loads(header), payload


# --------------------------------------------------------------------------------------------
# Worker side
# --------------------------------------------------------------------------------------------


def _deny_attribute(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("zone code cannot access Python objects")


def evaluate_in_process(origin: str, chunks: Sequence[Chunk], *, default_ttl: int, limits: SandboxLimits,
                        split_threshold: int = SPLIT_THRESHOLD) -> SandboxResult:
    """Run ``chunks`` (templates then the zone) in a fresh runtime in THIS process.

    Only the worker calls this: without the process-level limits a C-level hang would hang the
    caller.  Exposed for the worker and for debugging.  A zone file longer than
    ``split_threshold`` bytes is also offered split into closures (``split_constant_tables``).
    """
    # Lua 5.1, as on LuaDNS: zone files observe exactly what 5.1 gives them.
    from lupa import lua51  # imported here: only the worker needs Lua

    runtime = lua51.LuaRuntime(
        encoding=None,
        register_eval=False,
        register_builtins=False,
        unpack_returned_tuples=False,
        attribute_filter=_deny_attribute,
        max_memory=limits.memory_bytes,
    )
    try:
        loader = runtime.eval("function(source) return assert(loadstring(source, '=(prelude)'))() end")
        run = loader((LUA_DIR / "prelude.lua").read_bytes())
        loader = None
        zone = chunks[-1].source if chunks else b""
        split = split_constant_tables(zone) if len(zone) > split_threshold else None
        # In a table, not as arguments: the prelude drops each source once compiled.
        sources = runtime.table_from([chunk.source for chunk in chunks] + ([split] if split else []))
        names = runtime.table_from([chunk.name.encode() for chunk in chunks])
        split = zone = None
        table = run(origin.encode(), default_ttl, limits.max_records, float(limits.cpu_seconds),
                    (LUA_DIR / "builtin_templates.lua").read_bytes(), names, sources)
        sources = names = None
        values = {field: table[field.encode()] for field in HEADER_FIELDS}
        columns = {name: _joined(table[name.encode()]) for name in COLUMN_NAMES}
        table = None
    except lua51.LuaMemoryError:
        return SandboxResult("error", error="not enough memory", limit="memory",
                             limit_message="memory limit exceeded")
    except lua51.LuaError as error:  # only if the prelude itself failed: a bug, not a zone error
        return SandboxResult("error", error=f"sandbox failure: {error}")
    finally:
        runtime = None
    header = {HEADER_FIELDS[field]: value.decode("utf-8", "replace") if isinstance(value, bytes) else int(value)
              for field, value in values.items()}
    return SandboxResult(columns=columns, **header)


def _joined(column: object) -> bytes:
    """A column the prelude returns as a string or as an array of strings (its pieces)."""
    if isinstance(column, bytes):
        return column
    return b"".join(column.values())


def _set_process_limits(limits: SandboxLimits) -> None:
    """Kernel-enforced backstops for this zone: CPU seconds from now, and address space."""
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu_now = used.ru_utime + used.ru_stime
    hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft_cpu = int(cpu_now + limits.cpu_seconds * 1.5 + 5)
    if hard_cpu != resource.RLIM_INFINITY:
        soft_cpu = min(soft_cpu, hard_cpu)
    resource.setrlimit(resource.RLIMIT_CPU, (soft_cpu, hard_cpu))
    address_space = limits.process_memory_bytes or (_BASE_ADDRESS_SPACE + 2 * limits.memory_bytes + (512 << 20))
    hard_as = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard_as != resource.RLIM_INFINITY:
        address_space = min(address_space, hard_as)
    resource.setrlimit(resource.RLIMIT_AS, (address_space, hard_as))


_BASE_ADDRESS_SPACE = 0


def _virtual_size() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 512 << 20


def worker_main() -> None:
    """Entry point of the worker process: evaluate zones read from stdin until EOF."""
    global _BASE_ADDRESS_SPACE
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU must not leave core files
    import lupa.lua51  # noqa: F401  (loaded before measuring the base address space)

    _BASE_ADDRESS_SPACE = _virtual_size()
    requests, replies = sys.stdin.fileno(), sys.stdout.fileno()
    sys.stdout = sys.stderr  # nothing may write into the reply pipe by accident
    while True:
        frame = _read_frame(requests)
        if frame is None:
            os._exit(0)  # every reply is written (os.write, unbuffered); tearing the runtime down is wasted time
        header, payload = frame
        limits = SandboxLimits(**header["limits"])
        chunks, offset = [], 0
        for name, size in header["chunks"]:
            chunks.append(Chunk(name, payload[offset:offset + size]))
            offset += size
        payload = b""
        _set_process_limits(limits)
        try:
            result = evaluate_in_process(header["origin"], chunks, default_ttl=header["default_ttl"], limits=limits,
                                         split_threshold=header["split_threshold"])
        except MemoryError:
            result = SandboxResult("error", error="not enough memory", limit="process",
                                   limit_message="the evaluation ran out of process memory")
        chunks = []
        columns = result.columns or {}
        names = list(columns)
        sizes = [len(columns[name]) for name in names]
        reply = {key: value for key, value in asdict(result).items() if key != "columns"}
        reply["columns"] = [[name, size] for name, size in zip(names, sizes)]
        body = [columns[name] for name in names]
        result = columns = None
        _write_frame(replies, reply, body)


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------


class LuaSandbox:
    """A reusable worker process; ``evaluate`` runs one zone.  Use as a context manager.

    A zone that hangs, crashes or exhausts the worker fails alone: the worker is killed and a
    fresh one is started for the next zone.
    """

    def __init__(self, limits: SandboxLimits = SandboxLimits(), *, split_threshold: int | None = None) -> None:
        self.limits = limits
        # Tests lower it (here or SPLIT_THRESHOLD) to hold the split file to the file as written.
        self.split_threshold = SPLIT_THRESHOLD if split_threshold is None else split_threshold
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "LuaSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def _start(self) -> subprocess.Popen:
        lupa = lupa_directory()
        paths = [str(Path(__file__).resolve().parents[2])] + ([str(lupa.parent)] if lupa else [])
        code = f"import sys; sys.path[:0] = {paths!r}; from publisher.zone.sandbox import worker_main; worker_main()"
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        # -S when lupa's directory is known: no site module, so no .pth file runs in the worker
        # (and it starts a third faster).
        flags = ["-I", "-S"] if len(paths) > 1 else ["-I"]
        return subprocess.Popen(
            [sys.executable, *flags, "-c", code],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=environment, cwd="/", close_fds=True,
        )

    def evaluate(self, origin: str, chunks: Sequence[Chunk], *, default_ttl: int = 3600) -> SandboxResult:
        """Evaluate one zone (``chunks``: templates first, the zone file last) in the worker."""
        limits = self.limits
        if self._process is None or self._process.poll() is not None:
            self._kill()
            self._process = self._start()
        process = self._process
        header = {
            "origin": origin,
            "default_ttl": default_ttl,
            "limits": asdict(limits),
            "split_threshold": self.split_threshold,
            "chunks": [[chunk.name, len(chunk.source)] for chunk in chunks],
        }
        try:
            _write_frame(process.stdin.fileno(), header, b"".join(chunk.source for chunk in chunks))
            frame = _read_frame(process.stdout.fileno(), time.monotonic() + limits.wall_seconds)
        except TimeoutError:
            self._kill()
            return SandboxResult("killed", error=f"evaluation took longer than {limits.wall_seconds:g} s and was stopped",
                                 limit="wall", limit_message="wall-clock limit exceeded")
        except (BrokenPipeError, OSError):
            frame = None
        if frame is None:
            returncode = process.wait()
            self._kill()
            return SandboxResult("killed", error=_death_reason(returncode), limit="process",
                                 limit_message="process limit exceeded")
        reply, payload = frame
        columns, offset, view = {}, 0, memoryview(payload)
        for name, size in reply.pop("columns"):
            columns[name] = view[offset:offset + size]  # views: a million-record zone is not copied again
            offset += size
        return SandboxResult(columns=columns, **reply)


@functools.lru_cache(maxsize=1)
def lupa_directory() -> Path | None:
    """The directory of the lupa package the worker runs (found, not imported), or None."""
    try:
        spec = importlib.util.find_spec("lupa")
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    return Path(locations[0]) if locations else None


def _death_reason(returncode: int) -> str:
    import signal

    if returncode < 0:
        number = -returncode
        if number == signal.SIGXCPU:
            return "the evaluation used too much CPU time and was stopped"
        if number == signal.SIGKILL:
            return "the evaluation was killed (out of memory?)"
        return f"the evaluation process died ({signal.Signals(number).name})"
    return f"the evaluation process exited unexpectedly (status {returncode})"
