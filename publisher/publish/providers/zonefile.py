"""Zone files on disk, reloaded into a server (``rndc reload {zone}``, ``knotc zone-reload {zone}``).

Each zone is ``<directory>/<zone>.zone`` in canonical text (``publisher.zone.render``), SOA first.  A
write goes to a temporary file in the same directory, is checked (``named-checkzone`` when
installed, or ``check_command``), fsynced, then ``os.replace``d over the old file: a reader or a
reload never sees half a zone.  When the reload fails the previous file is put back, so the next
run sees the old state and applies again (the server and the file never silently disagree).

The provider also writes a ``named.conf`` include (``named_conf``, default
``<directory>/named.conf.zones``) with one zone stanza per zone file, carrying ``also-notify`` and
``allow-transfer`` for the zone's secondaries; after it changes, ``reconfig_command`` (e.g. ``rndc
reconfig``) makes the server pick up new or removed zones.  Commands run without a shell.

In a publish run (``begin_run``/``finish_run``, ``Capabilities.batches_runs``) the zones are only
staged (checked later, not yet in place); ``finish_run`` checks every staged zone in ONE process
(``named-checkconf -z`` over a generated configuration listing them, with BIND's named-checkzone
defaults, so the verdicts are named-checkzone's), puts the good ones in place, writes the include
and reconfigures once, and reloads once (``reload_all_command``, else ``reload_command`` per
zone).  A zone that fails the check or the reload keeps its previous file and is reported on its
own; the others are published.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Mapping, NamedTuple, Sequence

import dns.exception
import dns.rdatatype
import dns.zone

from publisher.model import DELETE, Change, Record
from publisher.publish.providers.base import (Capabilities, ConcurrentChangeError, Option, OptionSchema, ProviderError,
                                              Snapshot, schema)
from publisher.publish.providers.rfc2136 import RECORD_TYPES, rdata_to_text
from publisher.publish.soa import serial_of
from publisher.rdata import RdataError, canonical_rdata
from publisher.zone.render import records_to_text

OPTIONS = OptionSchema(schema(
    directory=Option(str, required=True, path=True), reload_command=Option(str), check_command=Option(str),
    named_conf=Option(str, path=True), reconfig_command=Option(str), reload_all_command=Option(str),
    timeout=Option(float),
))
HEADER = "; written by zone-publisher: edits here are seen as drift and overwritten\n"
SECONDARIES_FILE = ".secondaries.json"
DEFAULT_CHECK = "named-checkzone -i local {zone} {file}"
# Zone names that can be written into a named.conf string as they are (anything else is checked
# on its own with the per-zone command).
_CONF_SAFE_ZONE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\Z")
# named-checkconf -z: "zone <name>/IN: not loaded due to errors." for each zone it refuses.
_NOT_LOADED = re.compile(r"^zone (\S+)/IN: not loaded due to errors\.$", re.MULTILINE)


class _Staged(NamedTuple):
    """A zone written during a run, waiting for the run's check before it replaces the file."""

    temporary: Path
    records: tuple[Record, ...]  # SOA first
    previous: bytes | None  # the file served before the run; None for a zone new in this run


