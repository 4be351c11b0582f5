"""Any octoDNS provider as a target: the bridge between our plan and an octoDNS provider class.

octoDNS maintains clients for the hosted DNS APIs (Route 53, Cloudflare, deSEC, …); this module
uses them only through octoDNS's public interface: ``populate(zone, target=True, lenient=True)``
to read (``octodns/source/base.py``), ``apply(plan)`` with a ``Plan`` of ``Create``/``Update``/
``Delete`` changes to write (``octodns/provider/base.py``, ``octodns/provider/plan.py``,
``octodns/record/change.py``), and ``Record.from_rrset``/``Record.to_rrset`` to convert between
presentation text and octoDNS's model (``octodns/record/base.py``, ``octodns/record/rr.py``).
The plan is ours: octoDNS's own ``plan()`` (its diff, thresholds, root NS rules) is never called.

What this means for the rest of the publisher:

- Hosted providers own the SOA (octoDNS does not model it), and usually the apex NS (Route 53
  serves its own four and keeps serial 1).  The capability ``host_soa`` tells the orchestrator;
  the "serial" of a zone is a fingerprint of the records read, so drift is detected by reading,
  never by a serial that does not move.  No octoDNS host offers a cheap, trustworthy sign that
  nothing changed, so every plan reads the zone in full (as ``octodns-sync`` does).
- The apex NS are left to the host unless ``manage_root_ns = true`` (which needs the class's
  ``SUPPORTS_ROOT_NS``): sending our configured NS to Route 53 would be a root NS change on
  every run.
- Every parameter passed through to the class may be a secret: ``publisher.config`` resolves
  ``env:``/``file:`` for all of them; their values are masked in reprs, in our errors and in the
  octoDNS provider's own log records.
- Provider instances cache what they read (Route 53 keeps its rrsets per zone id), so each read
  uses a fresh instance: what a run sees is what the host serves now, not what an earlier run saw.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
from typing import Any, Mapping, Sequence

from publisher.model import CREATE, DELETE, ERROR, WARNING, Change, Finding, Record
from publisher.publish.providers.base import (Capabilities, ConcurrentChangeError, Option, OptionSchema, ProviderError,
                                              Snapshot, schema)
from publisher.rdata import RdataError, canonical_rdata


def _check_options(options: Mapping[str, Any]) -> str | None:
    """Why ``options`` cannot work (missing package or class, root NS not supported), or None."""
    try:
        source_class = load_class(str(options["class"]))
    except ProviderError as error:
        return str(error)
    # SUPPORTS_ROOT_NS may be a property that depends on the parameters (YamlProvider): then the
    # provider itself checks it once built.
    if options.get("manage_root_ns") and getattr(source_class, "SUPPORTS_ROOT_NS", False) is False:
        return f"class {options['class']} cannot manage the apex NS (SUPPORTS_ROOT_NS is false): drop manage_root_ns"
    return None


# ``class`` names the octoDNS provider; every other key is a parameter of that class.
OPTIONS = OptionSchema(schema(**{"class": Option(str, required=True), "manage_root_ns": Option(bool)}),
                       pass_through=True, check=_check_options)
_OWN_OPTIONS = frozenset(OPTIONS.options)
_MASK = "***"
_MIN_MASKED = 3  # shorter parameter values ("0", "us") would mask unrelated text
# octodns-route53 writes TXT with '"' escaped (``_values_for_quoted`` -> ``chunked_values``) but
# reads the value back still escaped (``Route53Provider._data_for_quoted`` strips only the outer
# quotes), so through its model `a"b` comes back as `a\"b` and would re-plan forever.
_PRESENTATION_ESCAPE = re.compile(r'\\(["\\])')


def pip_package(dotted: str) -> str:
    """The PyPI package that provides ``dotted`` by the octoDNS naming rule (module
    ``octodns_route53`` is package ``octodns-route53``; ``octodns.…`` is octoDNS itself)."""
    top = dotted.split(".", 1)[0]
    return "octodns" if top == "octodns" else top.replace("_", "-")


def load_class(dotted: str) -> type:
    """The octoDNS provider or source class named ``module.Class``; ProviderError naming the
    ``pip install`` to run when its package is missing."""
    module_name, _, class_name = dotted.rpartition(".")
    if not module_name or not class_name:
        raise ProviderError(f"class must be \"module.Class\" (e.g. octodns_route53.Route53Provider), not {dotted!r}")
    install = f"pip install 'zone-publisher[octodns]' {pip_package(dotted)}" if pip_package(dotted) != "octodns" \
        else "pip install 'zone-publisher[octodns]'"
    try:
        importlib.import_module("octodns")
    except ImportError:
        raise ProviderError(f"class {dotted}: octoDNS is not installed; install it with `{install}`") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ProviderError(f"class {dotted}: cannot import {module_name} ({error}); install it with "
                            f"`{install}`") from None
    found = getattr(module, class_name, None)
    if not isinstance(found, type) or not hasattr(found, "populate"):
        raise ProviderError(f"class {dotted}: {module_name} has no octoDNS provider or source named {class_name} "
                            f"(is `{pip_package(dotted)}` the right version?)")
    return found


class _MaskSecrets(logging.Filter):
    """Replaces parameter values in the octoDNS provider's log records (octodns-route53 logs its
    ``access_key_id`` at INFO in ``Route53Provider.__init__``)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = sorted(secrets, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, _MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _secret_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if len(value) >= _MIN_MASKED else []
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _secret_strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _secret_strings(item)]
    return []


