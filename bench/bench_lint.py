"""Lint benchmark (issue 2): our `lint` of a generated zone, as a BIND file and as the equivalent Lua
file, against `named-checkzone -i full` and `kzonecheck` on the same BIND file, in the same run.

Runs are interleaved (one of each tool per round) so that load from elsewhere on the machine falls on
every tool alike; the median of the rounds is reported, with each command's own peak RSS.

    python bench/bench_lint.py [--sizes 100000,1000000] [--repeat 5] [--repeat-large 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys

import harness
from harness import ORIGIN, Series, fmt_ratio, fmt_seconds, offline, ours, our_env

BAR_RATIO = {"ours: lint BIND file": 1.5, "ours: lint Lua file": 3.0}  # issue 7: 1.5x for BIND files, 3x for Lua
BAR_RSS_MIB = 1024.0
LARGE = 1_000_000

# Which path the Lua figure took: the sandbox (the only definition of the record functions) compiles a
# big file as written ("whole") or split into closures ("split"); asked once per size, untimed.
LUA_PATH_PROBE = ("import sys; from pathlib import Path\n"
                  "from publisher.zone.sandbox import Chunk, LuaSandbox\n"
                  "with LuaSandbox() as sandbox:\n"
                  "    r = sandbox.evaluate(sys.argv[2] + '.', [Chunk(Path(sys.argv[1]).name, Path(sys.argv[1]).read_bytes())])\n"
                  "print(r.status, r.compiled, r.count)\n")


def lua_path(lua_file: str) -> str:
    """How our lint evaluated the Lua file, e.g. "Lua 5.1 sandbox, compiled split into closures"."""
    result = harness.run_measured([sys.executable, "-c", LUA_PATH_PROBE, lua_file, ORIGIN], env=our_env(), timeout=300,
                                   keep_output=True)
    words = result.output_tail.strip().split()
    if result.returncode != 0 or len(words) < 3 or words[-3] != "ok":
        return "Lua 5.1 sandbox (path unknown: " + " ".join(words[-6:]) + ")"
    compiled = {"split": "compiled split into closures", "whole": "compiled as written"}.get(words[-2], words[-2])
    return f"Lua 5.1 sandbox, {compiled}"


FROM_TEXT = ("import sys, dns.zone\n"
             "z = dns.zone.from_text(open(sys.argv[1]).read(), origin=sys.argv[2], relativize=False)\n"
             "print(sum(len(r) for _, n in z.nodes.items() for r in n.rdatasets))\n")


def probe_ours() -> str | None:
    """None when `publisher lint` works; otherwise why not (reported as "not available")."""
    files = harness.zone_files(200, ("bind", "lua"))
    for fmt in ("bind", "lua"):
        result = harness.run_measured(ours("lint", str(files[fmt]), "--zone", ORIGIN), env=our_env(), timeout=120)
        if result.returncode not in (0, 1):
            lines = result.output_tail.strip().splitlines()
            return f"`publisher lint` of a {fmt} file exited {result.returncode}: " + (lines[-1][:200] if lines else "")
    return None


def bench_size(records: int, repeat: int, with_from_text: bool) -> tuple[dict[str, Series], str]:
    files = harness.zone_files(records, ("bind", "lua"))
    bind, lua = str(files["bind"]), str(files["lua"])
    commands: dict[str, list[str] | None] = {
        "named-checkzone -i full": offline(["named-checkzone", "-i", "full", ORIGIN, bind]),
        "kzonecheck": ["kzonecheck", "-o", ORIGIN, bind] if shutil.which("kzonecheck") else None,
        "ours: lint BIND file": ours("lint", bind, "--zone", ORIGIN),
        "ours: lint Lua file": ours("lint", lua, "--zone", ORIGIN),
    }
    if with_from_text:
        commands["dns.zone.from_text (reference)"] = [sys.executable, "-c", FROM_TEXT, bind, ORIGIN + "."]
    why_not = probe_ours()
    series: dict[str, Series] = {}
    for label, cmd in commands.items():
        if cmd is None:
            series[label] = harness.unavailable(label, "kzonecheck not installed (Debian knot-dnssecutils)")
        elif label.startswith("ours") and why_not:
            series[label] = harness.unavailable(label, why_not)
        else:
            series[label] = Series(label)
    runnable = {label: cmd for label, cmd in commands.items() if series[label].available}
    for round_ in range(repeat):
        print(f"  {records:,} records: round {round_ + 1}/{repeat}", flush=True)
        for label, cmd in runnable.items():
            if label.startswith("dns.zone") and round_ > 0:
                continue  # a reference line: one run is plenty at ~10 s a run
            env = our_env() if label.startswith("ours") else None
            series[label].runs.append(harness.run_measured(cmd, env=env))
    for s in series.values():
        if s.available and not s.ok:
            bad = next(r for r in s.runs if r.returncode != 0)
            s.note = f"exit {bad.returncode}: " + " | ".join(bad.output_tail.strip().splitlines()[-2:])[:300]
    path = lua_path(lua) if series["ours: lint Lua file"].available else "not run"
    return series, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="lint benchmark")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=5, help="rounds below 1,000,000 records")
    parser.add_argument("--repeat-large", type=int, default=3, help="rounds at 1,000,000 records and more")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    results: dict[str, dict] = {}
    rows = []
    verdicts = []
    for records in sizes:
        repeat = args.repeat_large if records >= LARGE else args.repeat
        series, path = bench_size(records, repeat, with_from_text=records < LARGE)
        anchor = series["named-checkzone -i full"].median if series["named-checkzone -i full"].ok else None
        size_result = {}
        for label, s in series.items():
            ratio = (s.median / anchor) if (s.ok and anchor) else None
            size_result[label] = {**s.to_json(), "ratio_to_named_checkzone": ratio}
            if label == "ours: lint Lua file":
                size_result[label]["path"] = path
            status = "ok" if s.ok else ("not available" if not s.available else "FAILED")
            rows.append([f"{records:,}", label, fmt_seconds(s.median) if s.ok else "n/a", str(len(s.runs)),
                         fmt_ratio(s.median, anchor) if s.ok else "n/a",
                         f"{s.peak_rss_mib:.0f} MiB" if s.runs else "n/a",
                         status + (f" ({s.note})" if s.note and not s.ok else "")])
            if label.startswith("ours"):
                if not s.ok:
                    verdicts.append(f"{records:,} {label}: {status}")
                    continue
                bar = BAR_RATIO.get(label, 3.0)
                passed = ratio is not None and ratio <= bar
                verdict = f"{records:,} {label}" + (f" ({path})" if label == "ours: lint Lua file" else "") + \
                          f": {ratio:.2f}x named-checkzone (bar <= {bar:g}x) " \
                          f"{'PASS' if passed else 'FAIL'}"
                if records >= LARGE:
                    rss_ok = s.peak_rss_mib < BAR_RSS_MIB
                    verdict += f"; peak {s.peak_rss_mib:.0f} MiB (bar < 1 GiB) {'PASS' if rss_ok else 'FAIL'}"
                    passed = passed and rss_ok
                size_result[label]["meets_bar"] = passed
                verdicts.append(verdict)
        results[str(records)] = size_result

    harness.print_table("lint: median wall time, ratio to named-checkzone, peak RSS",
                        ["records", "command", "median", "runs", "ratio", "peak RSS", "status"], rows)
    print("\n" + "\n".join(verdicts))
    print("\nnamed-checkzone runs in a network namespace of its own (`unshare -n`): with -i full it looks\n"
          "up every glue name with the system resolver, which must not leave the machine; the lookups\n"
          "fail at once there.  Our lint never resolves names.")
    harness.write_results("lint", {"sizes": results, "verdicts": verdicts, "bar_ratio": BAR_RATIO,
                                   "bar_rss_mib": BAR_RSS_MIB})
    return 0


if __name__ == "__main__":
    sys.exit(main())
