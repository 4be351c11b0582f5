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
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

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
    named_conf=Option(str, path=True), reconfig_command=Option(str), timeout=Option(float),
))
HEADER = "; written by zone-publisher: edits here are seen as drift and overwritten\n"
SECONDARIES_FILE = ".secondaries.json"


class ZoneFileProvider:
    """Zone files in a directory, plus the named.conf include that declares them."""

    def __init__(self, name: str, directory: Path | str, reload_command: str | None = None,
                 check_command: str | None = None, named_conf: Path | str | None = None,
                 reconfig_command: str | None = None, timeout: float = 60.0) -> None:
        self.name = name
        self.directory = Path(directory)
        self.reload_command = reload_command
        if check_command is None and shutil.which("named-checkzone"):
            # -i local: integrity checks inside the zone only; the default (full) resolves every
            # out-of-zone MX/NS/SRV target through the system resolver, slow and not ours to do.
            check_command = "named-checkzone -i local {zone} {file}"
        self.check_command = check_command
        self.named_conf = Path(named_conf) if named_conf else self.directory / "named.conf.zones"
        self.reconfig_command = reconfig_command
        self.timeout = timeout
        self.capabilities = Capabilities(record_types=RECORD_TYPES, can_create_zones=True,
                                         configures_secondaries=True)

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
        """One writer at a time in the directory (the service and a CLI run may overlap)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".zone-publisher.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

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
            self._write_zone(origin, records, previous=self.path(origin).read_bytes())
        return serial_of(soa.data)

    def _write_zone(self, origin: str, records: Sequence[Record], previous: bytes | None) -> None:
        """Check, write atomically, reload; on a failed reload put ``previous`` back."""
        text = HEADER + f"$ORIGIN {origin}\n" + records_to_text(records)
        target = self.path(origin)
        temporary = self._write_temporary(target, text.encode("utf-8"))
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

    def _write_temporary(self, target: Path, content: bytes) -> Path:
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(handle, "wb") as output:
            output.write(content)
            output.flush()
            os.fsync(output.fileno())
        os.chmod(name, 0o644)  # the DNS server (often another user) must read it
        return Path(name)

    def _run(self, origin: str, command: str, what: str, file: Path | None = None) -> None:
        try:
            argv = [part.format(zone=origin.rstrip(".") or ".", file=str(file or self.path(origin)))
                    for part in shlex.split(command)]
        except (KeyError, IndexError, ValueError) as error:
            raise self._error(origin, f"{what}: bad command template {command!r} (use {{zone}} and "
                                      f"{{file}}): {error}") from None
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

    # ------------------------------------------------------------------ zones and named.conf

    def create_zone(self, origin: str, soa: Record, nameservers: Sequence[Record]) -> None:
        with self._locked():
            if self.path(origin).exists():
                raise self._error(origin, "zone file already exists")
            self._write_zone(origin, [soa, *nameservers], previous=None)
            self._write_include(origin)

    def delete_zone(self, origin: str) -> None:
        with self._locked():
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
        for path in sorted(self.directory.glob("*.zone")):
            zone = path.name[: -len(".zone")]
            origin = "." if zone == "root" else zone + "."
            lines = [f'zone "{zone if zone != "root" else "."}" {{', "    type primary;", f'    file "{path.resolve()}";']
            ips = secondaries.get(origin, [])
            if ips:
                listed = " ".join(f"{ip};" for ip in ips)
                lines += ["    notify explicit;", f"    also-notify {{ {listed} }};", f"    allow-transfer {{ {listed} }};"]
            stanzas.append("\n".join(lines + ["};"]) + "\n")
        return "".join(stanzas)

    def _write_include(self, origin: str) -> None:
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
