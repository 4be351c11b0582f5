"""Publish benchmark (issue 3): a generated zone into a fresh BIND over RFC 2136 with TSIG, by
octoDNS 1.22 + octodns-bind (``Rfc2136Provider``, run from bench/.venv) and by us
(``publisher apply`` with an rfc2136 provider), each into its own fresh ``named``.

Three steps per tool: first publish (empty zone -> all records), a no-change plan, and a one-record
edit applied.  After each publish the served zone is counted over AXFR, so a tool that "finishes
fast" without publishing everything shows up.  The rounds alternate (octoDNS's first, ours,
octoDNS's second, ...) so that both tools meet the same load on a shared machine.  Ours runs with
its default ``[cache]`` of evaluated zones (fresh per round, beside the round's state database):
the first publish fills it, the no-change plan takes the zone from it, the edit evaluates the zone
again.  Our source is compiled to bytecode first, as an installed package is (octoDNS's venv has
its bytecode from pip).

    python bench/bench_publish.py [--records 10000] [--ours-large 100000] [--repeat 3] [--octodns-large]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import generate
import harness
from harness import ORIGIN, TSIG_ALGORITHM, TSIG_NAME, VENV, Named, Series, fmt_seconds, our_env, ours

BAR_FIRST = 3.0
BAR_NOCHANGE = 20.0  # issue 9: evaluation cached by content, so a no-change plan evaluates nothing
BAR_EDIT = 10.0
STEPS = ("first publish", "no-change plan", "one-record edit")


_BATCH_CHECK = """
import sys, warnings, dns.update
warnings.simplefilter("ignore")
from octodns.provider.yaml import YamlProvider
from octodns.zone import Zone
source = YamlProvider('config', sys.argv[1], enforce_order=False)
zone = Zone(sys.argv[2], [])
source.populate(zone)
records = sorted(zone.records)  # a plan from an empty zone creates every record, in this order
for size in [int(s) for s in sys.argv[3:]]:
    fits = True
    for start in range(0, len(records), size):
        update = dns.update.UpdateMessage(sys.argv[2])
        for record in records[start:start + size]:
            name, ttl, rtype, rdatas = record.rrs  # as octodns_bind.Rfc2136Provider._apply does
            update.add(name, ttl, rtype, *rdatas)
        try:
            fits = len(update.to_wire()) < 65535 - 200  # room for the TSIG record
        except dns.exception.TooBig:
            fits = False
        if not fits:
            break
    if fits:
        print(size)
        break
"""


def largest_octodns_batch(records: int) -> int:
    """The largest update_batch_size at which octodns-bind's messages fit this zone (its default,
    1,000 RRsets, overflows 64 KiB where DKIM keys sort next to each other)."""
    zones_dir = harness.zone_files(records, ("octodns",))["octodns"].parent
    candidates = ["1000", "500", "250", "125", "100", "50", "20"]
    out = subprocess.run([str(VENV / "bin" / "python"), "-c", _BATCH_CHECK, str(zones_dir), ORIGIN + ".",
                          *candidates], capture_output=True, text=True, timeout=600)
    try:
        return int(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"  could not size octoDNS batches ({out.stderr.strip()[-200:]}); using 100", flush=True)
        return 100


def octodns_config(workdir: Path, named: Named, batch: int = 1000) -> Path:
    config = workdir / "octodns.yaml"
    config.write_text(f"""---
providers:
  config:
    class: octodns.provider.yaml.YamlProvider
    directory: {workdir / 'zones'}
    default_ttl: {generate.DEFAULT_TTL}
    enforce_order: false
  bind:
    class: octodns_bind.Rfc2136Provider
    host: 127.0.0.1
    port: {named.port}
    key_name: {TSIG_NAME}
    key_secret: env/BENCH_TSIG_SECRET
    key_algorithm: {TSIG_ALGORITHM}
    update_batch_size: {batch}
zones:
  {ORIGIN}.:
    sources:
      - config
    targets:
      - bind
