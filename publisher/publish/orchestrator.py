"""The one orchestrator: evaluate the repository, plan every (zone, provider), check safety, apply.

``publish()`` is what the ``plan``/``apply`` commands, the service worker and the poller call.  It
works in two passes so a reviewed plan can be applied exactly (``checksum``):

1. plan: for each zone and each provider it goes to, read what the provider serves (cheaply: one
   SOA query, and the stored last-applied records when the serial still matches), build the
   desired records (SOA generated, default apex NS, ALIAS flattened), diff, and check safety;
2. apply, when asked: zone by zone, each isolated, so one failing zone or provider never stops
   the others.  State is written only after a provider confirmed an apply; a failure forgets the
   zone's state so the next run reads the server in full and repairs a half-applied zone.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

from publisher.publish.alias import AliasResolver, flatten_aliases
from publisher.config import Config
from publisher.zone.evaluate import EvaluationOptions, RepositoryResult, evaluate_repository
from publisher.model import ERROR, WARNING, Finding, Record, Zone, ZoneResult
from publisher.outcome import (APPLIED, BLOCKED, FAILED, KEPT_LAST_GOOD, PLANNED, PROBLEM_STATUSES,
                               PROBLEM_WARNINGS, UNCHANGED, ZoneOutcome, run_has_problems, run_status)
from publisher.publish.plan import (SERVER_MANAGED_TYPES, Plan, ZonePlan, apply_changes, capability_findings,
                            diff_records, safety_findings)
from publisher.publish.ownership import OwnershipStore
from publisher.publish.providers import create_provider
from publisher.publish.providers.base import Provider, ProviderError
from publisher.zone.repository import BIND, Layout, discover
from publisher.zone.sandbox import SandboxLimits
from publisher.zone.validate import validate_zone
from publisher.publish.soa import next_serial, serial_of, without_serial, zone_soa
from publisher.publish.state import StateStore

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class PublishReport:
    """The result of one ``publish()`` run: per (zone, provider) outcome, the plan, timings."""

    outcomes: tuple[ZoneOutcome, ...]
    plan: Plan
    applied: bool  # True when this was an apply run (not a plan)
    forced: bool = False
    error: str = ""  # a run-level problem (checksum mismatch, unreadable source)
    findings: tuple[Finding, ...] = ()  # run-level findings (zones with no provider, …)
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def checksum(self) -> str:
        return self.plan.checksum

    @property
    def all_findings(self) -> tuple[Finding, ...]:
        """Every finding once, in order (a zone sent to two providers has its findings twice)."""
        return tuple(dict.fromkeys(self.findings + tuple(f for o in self.outcomes for f in o.findings)))

    @property
    def has_problems(self) -> bool:
        return run_has_problems(self.outcomes, self.error, self.findings)

    @property
    def status(self) -> str:
        """The run status (``publisher.outcome.run_status``) the service records for this report."""
        return run_status(self.outcomes, self.error, self.findings)

    @property
    def exit_code(self) -> int:
        """0 when everything asked for happened and nothing needs attention; 1 when a plan was
        unsafe, a zone broken, a provider failed or a warning someone must hear about was raised
        (the same ``has_problems`` the mail and ``publisher_zone_ok`` use)."""
        return 1 if self.has_problems else 0

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    def to_dict(self) -> dict:
        return {
            "applied": self.applied, "forced": self.forced, "checksum": self.checksum, "error": self.error,
            "status": self.status, "has_problems": self.has_problems, "counts": self.counts(),
            "outcomes": [o.to_dict() for o in self.outcomes],
            "findings": [f.to_dict() for f in self.findings],
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
        }

    def to_text(self) -> str:
        lines = []
        for outcome in self.outcomes:
            line = f"{outcome.zone} -> {outcome.provider or '-'}: {outcome.status}"
            if outcome.changes:
                line += f" ({len(outcome.changes)} change(s))"
            if outcome.serial_after is not None and outcome.serial_after != outcome.serial_before:
                line += f", serial {outcome.serial_before if outcome.serial_before is not None else '-'} -> {outcome.serial_after}"
            lines.append(line)
            lines.extend("  " + f.to_text() for f in outcome.findings)
            if outcome.error:
                lines.append(f"  error: {outcome.error}")
        lines.extend(f.to_text() for f in self.findings)
        if self.error:
            lines.append(f"error: {self.error}")
        summary = ", ".join(f"{count} {status}" for status, count in sorted(self.counts().items())) or "no zones"
        lines.append(f"{summary}; {self.timings.get('total', 0.0):.2f} s")
        return "\n".join(lines) + "\n"


@dataclass
class _Work:
    """Mutable scratch for one (zone, provider) between the two passes; never leaves this module."""

    origin: str
    provider_name: str
    file: str = ""
    zone: Zone | None = None
    provider: Provider | None = None
    plan: ZonePlan | None = None
    current: tuple[Record, ...] = ()
    current_soa: Record | None = None
    desired: tuple[Record, ...] = ()
    full_read: bool = False
    secondaries_seen: tuple[str, ...] | None = None  # read from the provider in this run
    status: str = PLANNED
    error: str = ""
    findings: tuple[Finding, ...] = ()  # evaluation findings carried along
    timings: dict[str, float] = field(default_factory=dict)

    def outcome(self) -> ZoneOutcome:
        plan = self.plan
        return ZoneOutcome(
            zone=self.origin, provider=self.provider_name, status=self.status,
            changes=plan.changes if plan else (),
            findings=self.findings + (plan.findings if plan else ()),
            error=self.error,
            serial_before=plan.serial_before if plan else None,
            serial_after=plan.serial_after if plan else None,
            file=self.file, timings=dict(self.timings),
        )


def publish(
    config: Config,
    repo_path: Path,
    *,
    apply: bool,
    force: bool = False,
    checksum: str | None = None,
    state: StateStore | None = None,
    providers: Mapping[str, Provider] | None = None,
    ownership: OwnershipStore | None = None,
) -> PublishReport:
    """Plan (and with ``apply`` apply) the repository at ``repo_path`` to every configured provider.

    ``providers`` maps provider names to ready instances (tests, or a service that keeps them);
    missing ones are built with ``publisher.publish.providers.create_provider`` and, when ``providers`` is
    a dict, added to it so the next run reuses them.  ``state`` defaults to the
    store at ``[state] path`` (or ``url``); ``ownership`` (which repository owns which zone) to the store in
    the same database as ``state``.
    """
    started = time.perf_counter()
    own_state = state is None
    store = state if state is not None else StateStore(config.state.location)
    # On the same database as ``state``, sharing its connection (closed with it when it is ours).
    owners = ownership if ownership is not None else OwnershipStore(store.database)
    try:
        instances = providers if isinstance(providers, dict) else dict(providers or {})
        return _Run(config, store, force, instances, owners).run(Path(repo_path), apply, checksum, started)
    finally:
        if own_state:
            store.close()


class _Run:
    """One publish run; the methods are its steps, in order."""

    def __init__(self, config: Config, state: StateStore, force: bool, providers: dict[str, Provider],
                 ownership: OwnershipStore) -> None:
        self.config = config
        self.state = state
        self.ownership = ownership
        self.owners: dict[str, str] = {}  # zone -> owning repository, read once at the start of the run
        self.force = force
        self.providers = providers
        self.provider_errors: dict[str, str] = {}
        self.resolver: AliasResolver | None = None
        self.bulk_serials: dict[str, dict[str, int | None]] = {}  # provider -> zone -> serial, read once
        self.bulk_serial_errors: dict[str, str] = {}
        self.zone_targets: dict[str, tuple] = {}

    def run(self, repo_path: Path, apply: bool, checksum: str | None, started: float) -> PublishReport:
        timings: dict[str, float] = {}
        mark = time.perf_counter()
        try:
            evaluated = self.evaluate(repo_path)
        except (OSError, ValueError) as error:
            timings["total"] = time.perf_counter() - started
            return PublishReport((), Plan(), apply, self.force, error=f"cannot evaluate {repo_path}: {error}",
                                 timings=timings)
        timings["evaluate"] = time.perf_counter() - mark

        mark = time.perf_counter()
        zone_results = evaluated.zones
        works: list[_Work] = []
        # Findings about the repository as a whole (a .clones without its zone, an unreadable
        # file name); an empty repository is reported below, once, as empty-repository.
        run_findings: list[Finding] = [f for f in evaluated.findings if f.code != "no-zones"]
        self.owners = self.ownership.owners()
        refusals = {result.origin: self.ownership_refusal(result) for result in zone_results}
        # Serials listed only for zones this repository may touch: a refused zone is never queried.
        self.read_serials_in_bulk([result for result in zone_results if refusals[result.origin] is None])
        for result in zone_results:
            refusal = refusals[result.origin]
            if refusal is not None:  # another repository's zone (or not one of ours): never read, never touched
                works.extend(self.refused_works(result, refusal))
                continue
            targets = self.targets(result.origin)
            if not targets:
                run_findings.append(Finding(WARNING, "no-provider", result.origin, result.file, 0,
                                            f"no [[provider]] takes zone {result.origin}; it is not published"))
            for provider_config in targets:
                works.append(self.plan_zone(result, provider_config.name))
        works.extend(self.plan_deletions({r.origin for r in zone_results}, run_findings))
        plan = Plan(tuple(w.plan for w in works if w.plan is not None))
        timings["plan"] = time.perf_counter() - mark

        error = ""
        if checksum is not None and checksum.strip().lower().removeprefix("sha256:") != plan.checksum:
            error = (f"the plan changed since it was reviewed (checksum {plan.checksum}, reviewed {checksum}); "
                     "nothing applied")
        mark = time.perf_counter()
        claims: dict[str, bool] = {}
        if apply and not error:
            # Every zone this run publishes is claimed before any apply (the parallel ones too); a
            # zone lost to another repository is blocked here and never touched.
            for work in works:
                self.claimed(work, claims)
        batched = self.begin_runs(works) if apply and not error else ()
        try:
            if apply and not error:
                self.apply_in_parallel(works)
            for work in works:
                if not apply or error:
                    continue  # a plan, or a plan that no longer matches the review: touch nothing
                if work.status == PLANNED:
                    self.apply_zone(work)
                elif work.status == UNCHANGED:
                    if work.full_read:
                        # Remember what the server serves, so the next run skips the full read.
                        self.state.put(work.provider_name, work.origin, work.plan.serial_before, work.current,
                                       work.current_soa)
                    if work.secondaries_seen is not None:
                        self.state.remember_secondaries(work.provider_name, work.origin, work.secondaries_seen)
        finally:
            self.finish_runs(batched, works)
        if apply and not error:
            self.release_deleted(works)
        timings["apply"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - started
        return PublishReport(tuple(w.outcome() for w in works), plan, apply, self.force, error,
                             tuple(run_findings), timings)

    # -- ownership --------------------------------------------------------------------------
    # A zone belongs to one repository of the instance.  The messages never name the owner: one
    # customer must not learn another's name (nor that a given zone is hosted here, beyond "not yours").

    @property
    def claims_zones(self) -> bool:
        """Several repositories (``[[repository]]``): an apply claims what it publishes.  A one-repository
        instance owns everything not claimed by another key, as before ownership existed."""
        return bool(self.config.name)

    def ownership_refusal(self, result: ZoneResult) -> Finding | None:
        return ownership_refusal(self.config, result.origin, result.file, self.owners)

    def refused_works(self, result: ZoneResult, refusal: Finding) -> list[_Work]:
        """One blocked outcome per provider the zone would go to (or one without a provider): no read,
        no plan against a provider, nothing applied."""
        names = [p.name for p in self.config.providers_for(result.origin)] or [""]
        works = []
        for name in names:
            work = _Work(result.origin, name, file=result.file, findings=result.findings, status=BLOCKED)
            work.plan = ZonePlan(result.origin, name, (), (refusal,))
            works.append(work)
        return works

    def claimed(self, work: _Work, claims: dict[str, bool]) -> bool:
        """Before the first apply of a zone this run publishes, claim it (atomically: of two repositories
        racing for a new zone, one wins); a zone lost to another repository is blocked, untouched."""
        if not self.claims_zones or work.status not in (PLANNED, UNCHANGED) or (work.plan and work.plan.delete_zone):
            return True
        origin = work.origin
        if origin not in claims:
            claims[origin] = self.ownership.claim(origin, self.config.key)
        if not claims[origin]:
            work.status = BLOCKED
            refusal = _owned_elsewhere(origin, work.file)
            work.plan = replace(work.plan, findings=work.plan.findings + (refusal,)) if work.plan else \
                ZonePlan(origin, work.provider_name, (), (refusal,))
        return claims[origin]

    def owns_published(self, origin: str) -> bool:
        """A zone in the state database is this repository's to delete: claimed by it, or (one-repository
        form) claimed by nobody.  Another repository's zones on a shared provider never look "removed"."""
        owner = self.owners.get(origin)
        return owner == self.config.key or (owner is None and not self.claims_zones)

    def release_deleted(self, works: Sequence[_Work]) -> None:
        """Ownership of a zone whose deletion was applied at every provider goes back to the instance."""
        deleted: dict[str, bool] = {}
        for work in works:
            if work.plan is not None and work.plan.delete_zone:
                deleted[work.origin] = deleted.get(work.origin, True) and work.status == APPLIED
        if not any(deleted.values()):
            return
        still_published = {zone for _, zone in self.state.zones()}
        for origin, done in deleted.items():
            if done and origin not in still_published:
                self.ownership.release(origin, self.config.key)

    # -- evaluation -------------------------------------------------------------------------

    def evaluate(self, repo_path: Path) -> RepositoryResult:
        """Every zone of the repository, evaluated with the configured TTLs and limits."""
        if not repo_path.is_dir():
            raise OSError(f"{repo_path} is not a directory")
        return evaluate_configured(self.config, repo_path)

    # -- planning ---------------------------------------------------------------------------

    def knot_refusals(self, result: ZoneResult, provider_name: str) -> tuple[Finding, ...]:
        """Errors Knot adds for a provider declared ``checks = "knot"``: the repository is judged
        as BIND judges it, and a zone sent to Knot must also be one Knot loads (a delegation without
        glue, NS beside a non-apex DNAME)."""
        if result.zone is None or self.config.provider(provider_name).checks != "knot":
            return ()
        found = validate_zone(result.zone, standalone=False, max_ttl=EvaluationOptions().max_ttl, server="knot")
        return tuple(f for f in found if f.is_error)

    def provider(self, name: str) -> Provider:
        if name in self.provider_errors:
            raise ProviderError(self.provider_errors[name])
        if name not in self.providers:
            try:
                self.providers[name] = create_provider(self.config.provider(name), self.config)
            except (ProviderError, OSError, ValueError) as error:
                message = str(error) if name in str(error) else f"provider {name!r}: {error}"
                self.provider_errors[name] = message
                raise ProviderError(message) from error
        return self.providers[name]

    def targets(self, origin: str) -> tuple:
        """The providers a zone goes to (``Config.providers_for``), worked out once per run."""
        found = self.zone_targets.get(origin)
        if found is None:
            found = self.zone_targets[origin] = tuple(self.config.providers_for(origin))
        return found

    def read_serials_in_bulk(self, zone_results: Sequence[ZoneResult]) -> None:
        """One serial listing per provider that offers it (``Capabilities.bulk_serials``) for the
        zones planned there, instead of a query per zone; a listing that fails fails those zones
        with its error, without asking again zone by zone."""
        wanted: dict[str, list[str]] = {}
        for result in zone_results:
            if result.has_errors or result.zone is None:
                continue
            for provider_config in self.targets(result.origin):
                wanted.setdefault(provider_config.name, []).append(result.origin)
        for name, origins in wanted.items():
            try:
                provider = self.provider(name)
            except ProviderError:
                continue  # each zone reports it
            if not provider.capabilities.bulk_serials:
                continue
            try:
                listed = provider.serials(origins)  # base.ReadsSerialsInBulk
            except ProviderError as error:
                self.bulk_serial_errors[name] = str(error)
                continue
            except Exception:  # a provider bug: the zones are read one by one instead
                log.exception("listing the serials of provider %s failed", name)
                continue
            self.bulk_serials[name] = {origin: listed.get(origin) for origin in origins}

    def apply_in_parallel(self, works: Sequence[_Work]) -> None:
        """The zones going to a provider that takes several applies at once
        (``Capabilities.parallel_applies``), applied that many at a time, each still isolated;
        deletions and every other provider's zones stay in the sequential loop."""
        by_provider: dict[str, list[_Work]] = {}
        for work in works:
            provider = work.provider
            if (work.status == PLANNED and provider is not None and not work.plan.delete_zone
                    and provider.capabilities.parallel_applies > 1):
                by_provider.setdefault(work.provider_name, []).append(work)
        for group in by_provider.values():
            if len(group) < 2:
                continue
            with ThreadPoolExecutor(group[0].provider.capabilities.parallel_applies) as pool:
                list(pool.map(self.apply_zone, group))

    def begin_runs(self, works: Sequence[_Work]) -> tuple[str, ...]:
        """Start the run of every provider that commits a run's changes together
        (``Capabilities.batches_runs``) and has something to apply."""
        begun = []
        for name in dict.fromkeys(w.provider_name for w in works if w.status == PLANNED):
            provider = self.providers.get(name)
            if provider is None or not provider.capabilities.batches_runs:
                continue
            try:
                provider.begin_run()  # base.BatchesRuns
            except ProviderError as error:
                log.warning("provider %s cannot batch this run, applying zone by zone: %s", name, error)
                continue
            begun.append(name)
        return tuple(begun)

    def finish_runs(self, names: Sequence[str], works: Sequence[_Work]) -> None:
        """End each begun run: a zone that failed at the end (its check, the reload) fails now,
        on its own outcome, and its state is forgotten so the next run repairs it."""
        for name in names:
            applied = [w for w in works if w.provider_name == name and w.status == APPLIED]
            try:
                failures = dict(self.providers[name].finish_run())
            except ProviderError as error:  # nothing of the run was committed
                failures = {w.origin: str(error) for w in applied}
            except Exception as error:
                log.exception("finishing the run of provider %s failed", name)
                failures = {w.origin: f"internal error: {error.__class__.__name__}: {error}" for w in applied}
            for work in applied:
                if work.origin in failures:
                    self.state.forget(name, work.origin)
                    self.fail(work, ProviderError(failures[work.origin]))

    def plan_zone(self, result: ZoneResult, provider_name: str) -> _Work:
        origin = result.origin
        work = _Work(origin, provider_name, file=result.file, zone=result.zone, findings=result.findings)
        if result.has_errors or result.zone is None:
            work.status = KEPT_LAST_GOOD
            served = ("keeps serving the last good version" if self.state.serial(provider_name, origin) is not None
                      else "serves nothing for it until the errors are fixed")
            work.findings += (Finding(WARNING, "kept-last-good", origin, result.file, 0,
                                      f"not published to {provider_name!r}: the zone has errors; the provider "
                                      f"{served}"),)
            return work
        knot_refusals = self.knot_refusals(result, provider_name)
        if knot_refusals:
            work.status = KEPT_LAST_GOOD
            refused = {(f.code, f.file, f.line) for f in knot_refusals}  # Knot's error replaces BIND's warning
            work.findings = tuple(f for f in work.findings if (f.code, f.file, f.line) not in refused)
            work.findings += knot_refusals + (Finding(
                WARNING, "kept-last-good", origin, result.file, 0,
                f"not published to {provider_name!r}: Knot, which serves it (checks = \"knot\"), would refuse "
                "the zone; the provider keeps what it serves"),)
            return work
        mark = time.perf_counter()
        try:
            work.provider = provider = self.provider(provider_name)
            serial, current, current_soa, drift = self.read_current(work)
            secondaries = self.secondaries_change(work, serial is not None)
        except ProviderError as error:
            return self.fail(work, error)
        except Exception as error:  # a provider bug must not stop the other zones
            log.exception("reading zone %s from provider %s failed", origin, provider_name)
            return self.fail(work, error)
        work.timings["read"] = time.perf_counter() - mark

        mark = time.perf_counter()
        zone = result.zone
        desired, findings = self.desired_records(zone, provider, current)
        work.current, work.current_soa, work.desired = current, current_soa, desired
        changes = diff_records(desired, current, ignores=zone.ignores)
        exists = serial is not None
        thresholds = self.config.thresholds_for(origin)
        findings += safety_findings(origin, changes, len(current), update_threshold=thresholds.update,
                                    delete_threshold=thresholds.delete, min_records=thresholds.min_records,
                                    zone_exists=exists, force=self.force, file=zone.file)
        if not exists and not provider.capabilities.can_create_zones:
            findings += (Finding(ERROR, "zone-missing-at-provider", origin, zone.file, 0,
                                 f"provider {provider_name!r} does not serve zone {origin} and cannot create "
                                 "zones: create it on the server (allowing updates and transfers for the "
                                 "publisher's key), then publish again"),)
        wanted_soa = zone_soa(self.config, origin, 0, desired)
        # A host that writes its own SOA (hosted DNS through octoDNS) is never sent ours.
        soa_changed = exists and not provider.capabilities.host_soa and \
            without_serial(current_soa) != without_serial(wanted_soa)
        records_change = bool(changes) or soa_changed or not exists
        serial_after = next_serial(serial) if records_change else serial
        if records_change and provider.capabilities.host_soa:
            serial_after = None  # the host sets its own; apply reports the fingerprint it serves
        work.plan = ZonePlan(origin, provider_name, changes, drift + findings, serial, serial_after,
                             soa=zone_soa(self.config, origin, serial_after or 0, desired),
                             soa_changed=soa_changed, create_zone=not exists,
                             secondaries=secondaries)
        work.status = BLOCKED if work.plan.blocked else (PLANNED if work.plan.has_changes else UNCHANGED)
        work.timings["plan"] = time.perf_counter() - mark
        return work

    def secondaries_change(self, work: _Work, exists: bool) -> tuple[str, ...] | None:
        """The secondaries to set at a provider that configures them, when they differ from its own.

        While the zone is as the publisher left it (its serial matched the state), the secondaries
        remembered in the state stand for the provider's, so a plan of thousands of unchanged zones
        asks the provider nothing per zone; otherwise the provider is asked (and, when nothing
        changes, the answer remembered by ``apply``)."""
        provider, origin = work.provider, work.origin
        if not provider.capabilities.configures_secondaries:
            return None
        wanted = tuple(sorted(set(work.zone.secondaries)))
        remembered = None if (work.full_read or not exists) else self.state.secondaries(work.provider_name, origin)
        if remembered is not None:
            have = remembered
        else:
            reader = getattr(provider, "secondaries", None)
            have = tuple(sorted(reader(origin))) if (reader is not None and exists) else ()
            if exists:
                work.secondaries_seen = have
        return wanted if wanted != have else None

    def read_current(self, work: _Work) -> tuple[int | None, tuple[Record, ...], Record | None, tuple[Finding, ...]]:
        """(serial, records, SOA, drift findings) as the provider serves them now.

        One SOA query decides: the stored records when the serial is the one we left, else a full
        read (and a drift warning when we had published this zone before).
        """
        provider = work.provider
        origin, name = work.origin, work.provider_name
        if name in self.bulk_serial_errors:
            raise ProviderError(self.bulk_serial_errors[name])
        listed = self.bulk_serials.get(name, {})
        serial = listed[origin] if origin in listed else provider.serial(origin)
        stored_serial = self.state.serial(name, origin)
        if serial is not None and serial == stored_serial:
            stored = self.state.get(name, origin)
            if stored is not None:
                return serial, stored.records, stored.soa, ()
        drift: tuple[Finding, ...] = ()
        if serial is None:
            if stored_serial is not None:
                drift = (Finding(WARNING, "zone-changed-outside", origin, work.file, 0,
                                 f"zone {origin} disappeared from provider {name!r} since the last publish"),)
            return None, (), None, drift
        snapshot = provider.read(origin)
        work.full_read = True
        if snapshot is None:
            return None, (), None, drift
        if stored_serial is not None:
            drift = (Finding(WARNING, "zone-changed-outside", origin, work.file, 0,
                             f"zone changed outside the publisher at provider {name!r} (serial {snapshot.serial}, "
                             f"last published {stored_serial}); planning against what the server serves"),)
        # Signatures and NSEC records of a signed zone are the server's, not ours: leaving them
        # out keeps them out of the diff, the thresholds and the stored state.
        records = tuple(r for r in snapshot.records if r.type not in SERVER_MANAGED_TYPES)
        return snapshot.serial, records, snapshot.soa, drift

    def desired_records(self, zone: Zone, provider: Provider, current: Sequence[Record],
                        ) -> tuple[tuple[Record, ...], tuple[Finding, ...]]:
        """The records the provider should serve: SOA left to the publisher, default apex NS,
        ALIAS flattened unless native, and findings for what this provider cannot do."""
        origin = zone.origin
        caps = provider.capabilities
        name = getattr(provider, "name", "?")
        records, apex_findings = managed_records(self.config, zone)
        findings = list(apex_findings)
        if not caps.native_alias and any(r.type == "ALIAS" for r in records):
            if self.resolver is None:
                self.resolver = AliasResolver(self.config.defaults.resolver)
            records, alias_findings = flatten_aliases(origin, records, self.resolver, current)
            findings.extend(alias_findings)
        for service in zone.services:
            findings.append(Finding(WARNING, "service-not-supported", origin, service.file, service.line,
                                    f"{service.kind}() for {service.name} -> {service.target} is not supported "
                                    f"by provider {name!r}; nothing is published for it"))
        if zone.secondaries and not caps.configures_secondaries:
            addresses = "; ".join(zone.secondaries)
            findings.append(Finding(WARNING, "secondaries-not-configured", origin, zone.file, 0,
                                    f"provider {name!r} cannot configure secondaries: on that server set, for zone "
                                    f"{origin.rstrip('.')}, also-notify {{ {addresses}; }}; and "
                                    f"allow-transfer {{ {addresses}; }};"))
        prepare = getattr(provider, "prepare", None)  # base.PreparesRecords: the host's own form and limits
        if prepare is not None:
            records, host_findings = prepare(origin, records)
            findings.extend(host_findings)
        findings.extend(capability_findings(origin, records, caps.record_types, name))
        return records, tuple(findings)

    def plan_deletions(self, evaluated: set[str], run_findings: list[Finding]) -> list[_Work]:
        """Zones published before whose files are gone: deleted only with --force or allow_deletion."""
        known = {p.name for p in self.config.providers}
        gone = [(p, z) for p, z in self.state.zones() if z not in evaluated and p in known and self.owns_published(z)]
        if gone and not evaluated:
            run_findings.append(Finding(ERROR, "empty-repository", "", "", 0,
                                        f"the repository has no zones; not deleting the {len(gone)} zone(s) "
                                        "published before"))
            return []
        works = []
        for provider_name, origin in gone:
            stored = self.state.get(provider_name, origin)
            work = _Work(origin, provider_name)
            allowed = self.force or self.config.allows_deletion(origin)
            findings: tuple[Finding, ...] = ()
            if not allowed:
                findings = (Finding(ERROR, "zone-deletion-needs-force", origin, "", 0,
                                    f"the zone's file was removed from the repository; provider {provider_name!r} "
                                    "still serves it; apply with --force (or set allow_deletion) to delete it"),)
            changes = diff_records((), stored.records if stored else ())
            work.plan = ZonePlan(origin, provider_name, changes, findings,
                                 stored.serial if stored else None, None, delete_zone=True)
            work.status = PLANNED if allowed else BLOCKED
            works.append(work)
        return works

    # -- applying ---------------------------------------------------------------------------

    def apply_zone(self, work: _Work) -> None:
        mark = time.perf_counter()
        plan = work.plan
        origin, name = work.origin, work.provider_name
        try:
            provider = work.provider or self.provider(name)
            if plan.delete_zone:
                if provider.serial(origin) is not None:  # already gone (by hand, or a retry): done
                    provider.delete_zone(origin)
                self.state.forget(name, origin)
            elif plan.create_zone and provider.capabilities.creates_filled_zones:
                # One call makes the zone with all its records (no empty zone for secondaries to see).
                filled = apply_changes((), diff_records(work.desired, ()))  # one TTL per RRset, as applied
                served = provider.create_zone(origin, plan.soa, filled)
                served = serial_of(plan.soa.data) if served is None else served
                soa = plan.soa._replace(data=_with_serial(plan.soa.data, served))
                self.state.put(name, origin, served, filled, soa)
                work.plan = replace(plan, serial_after=served)
                if plan.secondaries is not None:
                    provider.set_secondaries(origin, plan.secondaries)
                if provider.capabilities.configures_secondaries:
                    self.state.remember_secondaries(name, origin, plan.secondaries or ())
            else:
                if plan.create_zone:
                    provider.create_zone(origin, plan.soa, _apex_ns_with_glue(origin, work.desired))
                    # Plan the rest against what the new zone holds (its NS, maybe more).
                    snapshot = provider.read(origin)
                    work.current = (tuple(r for r in snapshot.records if r.type not in SERVER_MANAGED_TYPES)
                                    if snapshot else ())
                    changes = diff_records(work.desired, work.current, ignores=work.zone.ignores)
                    expected = snapshot.serial if snapshot else None
                    # The filled zone must have a newer serial than the empty one secondaries may
                    # already have transferred.
                    soa = plan.soa._replace(data=_with_serial(plan.soa.data, next_serial(expected)))
                else:
                    changes, expected, soa = plan.changes, plan.serial_before, plan.soa
                if plan.records_change:
                    served = provider.apply(origin, changes, soa, expected)
                    soa = soa._replace(data=_with_serial(soa.data, served))
                    self.state.put(name, origin, served, apply_changes(work.current, changes), soa)
                    work.plan = replace(plan, serial_after=served)
                elif work.full_read:
                    self.state.put(name, origin, plan.serial_before, work.current, work.current_soa)
                if plan.secondaries is not None:
                    provider.set_secondaries(origin, plan.secondaries)
                    self.state.remember_secondaries(name, origin, plan.secondaries)
                elif work.secondaries_seen is not None:
                    self.state.remember_secondaries(name, origin, work.secondaries_seen)
            work.status = APPLIED
        except Exception as error:  # isolation: this zone fails, the others go on
            if not isinstance(error, ProviderError):
                log.exception("applying zone %s to provider %s failed", origin, name)
            self.state.forget(name, origin)  # next run reads the server and repairs
            self.fail(work, error)
        work.timings["apply"] = time.perf_counter() - mark

    def fail(self, work: _Work, error: BaseException) -> _Work:
        message = str(error) or error.__class__.__name__
        if not isinstance(error, ProviderError):
            message = f"internal error: {error.__class__.__name__}: {message}"
        if work.provider_name not in message or work.origin.rstrip(".") not in message:
            message = f"provider {work.provider_name!r}, zone {work.origin}: {message}"
        work.status = FAILED
        work.error = message
        return work