def fingerprint(records: Sequence[Record]) -> int:
    """The zone's "serial" at a host without a usable one: a digest of every record, so equal
    content gives an equal number and any change a different one (56 bits: fits SQLite INTEGER)."""
    digest = hashlib.sha256()
    for line in sorted(f"{r.name} {r.type} {r.ttl} {r.data}" for r in records):
        digest.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return int.from_bytes(digest.digest()[:7], "big")


def _host_message(error: Exception) -> str:
    """What the host said: the exception text, plus the body of an HTTP error response
    (``requests.HTTPError.response``, used by octodns-powerdns and most API clients)."""
    message = str(error)
    body = getattr(getattr(error, "response", None), "text", None)
    if isinstance(body, str) and body.strip():
        message += f" ({body.strip()[:500]})"
    return message[:1000]


def _culprit(message: str, changes: Sequence[Change]) -> str:
    """The record a host error names (the longest owner name it contains), else the first sent."""
    lowered = message.lower()
    for change in sorted(changes, key=lambda c: len(c.name), reverse=True):
        if re.search(rf"(?<![a-z0-9_.-]){re.escape(change.name.rstrip('.'))}(?![a-z0-9_-])", lowered):
            named = [c for c in changes if c.name == change.name]
            types = {c.type for c in named}
            mentioned = [t for t in sorted(types) if t.lower() in lowered] or sorted(types)
            return f" at record {change.name} {mentioned[0]}"
    return f" (first record sent: {changes[0].name} {changes[0].type})"