class ZoneFileProvider:
    """Zone files in a directory, plus the named.conf include that declares them."""

    def __init__(self, name: str, directory: Path | str, reload_command: str | None = None,
                 check_command: str | None = None, named_conf: Path | str | None = None,
                 reconfig_command: str | None = None, timeout: float = 60.0,
                 reload_all_command: str | None = None) -> None:
        self.name = name
        self.directory = Path(directory)
        self.reload_command = reload_command
        self.reload_all_command = reload_all_command
        if check_command is None and shutil.which("named-checkzone"):
            # -i local: integrity checks inside the zone only; the default (full) resolves every
            # out-of-zone MX/NS/SRV target through the system resolver, slow and not ours to do.
            check_command = DEFAULT_CHECK
        self.check_command = check_command
        # The default check, for many zones in one process: named-checkconf -z loads every zone
        # of a configuration as named would (integrity checks inside the zone only).
        self.check_conf = (shutil.which("named-checkconf") if check_command == DEFAULT_CHECK else None)
        self.named_conf = Path(named_conf) if named_conf else self.directory / "named.conf.zones"
        self.reconfig_command = reconfig_command
        self.timeout = timeout
        self.capabilities = Capabilities(record_types=RECORD_TYPES, can_create_zones=True,
                                         configures_secondaries=True, batches_runs=True,
                                         creates_filled_zones=True)
        self._run_lock: IO | None = None  # held from begin_run to finish_run
        self._staged: dict[str, _Staged] = {}
        self._include_changes: set[str] = set()  # zones whose stanza may have changed in the run

    def __repr__(self) -> str:
        return f"ZoneFileProvider(name={self.name!r}, directory={str(self.directory)!r})"

    def path(self, origin: str) -> Path:
        """Where the zone lives: ``example.com.`` -> ``<directory>/example.com.zone``."""
        stem = origin.rstrip(".") or "root"
        if "/" in stem or stem.startswith("."):
            raise self._error(origin, "zone name cannot be used as a file name")
        return self.directory / f"{stem}.zone"

    def _error(self, origin: str, what: str) -> ProviderError:
        return ProviderError(f"provider {self.name!r} (zone files in {self.directory}), zone {origin}: {what}")

    # ------------------------------------------------------------------ reading

    def serial(self, origin: str) -> int | None:
        """The serial of the file's SOA; for our own files, reading only up to the SOA line."""
        staged = self._staged.get(origin)
        if staged is not None:
            return serial_of(staged.records[0].data)
        try:
            with open(self.path(origin), encoding="utf-8") as handle:
                if handle.readline() == HEADER:
                    for line in handle:
                        fields = line.split(None, 4)
                        if len(fields) == 5 and fields[3] == "SOA" and line[0] not in ";$":
                            return serial_of(fields[4])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, IndexError) as error:
            raise self._error(origin, f"cannot read the SOA serial: {error}") from None
        snapshot = self.read(origin)  # not our layout: parse the whole file
        return None if snapshot is None else snapshot.serial

    def read(self, origin: str) -> Snapshot | None:
        staged = self._staged.get(origin)
        if staged is not None:
            soa, *records = staged.records
            return Snapshot(tuple(records), serial_of(soa.data), soa)
        try:
            text = self.path(origin).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self._error(origin, f"cannot read: {error.strerror}") from None
        records = self._parse_own(text, origin) if text.startswith(HEADER) else None
        if records is None:
            records = self._parse_any(text, origin)
        soa = next((r for r in records if r.type == "SOA"), None)
        if soa is None:
            raise self._error(origin, "the zone file has no SOA")
        return Snapshot(tuple(r for r in records if r.type != "SOA"), serial_of(soa.data), soa)

    def _parse_own(self, text: str, origin: str) -> list[Record] | None:
        """Our one-record-per-line layout, data canonicalised again (a hand edit may not be);
        None when a line does not fit, so the full parser takes over."""
        records = []
        for line in text.splitlines():
            if not line or line[0] in ";$":
                continue
            fields = line.split(None, 4)
            if len(fields) != 5 or fields[2] != "IN" or not fields[1].isdigit() or not fields[0].endswith("."):
                return None
            name, ttl, _, rtype, data = fields
            try:
                data = canonical_rdata(rtype.upper(), data, origin)
            except RdataError:
                return None
            records.append(Record(name.lower(), rtype.upper(), int(ttl), data))
        return records

    def _parse_any(self, text: str, origin: str) -> list[Record]:
        try:
            zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
        except (dns.exception.DNSException, ValueError) as error:
            raise self._error(origin, f"cannot parse the zone file: {error}") from None
        records = []
        for name, rdataset in zone.iterate_rdatasets():
            rtype = dns.rdatatype.to_text(rdataset.rdtype)
            owner = name.to_text().lower()
            for rdata in rdataset:
                records.append(Record(owner, rtype, rdataset.ttl, rdata_to_text(rtype, rdata, origin)))
        return records

    # ------------------------------------------------------------------ writing

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time in the directory (the service and a CLI run may overlap); a run
        holds the lock from ``begin_run`` to ``finish_run``."""
        if self._run_lock is not None:
            yield
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".zone-publisher.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @property
    def _in_run(self) -> bool:
        return self._run_lock is not None

    def apply(self, origin: str, changes: Sequence[Change], soa: Record, expected_serial: int | None) -> int:
        with self._locked():
            current = self.read(origin)
            if current is None:
                raise self._error(origin, "zone file does not exist (create the zone first)")
            if expected_serial is not None and current.serial != expected_serial:
                raise ConcurrentChangeError(
                    f"provider {self.name!r}, zone {origin}: serial is {current.serial}, expected "
                    f"{expected_serial}: the zone file changed since it was read; nothing applied")
            rrsets: dict[tuple[str, str], list[Record]] = {}
            for record in current.records:
                rrsets.setdefault((record.name, record.type), []).append(record)
            for change in changes:
                if change.type == "SOA":
                    continue
                key = (change.name, change.type)
                if change.action == DELETE:
                    rrsets.pop(key, None)
                else:
                    rrsets[key] = [Record(change.name, change.type, change.ttl, data) for data in change.new]
            records = [soa] + [record for rrset in rrsets.values() for record in rrset]
            staged = self._staged.get(origin)
            previous = staged.previous if staged is not None else self.path(origin).read_bytes()
            self._write_zone(origin, records, previous=previous)
        return serial_of(soa.data)

    def _write_zone(self, origin: str, records: Sequence[Record], previous: bytes | None) -> None:
        """Check, write atomically, reload; on a failed reload put ``previous`` back.  In a run:
        write the temporary file only, for ``finish_run`` to check and put in place."""
        text = HEADER + f"$ORIGIN {origin}\n" + records_to_text(records)
        target = self.path(origin)
        temporary = self._write_temporary(target, text.encode("utf-8"), sync=not self._in_run)
        if self._in_run:
            replaced = self._staged.pop(origin, None)
            if replaced is not None:
                replaced.temporary.unlink(missing_ok=True)
            self._staged[origin] = _Staged(temporary, tuple(records), previous)
            return
        try:
            if self.check_command:
                self._run(origin, self.check_command, "zone check", file=temporary)
            os.replace(temporary, target)
        finally:
            if temporary.exists():
                temporary.unlink()
        if previous is not None and self.reload_command:
            try:
                self._run(origin, self.reload_command, "reload")
            except ProviderError:
                restored = self._write_temporary(target, previous)
                os.replace(restored, target)
                raise

    def _write_temporary(self, target: Path, content: bytes, sync: bool = True) -> Path:
        """``content`` in a new hidden file beside ``target``; on disk (fsynced) unless the caller
        syncs it later (``_sync_all``: a run's files together)."""
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(handle, "wb") as output:
            output.write(content)
            output.flush()
            if sync:
                os.fsync(output.fileno())
        os.chmod(name, 0o644)  # the DNS server (often another user) must read it
        return Path(name)

    def _run(self, origin: str, command: str, what: str, file: Path | None = None,
             zones: Sequence[str] = ()) -> None:
        try:
            argv = []
            for part in shlex.split(command):
                if part == "{zones}":  # one argument per zone (``knotc zone-reload {zones}``)
                    argv.extend(zone.rstrip(".") or "." for zone in zones)
                else:
                    argv.append(part.format(zone=origin.rstrip(".") or ".", file=str(file or self.path(origin))))
        except (KeyError, IndexError, ValueError) as error:
            raise self._error(origin, f"{what}: bad command template {command!r} (use {{zone}} and "
                                      f"{{file}}): {error}") from None
        self._execute(origin, argv, what, file)

    def _execute(self, origin: str, argv: Sequence[str], what: str, file: Path | None = None) -> None:
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise self._error(origin, f"{what}: command {argv[0]!r} not found") from None
        except subprocess.TimeoutExpired:
            raise self._error(origin, f"{what}: {argv[0]} did not finish within {self.timeout:g} s") from None
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().replace(str(file), "<zone file>") if file else \
                (result.stdout + result.stderr).strip()
            raise self._error(origin, f"{what} failed ({argv[0]} exited {result.returncode}): {output[-800:]}")

    # ------------------------------------------------------------------ a run (base.BatchesRuns)

    def begin_run(self) -> None:
        """Stage every write until ``finish_run``, holding the directory's lock meanwhile."""
        if self._in_run:
            raise ProviderError(f"provider {self.name!r}: a run is already in progress")
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = open(self.directory / ".zone-publisher.lock", "a")
        fcntl.flock(lock, fcntl.LOCK_EX)
        self._run_lock = lock
        self._staged, self._include_changes = {}, set()

    def finish_run(self) -> Mapping[str, str]:
        """Check every staged zone at once, put the good ones in place, update the include and
        reconfigure once, reload once; the zones that failed, each with its error."""
        if not self._in_run:
            return {}
        staged, include_changes = self._staged, self._include_changes
        failures: dict[str, str] = {}
        try:
            self._staged, self._include_changes = {}, set()
            self._run_lock, lock = None, self._run_lock  # from here on, writes take effect at once
            try:
                _sync_all([entry.temporary for entry in staged.values()])
                failures.update(self._check_staged(staged))
                placed = {}
                for origin, entry in staged.items():
                    if origin not in failures:
                        os.replace(entry.temporary, self.path(origin))
                        placed[origin] = entry
                failures.update(self._publish_placed(placed, include_changes))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
                lock.close()
        finally:
            for entry in staged.values():
                entry.temporary.unlink(missing_ok=True)
        return failures

    def _check_staged(self, staged: Mapping[str, _Staged]) -> dict[str, str]:
        """The staged zones that fail the zone check, with its message: named-checkconf -z over
        all of them in one process when the check is the default one, else the check per zone."""
        if not self.check_command or not staged:
            return {}
        together = {o: e for o, e in staged.items() if self.check_conf and _CONF_SAFE_ZONE.match(o.rstrip("."))}
        failures: dict[str, str] = {}
        if together:
            found = self._check_together(together)
            if found is None:  # the tool failed without naming zones: ask it zone by zone
                together = {}
            else:
                failures.update(found)
        for origin, entry in staged.items():
            if origin not in together:
                try:
                    self._run(origin, self.check_command, "zone check", file=entry.temporary)
                except ProviderError as error:
                    failures[origin] = str(error)
        return failures

    def _check_together(self, staged: Mapping[str, _Staged]) -> dict[str, str] | None:
        """named-checkconf -z on a configuration listing ``staged``: {zone: message} for each zone
        it does not load; None when it failed without naming a zone."""
        conf_lines = ["options { check-names primary warn; };"]  # named-checkzone's default (-k warn)
        for origin, entry in staged.items():
            conf_lines.append(f'zone "{origin.rstrip(".")}" {{ type primary; file "{os.path.abspath(entry.temporary)}"; }};')
        with tempfile.TemporaryDirectory(prefix="zone-publisher-check-") as scratch:
            conf = Path(scratch) / "named.conf"
            conf.write_text("\n".join(conf_lines) + "\n")
            try:
                result = subprocess.run([self.check_conf, "-z", str(conf)], capture_output=True, text=True,
                                        timeout=self.timeout + len(staged) * 0.05)
            except (OSError, subprocess.TimeoutExpired):
                return None
        if result.returncode == 0:
            return {}
        output = result.stdout + result.stderr
        by_name = {origin.rstrip("."): origin for origin in staged}
        refused = [by_name[name] for name in _NOT_LOADED.findall(output) if name in by_name]
        if not refused:
            return None
        failures = {}
        for origin in refused:
            name, path = origin.rstrip("."), os.path.abspath(staged[origin].temporary)
            lines = [line.replace(path, "<zone file>") for line in output.splitlines()
                     if line.startswith(f"zone {name}/IN:") or path in line]
            failures[origin] = str(self._error(origin, "zone check failed (named-checkconf -z): "
                                                       + "\n".join(lines)[-800:]))
        return failures

    def _publish_placed(self, placed: Mapping[str, _Staged], include_changes: set[str]) -> dict[str, str]:
        """After the run's files are in place: the include and one reconfig, then the reload;
        a zone whose reload (or, new, whose reconfig) fails gets its previous file back."""
        failures: dict[str, str] = {}
        if include_changes or any(entry.previous is None for entry in placed.values()):
            origin = next(iter(sorted(include_changes | set(placed))))
            try:
                self._update_include(origin)
            except ProviderError as error:
                affected = include_changes | {o for o, e in placed.items() if e.previous is None}
                for zone in affected:
                    failures[zone] = str(error).replace(f"zone {origin}:", f"zone {zone}:")
                self._restore({o: e for o, e in placed.items() if o in affected})
                self._update_include_quietly()
        reload = {o: e for o, e in placed.items() if e.previous is not None and o not in failures}
        if not reload:
            return failures
        if self.reload_all_command:
            first = next(iter(reload))
            try:
                self._run(first, self.reload_all_command, "reload", zones=list(reload))
            except ProviderError as error:
                self._restore(reload)
                for zone in reload:
                    failures[zone] = str(error).replace(f"zone {first}:", f"zone {zone}:")
        elif self.reload_command:
            for origin, entry in reload.items():
                try:
                    self._run(origin, self.reload_command, "reload")
                except ProviderError as error:
                    self._restore({origin: entry})
                    failures[origin] = str(error)
        return failures

    def _restore(self, entries: Mapping[str, _Staged]) -> None:
        """Put back the files served before the run (none, for zones new in it)."""
        for origin, entry in entries.items():
            target = self.path(origin)
            if entry.previous is None:
                target.unlink(missing_ok=True)
            else:
                os.replace(self._write_temporary(target, entry.previous), target)

    def _update_include_quietly(self) -> None:
        """The include as the files now on disk say, without reconfiguring (after a failed reconfig)."""
        text = self.include_text()
        os.replace(self._write_temporary(self.named_conf, text.encode()), self.named_conf)

    # ------------------------------------------------------------------ zones and named.conf

    def create_zone(self, origin: str, soa: Record, records: Sequence[Record]) -> int:
        """A new zone file holding ``soa`` and ``records`` (every record of the zone:
        ``creates_filled_zones``); returns its serial."""
        with self._locked():
            if self.path(origin).exists() or origin in self._staged:
                raise self._error(origin, "zone file already exists")
            self._write_zone(origin, [soa, *records], previous=None)
            self._write_include(origin)
        return serial_of(soa.data)

    def delete_zone(self, origin: str) -> None:
        with self._locked():
            staged = self._staged.pop(origin, None)
            if staged is not None:
                staged.temporary.unlink(missing_ok=True)
            self.path(origin).unlink(missing_ok=True)
            secondaries = self._secondaries()
            if secondaries.pop(origin, None) is not None:
                self._save_secondaries(secondaries)
            self._write_include(origin)

    def set_secondaries(self, origin: str, ips: Sequence[str]) -> None:
        """Declare the IPs notified of and allowed to transfer the zone (``slave()``, ``.yml``)."""
        with self._locked():
            secondaries = self._secondaries()
            wanted = sorted(set(ips))
            if secondaries.get(origin, []) == wanted:
                return
            if wanted:
                secondaries[origin] = wanted
            else:
                secondaries.pop(origin, None)
            self._save_secondaries(secondaries)
            self._write_include(origin)

    def secondaries(self, origin: str) -> tuple[str, ...]:
        return tuple(self._secondaries().get(origin, ()))

    def _secondaries(self) -> dict[str, list[str]]:
        try:
            return json.loads((self.directory / SECONDARIES_FILE).read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise ProviderError(f"provider {self.name!r}: cannot read {SECONDARIES_FILE}: {error}") from None

    def _save_secondaries(self, secondaries: dict[str, list[str]]) -> None:
        target = self.directory / SECONDARIES_FILE
        os.replace(self._write_temporary(target, json.dumps(secondaries, indent=1, sort_keys=True).encode()), target)

    def include_text(self) -> str:
        """The named.conf include: one stanza per zone file in the directory."""
        secondaries = self._secondaries()
        stanzas = ["// written by zone-publisher; do not edit\n"]
        directory = self.directory.resolve()  # once: resolving each of thousands of files costs
        for path in sorted(self.directory.glob("*.zone")):
            zone = path.name[: -len(".zone")]
            origin = "." if zone == "root" else zone + "."
            lines = [f'zone "{zone if zone != "root" else "."}" {{', "    type primary;", f'    file "{directory / path.name}";']
            ips = secondaries.get(origin, [])
            if ips:
                listed = " ".join(f"{ip};" for ip in ips)
                lines += ["    notify explicit;", f"    also-notify {{ {listed} }};", f"    allow-transfer {{ {listed} }};"]
            stanzas.append("\n".join(lines + ["};"]) + "\n")
        return "".join(stanzas)

    def _write_include(self, origin: str) -> None:
        if self._in_run:  # once, at the end of the run
            self._include_changes.add(origin)
            return
        self._update_include(origin)

    def _update_include(self, origin: str) -> None:
        text = self.include_text()
        try:
            if self.named_conf.read_text() == text:
                return
        except FileNotFoundError:
            pass
        self.named_conf.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._write_temporary(self.named_conf, text.encode()), self.named_conf)
        if self.reconfig_command:
            self._run(origin, self.reconfig_command, "reconfig")


def _sync_all(paths: Sequence[Path], threads: int = 16) -> None:
    """fsync many files at once: the file system commits concurrent syncs together, several
    times faster than one after the other."""
    def sync(path: Path) -> None:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    if len(paths) < 2:
        for path in paths:
            sync(path)
        return
    with ThreadPoolExecutor(min(threads, len(paths))) as pool:
        list(pool.map(sync, paths))
