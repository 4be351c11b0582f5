"""Status page, API and metrics with many repositories: what the reads cost as the state grows.

REPOSITORIES repositories of ZONES zones each, RUNS deploy runs each (and a request's plan every fifth
run), recorded by the real RunStore into a fresh state database; then each page is asked five times
through the Flask app (loopback: the operator) and the median is printed, beside the one-repository
form's query on the same rows (``zone_states()`` instance-wide, what ``/`` read before).

``PYTHONPATH=$PWD python3 bench/bench_status_pages.py [REPOSITORIES ZONES RUNS]`` (default 100 200 30).
Only files on this machine; no network.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from publisher.config import StateConfig, load_config_text
from publisher.service.runs import OK, RunRecord, ZoneOutcome
from publisher.service.web import create_app


def median_ms(call, times: int = 5) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent) * 1000


def main(repositories: int = 100, zones: int = 200, runs: int = 30) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-status-"))
    text = "".join(f'[[repository]]\nname = "r{i}"\n[repository.source]\npath = "p{i}"\n' for i in range(repositories))
    app = create_app(replace(load_config_text(text, base=root), state=StateConfig(root / "state.db")), {"TESTING": True})
    shared = app.extensions["publisher"]
    for n in range(runs):
        for i in range(repositories):
            outcomes = tuple(ZoneOutcome(f"z{z}.r{i}.example.", "p", "applied" if (z + n) % 7 else "kept-last-good")
                             for z in range(zones))
            shared.runs.record(RunRecord(f"r{i}", "push", OK, n, n + 1, commit="a" * 40, zones=outcomes))
            if n % 5 == 0:
                shared.runs.record(RunRecord(f"r{i}#request/{n}", "plan", OK, n, n + 1))
    print(f"{repositories} repositories x {zones} zones, {runs} runs each "
          f"({repositories * zones * runs} zone rows); load {open('/proc/loadavg').read().split()[:3]}")
    client = app.test_client()
    middle = f"r{repositories // 2}"
    for path in ("/", "/api/repositories", "/metrics", f"/repositories/{middle}", f"/api/runs?repository={middle}",
                 f"/api/repositories/{middle}/zones", "/api/runs"):
        assert client.get(path).status_code == 200, path
        print(f"  {path:34s} {median_ms(lambda: client.get(path)):8.1f} ms")
    print(f"  {'zone_states() instance-wide':34s} {median_ms(shared.runs.zone_states):8.1f} ms")


if __name__ == "__main__":
    main(*(int(argument) for argument in sys.argv[1:4]))