class OctoDNSProvider:
    """A DNS host reached through an octoDNS provider class (``octodns_route53.Route53Provider``, …)."""

    def __init__(self, name: str, class_name: str, parameters: Mapping[str, Any] | None = None,
                 manage_root_ns: bool = False) -> None:
        self.name = name
        self.class_name = class_name
        self._class = load_class(class_name)
        self._parameters = dict(parameters or {})
        self.manage_root_ns = manage_root_ns
        self._mask = _MaskSecrets(_secret_strings(self._parameters))
        # The octoDNS convention names a provider's logger "Class[id]"; filtering it before the
        # instance exists also masks what its __init__ logs.
        logger = logging.getLogger(f"{self._class.__name__}[{name}]")
        for stale in [f for f in logger.filters if isinstance(f, _MaskSecrets)]:  # a provider built again
            logger.removeFilter(stale)
        logger.addFilter(self._mask)
        # Built once here so a bad parameter is an error now, and because SUPPORTS and
        # SUPPORTS_ROOT_NS may be properties of the instance (YamlProvider); octoDNS constructors
        # make no requests (clients connect on first use).
        probe = self._instance("")
        if manage_root_ns and not probe.SUPPORTS_ROOT_NS:
            raise ProviderError(f"provider {name!r}: class {class_name} cannot manage the apex NS "
                                "(SUPPORTS_ROOT_NS is false): drop manage_root_ns")
        supported = frozenset(t for t in probe.SUPPORTS if "/" not in t)
        self.capabilities = Capabilities(record_types=supported | {"SOA"}, can_create_zones=True,
                                         native_alias=False, configures_secondaries=False, host_soa=True)
        self.can_apply = callable(getattr(self._class, "apply", None))
        self._last_read: dict[str, Snapshot | None] = {}
        # origin -> {(name, type): (ttl, sorted data, octoDNS record)} from the last prepare(), so
        # the apply that follows in the same run does not build every record a second time.
        self._prepared: dict[str, dict[tuple[str, str], tuple[int, tuple[str, ...], Any]]] = {}

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> "OctoDNSProvider":
        """From a ``[[provider]]`` table of type ``octodns`` (``class`` + the class's parameters)."""
        if not options.get("class"):
            raise ProviderError(f"provider {name!r} (octodns): missing 'class'")
        try:
            return cls(name, str(options["class"]), {k: v for k, v in options.items() if k not in _OWN_OPTIONS},
                       manage_root_ns=bool(options.get("manage_root_ns", False)))
        except ProviderError as error:
            message = str(error)
            raise ProviderError(message if message.startswith("provider ") else
                                f"provider {name!r} (octodns): {message}") from None

    def __repr__(self) -> str:  # parameters are secrets: names only
        return (f"OctoDNSProvider(name={self.name!r}, class={self.class_name!r}, "
                f"parameters={ {k: _MASK for k in self._parameters} !r})")

    # ------------------------------------------------------------------ octoDNS

    def _error(self, origin: str, what: str) -> ProviderError:
        where = f", zone {origin}" if origin else ""
        return ProviderError(f"provider {self.name!r} (octoDNS {self.class_name}){where}: {self._mask.mask(what)}")

    def _instance(self, origin: str) -> Any:
        """A fresh octoDNS provider: instances cache zones, and a run must see the host as it is."""
        try:
            instance = self._class(self.name, **self._parameters)
        except Exception as error:  # a bad parameter, a client that cannot start
            raise self._error(origin, f"cannot create the octoDNS provider: {type(error).__name__}: {error}") from None
        log = getattr(instance, "log", None)
        if isinstance(log, logging.Logger) and self._mask not in log.filters:
            log.addFilter(self._mask)
        return instance

    def _populate(self, origin: str) -> tuple[Any, Any, bool]:
        """(instance, octoDNS zone, exists) as the host serves ``origin`` now."""
        from octodns.zone import Zone

        instance = self._instance(origin)
        zone = Zone(origin, [])
        try:
            exists = instance.populate(zone, target=True, lenient=True)
        except Exception as error:
            raise self._error(origin, f"reading the zone failed: {type(error).__name__}: {str(error)[:500]}") from None
        if exists is None:  # a source that does not say: records are the sign
            exists = bool(zone.records)
        return instance, zone, bool(exists)

    def _owned(self, origin: str, record: Any) -> bool:
        """True when the publisher manages this octoDNS record (not the host's apex NS, not a
        provider-specific or dynamic record, which only the host's tools understand)."""
        if "/" in record._type or getattr(record, "dynamic", None):
            return False
        return self.manage_root_ns or not (record.name == "" and record._type == "NS")

    def _records(self, origin: str, zone: Any) -> tuple[Record, ...]:
        records: list[Record] = []
        for record in zone.records:
            if not self._owned(origin, record):
                continue
            if record._type in ("TXT", "SPF"):
                record = record.copy()
                record.values = [type(v)(_PRESENTATION_ESCAPE.sub(r"\1", v)) for v in record.values]
            rrset = record.to_rrset()
            owner = rrset.name.lower()
            for text in rrset.rdatas:
                try:
                    # Names in octoDNS values are absolute, trailing dot or not (moto's Route 53
                    # returns its NS without one): relative to the root, never to the zone.
                    data = canonical_rdata(rrset._type, text, ".")
                except (RdataError, ValueError) as error:
                    raise self._error(origin, f"cannot understand {owner} {rrset._type} {text!r}: {error}") from None
                records.append(Record(owner, rrset._type, int(rrset.ttl), data))
        return tuple(records)

    # ------------------------------------------------------------------ reading

    def serial(self, origin: str) -> int | None:
        """A full read: no octoDNS host has a cheap, trustworthy serial; the fingerprint of what
        is served stands in for one (the snapshot is kept for the ``read`` that may follow)."""
        snapshot = self._read(origin)
        self._last_read[origin] = snapshot
        return None if snapshot is None else snapshot.serial

    def read(self, origin: str) -> Snapshot | None:
        if origin in self._last_read:
            return self._last_read.pop(origin)
        return self._read(origin)

    def _read(self, origin: str) -> Snapshot | None:
        _, zone, exists = self._populate(origin)
        if not exists:
            return None
        records = self._records(origin, zone)
        return Snapshot(records, fingerprint(records), None)

    # ------------------------------------------------------------------ planning

    def prepare(self, origin: str, records: Sequence[Record]) -> tuple[tuple[Record, ...], tuple[Finding, ...]]:
        """``records`` in the form the host stores them (through octoDNS's model: TXT strings
        joined and split every 255 octets, ``;`` escaped and unescaped), and findings for what the
        host cannot hold: octoDNS's validation of each RRset (``Record.from_rrset``), and the
        apex NS when the host owns them."""
        from octodns.record import Record as OctoRecord
        from octodns.record.exception import RecordException, ValidationError
        from octodns.record.rr import Rrset
        from octodns.zone import Zone

        zone = Zone(origin, [])
        built: dict[tuple[str, str], tuple[int, tuple[str, ...], Any]] = {}
        self._prepared[origin] = built
        grouped: dict[tuple[str, str], list[Record]] = {}
        prepared: list[Record] = []
        findings: list[Finding] = []
        declared_ns = [r for r in records if r.name == origin and r.type == "NS" and r.file]
        for record in records:
            if record.type not in self.capabilities.record_types or record.type == "SOA":
                prepared.append(record)  # capability_findings reports the type
            elif record.name == origin and record.type == "NS" and not self.manage_root_ns:
                continue  # the host's
            else:
                grouped.setdefault((record.name, record.type), []).append(record)
        if declared_ns:
            first = declared_ns[0]
            findings.append(Finding(WARNING, "apex-ns-left-to-host", origin, first.file, first.line,
                                    f"provider {self.name!r} serves its own apex NS for {origin}; the zone's "
                                    f"NS ({', '.join(sorted({r.data for r in declared_ns}))}) are not sent "
                                    "(set manage_root_ns = true on the provider to publish them)"))
        for (name, rtype), rrset_records in grouped.items():
            first = rrset_records[0]
            try:
                octo = OctoRecord.from_rrset(zone, Rrset(name, rtype, first.ttl, [r.data for r in rrset_records]))
                texts = octo.to_rrset().rdatas
                normalised = [Record(name, rtype, first.ttl, canonical_rdata(rtype, text, origin), first.file, first.line)
                              for text in texts]
            except ValidationError as error:
                reasons = "; ".join(str(reason) for reason in error.reasons)
                findings.append(Finding(ERROR, "host-rejects-record", origin, first.file, first.line,
                                        f"provider {self.name!r} ({self.class_name}) cannot hold {name} {rtype}: "
                                        f"{reasons}"))
                continue
            except (RecordException, RdataError, ValueError) as error:
                findings.append(Finding(ERROR, "host-rejects-record", origin, first.file, first.line,
                                        f"provider {self.name!r} ({self.class_name}) cannot hold {name} {rtype}: "
                                        f"{type(error).__name__}: {error}"))
                continue
            if sorted(r.data for r in normalised) != sorted(r.data for r in rrset_records):
                findings.append(Finding(WARNING, "host-normalises-record", origin, first.file, first.line,
                                        f"provider {self.name!r} stores {name} {rtype} as "
                                        f"{' | '.join(r.data for r in normalised)[:300]} (octoDNS's model); "
                                        "that form is published"))
            prepared.extend(normalised)
            built[(name, rtype)] = (first.ttl, tuple(sorted(r.data for r in normalised)), octo)
        return tuple(prepared), tuple(findings)

    # ------------------------------------------------------------------ writing

    def apply(self, origin: str, changes: Sequence[Change], soa: Record, expected_serial: int | None) -> int:
        """Our changes as one octoDNS plan, applied by the octoDNS provider; ``soa`` is the host's
        business and is not sent.  The concurrency guard reads the zone again and compares its
        fingerprint with ``expected_serial``."""
        if not self.can_apply:
            raise self._error(origin, f"{self.class_name} is an octoDNS source: it can be read (import) but "
                                      "not published to")
        from publisher.publish.plan import apply_changes

        instance, zone, exists = self._populate(origin)
        current = self._records(origin, zone) if exists else ()
        if expected_serial is not None:
            seen = fingerprint(current) if exists else None
            if seen != expected_serial:
                raise ConcurrentChangeError(
                    f"provider {self.name!r}, zone {origin}: the zone changed since it was read (fingerprint "
                    f"{seen}, expected {expected_serial}); nothing applied")
        changes = [c for c in changes if c.type != "SOA"]
        if changes:
            self._send(origin, instance, zone, exists, changes)
        self._last_read.pop(origin, None)
        return fingerprint(apply_changes(current, changes))

    def _send(self, origin: str, instance: Any, existing: Any, exists: bool, changes: Sequence[Change]) -> None:
        from octodns.provider.plan import Plan
        from octodns.record import Create, Delete, Record as OctoRecord, Update
        from octodns.record.rr import Rrset

        desired = existing.copy()  # what the host keeps (its apex NS, dynamic records) stays in the zone
        by_key = {(r.fqdn.lower(), r._type): r for r in existing.records}
        built = self._prepared.get(origin, {})
        octo_changes = []
        for change in changes:
            old = by_key.get((change.name, change.type))
            ready = built.get((change.name, change.type))
            try:
                if change.action == DELETE:
                    new = None
                elif ready is not None and ready[:2] == (change.ttl, tuple(sorted(change.new))):
                    new = ready[2]  # as prepare() built and validated it
                else:
                    new = OctoRecord.from_rrset(desired, Rrset(change.name, change.type, change.ttl, list(change.new)),
                                                lenient=True)
            except Exception as error:
                raise self._error(origin, f"record {change.name} {change.type}: octoDNS cannot represent it: "
                                          f"{type(error).__name__}: {error}") from None
            if change.action == DELETE:
                if old is None:
                    continue  # already gone
                desired.remove_record(old)
                octo_changes.append(Delete(old))
            elif old is None:
                desired.add_record(new, replace=True, lenient=True)
                octo_changes.append(Create(new))
            else:
                desired.add_record(new, replace=True, lenient=True)
                octo_changes.append(Update(old, new))
        if not octo_changes:
            return
        try:
            instance.apply(Plan(existing, desired, octo_changes, exists))
        except Exception as error:
            message = _host_message(error)
            raise self._error(origin, f"applying {len(octo_changes)} change(s) failed{_culprit(message, changes)}: "
                                      f"{type(error).__name__}: {message}") from None

    # ------------------------------------------------------------------ zones

    def create_zone(self, origin: str, soa: Record, nameservers: Sequence[Record]) -> None:
        """octoDNS providers create a zone with the first apply of its records (Route 53's
        ``_get_zone_id(create=True)``, PowerDNS's POST after a 404); with ``manage_root_ns`` the
        apex NS and their glue are that first apply, otherwise the host's own NS come with it."""
        if not self.manage_root_ns or not nameservers:
            return
        grouped: dict[tuple[str, str], list[Record]] = {}
        for record in nameservers:
            grouped.setdefault((record.name, record.type), []).append(record)
        changes = [Change(CREATE, name, rtype, rs[0].ttl, (), tuple(r.data for r in rs))
                   for (name, rtype), rs in grouped.items()]
        self.apply(origin, changes, soa, None)

    def delete_zone(self, origin: str) -> None:
        raise self._error(origin, "octoDNS has no zone deletion: delete the zone at the host (its console or "
                                  "API), then publish again")