""")
    return config


def our_config(workdir: Path, named: Named, source: Path) -> Path:
    config = workdir / "publisher.toml"
    config.write_text(named.publisher_toml(f'path = "{source}"', workdir / "state.db"))
    return config


def edit_value(step: int) -> str:
    return f"10.254.{step // 250}.{step % 250 + 1}"


def edit_file(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise RuntimeError(f"{path.name}: {old!r} not found")
    path.write_text(text.replace(old, new, 1))


class Step:
    def __init__(self, label: str) -> None:
        self.series = Series(label)
        self.served: list[int] = []
        self.visible: list[bool] = []


def run_octodns(records: int, round_: int, repeat: int, workroot: Path, batch: int, steps: dict[str, Step]) -> None:
    """One round of octoDNS's three steps, added to ``steps``."""
    files = harness.zone_files(records, ("octodns",))
    sync = str(VENV / "bin" / "octodns-sync")
    if not Path(sync).exists():
        for s in steps.values():
            s.series = harness.unavailable(s.series.label, "bench/.venv has no octodns-sync (run bench/run)")
        return
    print(f"  octoDNS {records:,}: round {round_ + 1}/{repeat}", flush=True)
    workdir = workroot / f"octodns-{records}-{round_}"
    (workdir / "zones").mkdir(parents=True)
    zone_yaml = workdir / "zones" / f"{ORIGIN}.yaml"
    shutil.copy(files["octodns"], zone_yaml)
    with Named(workdir / "named", check_integrity=False) as named:
        config = octodns_config(workdir, named, batch)
        env = {**our_env(), "BENCH_TSIG_SECRET": named.secret}
        base = [sync, "--config-file", str(config), "--quiet"]
        for name in STEPS:
            if name == "one-record edit":
                # octoDNS's YAML writes the value on its own line below "values:".
                edit_file(zone_yaml, f"- {generate.EDIT_VALUE}\n", f"- {edit_value(round_)}\n")
            cmd = base if name == "no-change plan" else base + ["--doit"]
            result = harness.run_measured(cmd, env=env, timeout=3600)
            steps[name].series.runs.append(result)
            steps[name].served.append(named.served_records())
            if name == "one-record edit":
                steps[name].visible.append(named.query(f"{generate.EDIT_NAME}.{ORIGIN}.") == [edit_value(round_)])


def compile_ours() -> None:
    """Bytecode for our source, as ``pip install`` leaves it: with PYTHONDONTWRITEBYTECODE set (or
    a fresh snapshot), every timed run would otherwise compile the modules it imports again."""
    subprocess.run([harness.PYTHON, "-m", "compileall", "-q", str(harness.our_source() / "publisher")],
                   check=True, stdout=subprocess.DEVNULL)


def run_ours(records: int, round_: int, repeat: int, workroot: Path, fmt: str, steps: dict[str, Step]) -> None:
    """One round of our three steps, added to ``steps``."""
    files = harness.zone_files(records, (fmt,))
    print(f"  ours {records:,} ({fmt}): round {round_ + 1}/{repeat}", flush=True)
    workdir = workroot / f"ours-{records}-{fmt}-{round_}"
    source = workdir / "zones"
    source.mkdir(parents=True)
    zone_file = source / files[fmt].name
    shutil.copy(files[fmt], zone_file)
    with Named(workdir / "named", check_integrity=False) as named:
        config = our_config(workdir, named, source)
        for name in STEPS:
            if name == "one-record edit":
                old = (f'"{generate.EDIT_VALUE}"' if fmt == "lua" else f"\t{generate.EDIT_VALUE}\n")
                new = (f'"{edit_value(round_)}"' if fmt == "lua" else f"\t{edit_value(round_)}\n")
                edit_file(zone_file, old, new)
            cmd = ours("plan", "--config", str(config)) if name == "no-change plan" else \
                ours("apply", "--config", str(config))
            result = harness.run_measured(cmd, env=our_env(), timeout=3600)
            steps[name].series.runs.append(result)
            steps[name].served.append(named.served_records())
            if name == "one-record edit":
                steps[name].visible.append(named.query(f"{generate.EDIT_NAME}.{ORIGIN}.") == [edit_value(round_)])
            if result.returncode != 0:
                break  # later steps depend on this one


