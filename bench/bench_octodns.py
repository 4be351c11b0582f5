"""octoDNS bridge benchmark (issue 10): a generated zone published through the ``octodns`` provider
type vs ``octodns-sync`` itself, on the same octoDNS provider classes and versions:

- Route 53: ``octodns_route53.Route53Provider`` against moto in server mode (``moto_server`` on
  127.0.0.1, fake credentials, ``AWS_ENDPOINT_URL_ROUTE_53``), a fresh moto per run;
- PowerDNS: ``octodns_powerdns.PowerDnsProvider`` against a fresh ``pdns_server`` per run.

Steps per tool and round: first publish (the zone does not exist yet) and a no-change plan.  After
the first publish the records the host serves are counted, so a fast but incomplete run shows.
octoDNS's source is the generated YAML (for Route 53 without the apex NS, which the host owns;
octoDNS would refuse the root NS change without --force); ours is the Lua file, whose apex NS
are left to Route 53 (``apex-ns-left-to-host``) and published to PowerDNS (``manage_root_ns``).

    python bench/bench_octodns.py [--records 10000] [--repeat 3] [--hosts route53,powerdns]

Both tools run from this Python environment (``pip install '.[test]'`` brings octodns,
octodns-route53, octodns-powerdns and moto[server]<5.2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import harness
from harness import ORIGIN, ROOT, Series, fmt_ratio, fmt_seconds, our_env, ours

STEPS = ("first publish", "no-change plan")
BAR = 1.0  # ours / octoDNS, per step: "costs no more than octoDNS itself"
FAKE_KEY_ID, FAKE_SECRET = "AKIABENCHFAKEKEYID00", "bench-fake-secret-access-key"


class Moto:
    """``moto_server`` on a free loopback port, in its own process (as a real API is)."""

    def __init__(self, workdir: Path) -> None:
        self.port = harness.free_port()
        self.log = (workdir / "moto.log").open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 30
        import requests

        while time.time() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/moto-api/", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("moto_server did not start")

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_ROUTE_53": f"http://127.0.0.1:{self.port}", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "BENCH_KEY_ID": FAKE_KEY_ID, "BENCH_SECRET": FAKE_SECRET}

    def served(self) -> int:
        import boto3

        client = boto3.client("route53", endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1",
                              aws_access_key_id=FAKE_KEY_ID, aws_secret_access_key=FAKE_SECRET)
        zones = [z["Id"] for z in client.list_hosted_zones()["HostedZones"] if z["Name"] == f"{ORIGIN}."]
        if not zones:
            return 0
        count, start = 0, {}
        while True:
            page = client.list_resource_record_sets(HostedZoneId=zones[0], **start)
            count += sum(len(s.get("ResourceRecords", ())) for s in page["ResourceRecordSets"])
            if not page["IsTruncated"]:
                return count
            start = {"StartRecordName": page["NextRecordName"], "StartRecordType": page["NextRecordType"]}

    def close(self) -> None:
        harness.stop_process_group(self.process, self.log)


class PowerDNS:
    """A fresh ``pdns_server`` (the test suite's own start-up: sqlite3 backend, API on loopback)."""

    def __init__(self, workdir: Path) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.servers import _start_pdns

        self.server = _start_pdns(workdir / "pdns")

    def env(self) -> dict[str, str]:
        return {"BENCH_PDNS_KEY": self.server.api_key}

    def served(self) -> int:
        import requests

        response = requests.get(f"{self.server.api_url}/servers/localhost/zones/{ORIGIN}.",
                                headers={"X-API-Key": self.server.api_key}, timeout=60)
        if response.status_code != 200:
            return 0
        return sum(len(r["records"]) for r in response.json()["rrsets"])

    def close(self) -> None:
        self.server.stop()


HOSTS: dict[str, Callable[[Path], object]] = {"route53": Moto, "powerdns": PowerDNS}


def octodns_target(host: str, server) -> str:
    if host == "route53":
        return ("    class: octodns_route53.Route53Provider\n    access_key_id: env/BENCH_KEY_ID\n"
                "    secret_access_key: env/BENCH_SECRET\n")
    return (f"    class: octodns_powerdns.PowerDnsProvider\n    host: 127.0.0.1\n"
            f"    port: {server.server.api_port}\n    api_key: env/BENCH_PDNS_KEY\n")


def our_target(host: str, server) -> str:
    if host == "route53":
        return ('class = "octodns_route53.Route53Provider"\naccess_key_id = "env:BENCH_KEY_ID"\n'
                'secret_access_key = "env:BENCH_SECRET"\n')
    return (f'class = "octodns_powerdns.PowerDnsProvider"\nhost = "127.0.0.1"\nport = {server.server.api_port}\n'
            'api_key = "env:BENCH_PDNS_KEY"\nmanage_root_ns = true\n')


def octodns_commands(host: str, server, workdir: Path, records: int) -> list[list[str]]:
    import yaml

    zones = workdir / "zones"
    zones.mkdir()
    data = yaml.safe_load(harness.zone_files(records, ("octodns",))["octodns"].read_text())
    if host == "route53":  # the host's own four NS stay; octoDNS would otherwise need --force
        data[""] = [r for r in data.get("", []) if r["type"] != "NS"]
    (zones / f"{ORIGIN}.yaml").write_text(yaml.safe_dump(data, default_flow_style=False, width=1 << 20))
    config = workdir / "octodns.yaml"
    config.write_text(f"""---
providers:
  config:
    class: octodns.provider.yaml.YamlProvider
    directory: {zones}
    default_ttl: 3600
    enforce_order: false
  target:
{octodns_target(host, server)}zones:
  {ORIGIN}.:
    sources:
      - config
    targets:
      - target
""")
    sync = [shutil.which("octodns-sync") or "octodns-sync", "--config-file", str(config), "--quiet"]
    return [sync + ["--doit"], sync]


def our_commands(host: str, server, workdir: Path, records: int) -> list[list[str]]:
    zones = workdir / "zones"
    zones.mkdir()
    shutil.copy(harness.zone_files(records, ("lua",))["lua"], zones / f"{ORIGIN}.lua")
    config = workdir / "publisher.toml"
    config.write_text(f"""
[source]
path = "{zones}"
[defaults]
ttl = 3600
hostmaster = "hostmaster.{ORIGIN}."
update_threshold = 1.0
delete_threshold = 1.0
[[provider]]
name = "{host}"
type = "octodns"
{our_target(host, server)}
[state]
path = "{workdir / 'state.db'}"
""")
    return [ours("apply", "--config", str(config)), ours("plan", "--config", str(config))]


def run_tool(tool: str, host: str, records: int, repeat: int, workroot: Path) -> dict[str, dict]:
    series = {name: Series(f"{tool} {name}") for name in STEPS}
    served: list[int] = []
    for round_ in range(repeat):
        print(f"  {tool} -> {host}, {records:,} records: round {round_ + 1}/{repeat}", flush=True)
        workdir = workroot / f"{tool}-{host}-{round_}"
        workdir.mkdir(parents=True)
        server = HOSTS[host](workdir)
        try:
            build = our_commands if tool == "ours" else octodns_commands
            commands = build(host, server, workdir, records)
            env = {**our_env(), **server.env()}
            for name, cmd in zip(STEPS, commands):
                result = harness.run_measured(cmd, env=env, timeout=3600)
                series[name].runs.append(result)
                if name == "first publish":
                    served.append(server.served())
                if result.returncode != 0:
                    series[name].note = " | ".join(result.output_tail.strip().splitlines()[-3:])[:300]
                    break
        finally:
            server.close()
    return {name: {**s.to_json(), "served_records": served} for name, s in series.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="octoDNS bridge benchmark")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hosts", default="route53,powerdns")
    args = parser.parse_args(argv)
    hosts = [h for h in args.hosts.split(",") if h]
    results: dict[str, dict] = {}
    rows, verdicts = [], []
    with tempfile.TemporaryDirectory(prefix="bench-octodns-") as tmp:
        for host in hosts:
            octo = run_tool("octodns", host, args.records, args.repeat, Path(tmp))
            mine = run_tool("ours", host, args.records, args.repeat, Path(tmp))
            results[host] = {"octodns": octo, "ours": mine}
            for name in STEPS:
                o, m = octo[name], mine[name]
                ok = o["ok"] and m["ok"] and m["median_s"] <= BAR * o["median_s"] * 1.05  # 5 % noise allowance
                rows.append([host, name, fmt_seconds(o["median_s"]), fmt_seconds(m["median_s"]),
                             fmt_ratio(m["median_s"], o["median_s"]),
                             f"{m['served_records']} / {o['served_records']}"])
                verdicts.append(f"{'PASS' if ok else 'FAIL'}: {host} {name}: ours {fmt_seconds(m['median_s'])} vs "
                                f"octodns-sync {fmt_seconds(o['median_s'])}"
                                + (f" ({m['note'] or o['note']})" if not (o["ok"] and m["ok"]) else ""))
    harness.print_table(f"octoDNS bridge vs octodns-sync, {args.records:,} records, median of {args.repeat}",
                        # No peak RSS column: wait4 reports this (large) bench process's RSS, which
                        # the child has between fork and exec, for both tools alike.
                        ["host", "step", "octodns-sync", "ours", "ratio", "served after publish ours / octoDNS"],
                        rows)
    print("\n" + "\n".join(verdicts))
    harness.write_results("octodns", {"records": args.records, "repeat": args.repeat, "results": results,
                                      "verdicts": verdicts})
    return 0 if all(v.startswith("PASS") for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