def ownership_refusal(config: Config, origin: str, file: str, owners: Mapping[str, str]) -> Finding | None:
    """Why the repository of ``config`` must not publish ``origin``: ``owns`` does not let it, or
    another repository owns it (``owners``: zone -> repository key); None when it may."""
    if not config.may_own(origin):
        return Finding(ERROR, "zone-not-allowed", origin, file, 0,
                       f"zone {origin.rstrip('.')} is not among the zones this repository may publish "
                       "(owns in its [[repository]] table); it is not published")
    owner = owners.get(origin)
    if owner is not None and owner != config.key:
        return _owned_elsewhere(origin, file)
    return None


def _owned_elsewhere(origin: str, file: str) -> Finding:
    return Finding(ERROR, "zone-owned-elsewhere", origin, file, 0,
                   f"zone {origin.rstrip('.')} belongs to another repository on this instance; it is not "
                   "published from this one (nothing was read or changed)")


def managed_records(config: Config, zone: Zone) -> tuple[tuple[Record, ...], tuple[Finding, ...]]:
    """The zone's records with what the publisher manages applied, before any provider step:
    no SOA (``soa.zone_soa`` makes it), and the apex NS of ``[defaults] nameservers`` when the zone
    has none of its own, or when it is a BIND file (LuaDNS replaces those with its own name
    servers, so a migrated file stops pointing at the old provider; ``keep_nameservers`` keeps
    them).  ``apply`` and ``build`` both publish exactly this."""
    origin = zone.origin
    configured = config.defaults.nameservers
    records = tuple(r for r in zone.records if r.type != "SOA")
    findings: list[Finding] = []
    secondary_ns = set(zone.secondary_nameservers)
    own_ns = [r for r in records if r.name == origin and r.type == "NS" and r.data not in secondary_ns]
    if own_ns and configured and zone.kind == BIND and not config.keeps_nameservers(origin):
        file_ns = list(dict.fromkeys(r.data for r in own_ns))
        if set(file_ns) != set(configured):
            first = own_ns[0]
            records = tuple(r for r in records if not (r.name == origin and r.type == "NS"))
            own_ns = []
            findings.append(Finding(
                WARNING, "apex-ns-replaced", origin, first.file or zone.file, first.line,
                f"the file's apex NS {', '.join(file_ns)} are replaced by the configured name servers "
                f"{', '.join(configured)} ([defaults] nameservers); to publish the file's own, set "
                f'[zones."{origin.rstrip(".")}"] keep_nameservers = true'))
    if not own_ns:
        if configured:
            ttl = config.ttl_for(origin)
            records += tuple(Record(origin, "NS", ttl, ns) for ns in configured)
        else:
            findings.append(Finding(ERROR, "missing-apex-ns", origin, zone.file, 0,
                                    "the zone has no apex NS records and [defaults] nameservers is empty"))
    return records, tuple(findings)