def first_publish_probe(tool: str, records: int, workroot: Path, *, check_integrity: bool, batch: int,
                        fmt: str) -> dict:
    """One first publish into a fresh named, to show what works where (not timed for the bars)."""
    workdir = workroot / f"probe-{tool}-{batch}-{int(check_integrity)}"
    source = workdir / "zones"
    source.mkdir(parents=True)
    with Named(workdir / "named", check_integrity=check_integrity) as named:
        if tool == "octodns":
            shutil.copy(harness.zone_files(records, ("octodns",))["octodns"], source / f"{ORIGIN}.yaml")
            cmd = [str(VENV / "bin" / "octodns-sync"), "--config-file",
                   str(octodns_config(workdir, named, batch)), "--quiet", "--doit"]
        else:
            shutil.copy(harness.zone_files(records, (fmt,))[fmt], source / f"{ORIGIN}.{fmt}")
            cmd = ours("apply", "--config", str(our_config(workdir, named, source)))
        result = harness.run_measured(cmd, env={**our_env(), "BENCH_TSIG_SECRET": named.secret}, timeout=1800)
        served = named.served_records()
    lines = [line for line in result.output_tail.strip().splitlines() if line.strip()]
    error = ""
    if result.returncode != 0:
        error = next((line.strip() for line in reversed(lines) if "Error" in line or "error" in line or
                      "Exception" in line or "TooBig" in line or "REFUSED" in line), lines[-1] if lines else "")
    return {"tool": tool, "check_integrity": check_integrity, "batch": batch if tool == "octodns" else None,
            "exit": result.returncode, "seconds": result.seconds, "served": served, "expected": records,
            "error": error[:300]}


def probe_ours() -> str | None:
    """None when `publisher plan` exists (it needs a provider to say more); else why not."""
    result = harness.run_measured(ours("plan", "--help"), env=our_env(), timeout=60)
    if result.returncode != 0:
        lines = result.output_tail.strip().splitlines()
        return "`publisher plan` is not usable: " + (lines[-1][:200] if lines else f"exit {result.returncode}")
    return None


