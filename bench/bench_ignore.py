"""ignore() rules in planning (issue 8): a zone whose provider holds N records that git deletes,
planned against N ``ignore()`` rules (half exact names, half ``%`` patterns), none of which match.
Before the rules were indexed this was N x N pattern matches (20,000 x 20,000: 126 s here).

    python bench/bench_ignore.py [--count 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.model import IgnoreRule, Record  # noqa: E402
from publisher.publish.plan import diff_records  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000, help="rules, and records at the provider")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    n = args.count
    rules = tuple(IgnoreRule(f"keep{i}.example.com.", "TXT") if i % 2 else
                  IgnoreRule(f"_acme-challenge.%.h{i}.example.com.", "TXT") for i in range(n))
    current = tuple(Record(f"r{i}.h{i}.example.com.", "TXT", 300, f'"{i}"') for i in range(n))
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        changes = diff_records((), current, ignores=rules)
        times.append(time.perf_counter() - start)
    assert len(changes) == n
    print(f"plan of {n} deletions against {n} ignore() rules: median {sorted(times)[len(times) // 2]:.2f} s "
          f"(of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