def evaluate_configured(config: Config, repo_path: Path) -> RepositoryResult:
    """The repository evaluated as ``config`` shapes it, listed once (the listing reads and
    confines every companion file, and the per-zone TTLs need the zone names), through the
    ``[cache]`` of evaluated zones unless it is disabled."""
    from publisher.zone.evaluation_cache import EvaluationCache

    repo = Path(repo_path).resolve()
    layout = discover(repo)
    cache = EvaluationCache(config.cache.path, config.cache.max_size) if config.cache.enabled else None
    return evaluate_repository(repo, evaluation_options(config, layout), layout=layout, cache=cache)


def evaluation_options(config: Config, layout: Layout) -> EvaluationOptions:
    """How configuration shapes evaluation: default TTLs (per zone where ``[zones]`` overrides
    them) and the Lua sandbox limits of ``[sandbox]``."""
    sandbox = config.sandbox
    limits = SandboxLimits(cpu_seconds=float(sandbox.cpu_seconds), memory_bytes=sandbox.memory_mb << 20,
                           max_records=sandbox.max_records, wall_seconds=float(sandbox.wall_seconds))
    origins = [source.origin for source in layout.sources]
    overrides = tuple((origin, config.ttl_for(origin)) for origin in origins
                      if config.ttl_for(origin) != config.defaults.ttl)
    return EvaluationOptions(default_ttl=config.defaults.ttl, lua_limits=limits, ttl_overrides=overrides)


def _apex_ns_with_glue(origin: str, records: Sequence[Record]) -> tuple[Record, ...]:
    """The apex NS records and the in-zone addresses of their targets: the least a new zone must
    hold to load (named refuses a zone whose in-zone name server has no address)."""
    apex_ns = tuple(r for r in records if r.name == origin and r.type == "NS")
    targets = {r.data for r in apex_ns}
    return apex_ns + tuple(r for r in records if r.type in ("A", "AAAA") and r.name in targets)


def _with_serial(soa_data: str, serial: int) -> str:
    fields = soa_data.split()
    fields[2] = str(serial)
    return " ".join(fields)


# ZoneOutcome and the statuses are publisher.outcome's, re-exported for older imports.
__all__ = ["publish", "PublishReport", "ZoneOutcome", "UNCHANGED", "APPLIED", "PLANNED", "BLOCKED", "FAILED",
           "KEPT_LAST_GOOD", "PROBLEM_STATUSES", "PROBLEM_WARNINGS"]