def summarise(steps: dict[str, Step], expected: int) -> dict[str, dict]:
    out = {}
    for name, step in steps.items():
        s = step.series
        if s.available and s.runs and not s.ok:
            bad = next(r for r in s.runs if r.returncode != 0)
            s.note = f"exit {bad.returncode}: " + " | ".join(bad.output_tail.strip().splitlines()[-2:])[:300]
        complete = bool(step.served) and all(n == expected for n in step.served)
        out[name] = {**s.to_json(), "served_records": step.served, "expected_records": expected,
                     "complete": complete, "edit_visible": step.visible}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="publish benchmark")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--ours-large", type=int, default=100_000, help="also time ours alone at this size (0: skip)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--repeat-large", type=int, default=1)
    parser.add_argument("--format", choices=("bind", "lua"), default="lua", help="our source zone format")
    parser.add_argument("--octodns-large", action="store_true", help="also run octoDNS at --ours-large (slow)")
    parser.add_argument("--octodns-batch", type=int, default=0,
                        help="octodns-bind update_batch_size for the timed runs (default: the largest that fits "
                             "this zone; its own default, 1000, overflows a 64 KiB message on runs of DKIM keys)")
    parser.add_argument("--no-probes", action="store_true", help="skip the one-off compatibility probes")
    args = parser.parse_args(argv)

    why_not = probe_ours()
    if not why_not:
        compile_ours()
    results: dict[str, dict] = {}
    rows, verdicts = [], []
    if not args.octodns_batch and Path(VENV / "bin" / "python").exists():
        args.octodns_batch = largest_octodns_batch(args.records)
        print(f"  octoDNS update_batch_size for this zone: {args.octodns_batch}", flush=True)
    plan = [(args.records, args.repeat, True)]
    if args.ours_large:
        plan.append((args.ours_large, args.repeat_large, args.octodns_large))
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        for records, repeat, with_octodns in plan:
            expected = records  # the generated zone holds `records` RRs, SOA included
            octo = {name: Step(name) for name in STEPS} if with_octodns else None
            mine = {name: Step(name) for name in STEPS}
            if why_not:
                for step in mine.values():
                    step.series = harness.unavailable(step.series.label, why_not)
            # Round by round, one tool then the other, so both meet the same load on a shared machine.
            for round_ in range(repeat):
                if octo is not None:
                    run_octodns(records, round_, repeat, Path(tmp), args.octodns_batch, octo)
                if not why_not:
                    run_ours(records, round_, repeat, Path(tmp), args.format, mine)
            octo_json = summarise(octo, expected) if octo else None
            ours_json = summarise(mine, expected)
            results[str(records)] = {"octodns": octo_json, "ours": ours_json, "format": args.format}
            for name, bar in zip(STEPS, (BAR_FIRST, BAR_NOCHANGE, BAR_EDIT)):
                o = octo[name].series if octo else None
                m = mine[name].series
                speedup = (o.median / m.median) if (o and o.ok and m.ok) else None
                if speedup is not None:
                    results[str(records)]["ours"][name]["speedup_vs_octodns"] = speedup
                rows.append([f"{records:,}", name,
                             _cell(o, octo[name] if octo else None, expected),
                             _cell(m, mine[name], expected),
                             f"{speedup:.1f}x" if speedup else "n/a",
                             f">= {bar:.0f}x" if octo else ""])
                if octo:
                    if speedup is None:
                        verdicts.append(f"{records:,} {name}: not measured "
                                        f"({'ours: ' + m.note if not m.ok else 'octoDNS: ' + (o.note if o else '')})")
                    else:
                        verdicts.append(f"{records:,} {name}: ours {speedup:.1f}x faster than octoDNS "
                                        f"(bar >= {bar:.0f}x) {'PASS' if speedup >= bar else 'FAIL'}")
        probes = []
        if not args.no_probes:
            print("  compatibility probes (one first publish each) ...", flush=True)
            probes.append(first_publish_probe("octodns", args.records, Path(tmp), check_integrity=False,
                                              batch=1000, fmt=args.format))
            probes.append(first_publish_probe("octodns", args.records, Path(tmp), check_integrity=True,
                                              batch=args.octodns_batch, fmt=args.format))
            if not why_not:
                probes.append(first_publish_probe("ours", args.records, Path(tmp), check_integrity=True,
                                                  batch=0, fmt=args.format))
        results["probes"] = probes
    if probes:
        harness.print_table(f"compatibility: one first publish of {args.records:,} records into a fresh named",
                            ["tool", "named check-integrity", "batch", "result", "served"],
                            [[p["tool"], "yes (BIND default)" if p["check_integrity"] else "no",
                              str(p["batch"] or "by size"),
                              "ok" if p["exit"] == 0 else f"FAILED: {p['error'][:110]}",
                              f"{p['served']}/{p['expected']}"] for p in probes])
    harness.print_table(f"publish into a fresh BIND over RFC 2136 (median; our source: {args.format}; "
                        f"octoDNS update_batch_size {args.octodns_batch}; named check-integrity no); "
                        "served = records in AXFR after the step",
                        ["records", "step", "octoDNS 1.22", "ours", "speed-up", "bar"], rows)
    print("\n" + "\n".join(verdicts))
    harness.write_results("publish", {"sizes": results, "verdicts": verdicts})
    return 0


def _cell(series: Series | None, step: Step | None, expected: int) -> str:
    if series is None:
        return "not run"
    if not series.available:
        return "not available"
    if not series.ok:
        return "FAILED"
    text = fmt_seconds(series.median)
    if step and step.served and any(n != expected for n in step.served):
        text += f" (served {min(step.served)}/{expected})"
    if step and step.visible and not all(step.visible):
        text += " (edit not served)"
    return text


if __name__ == "__main__":
    sys.exit(main())
