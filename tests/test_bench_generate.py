"""The benchmark zone generator (bench/generate.py) writes valid BIND and Lua zones that hold the same
records, so the lint benchmark compares like with like."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
sys.modules["bench_generate"] = generate
_spec.loader.exec_module(generate)

N = 1500
ORIGIN = "example.com"


@pytest.fixture(scope="module")
def zone_files(tmp_path_factory) -> dict[str, Path]:
    return generate.generate(N, tmp_path_factory.mktemp("bench-zone"), ORIGIN, ("bind", "lua", "octodns"))


def _bind_records(path: Path) -> set[tuple[str, str, int, str]]:
    zone = dns.zone.from_file(str(path), origin=ORIGIN + ".", relativize=False, check_origin=True)
    return {(name.to_text().lower(), dns.rdatatype.to_text(rdata.rdtype), ttl, rdata.to_text().lower())
            for name, ttl, rdata in zone.iterate_rdatas()}


# A minimal reading of the LuaDNS record functions the generator uses (lua-zone-language.md), turned
# into zone-file rdata and checked by dnspython: independent of the publisher's own evaluator.
_LUA_SHIM = r"""
local out = {}
local origin = ORIGIN
local function owner(n) if n == "" then return origin .. "." end return n .. "." .. origin .. "." end
local function fq(t) if t:sub(-1) == "." then return t end return t .. "." end
local function add(n, t, d, ttl) out[#out + 1] = {owner(n), t, ttl or 3600, d} end
function a(n, ip, ttl) add(n, "A", ip, ttl) end
function aaaa(n, ip, ttl) add(n, "AAAA", ip, ttl) end
function cname(n, t, ttl) add(n, "CNAME", fq(t), ttl) end
function ns(n, t, ttl) add(n, "NS", fq(t), ttl) end
function mx(n, t, prio, ttl) add(n, "MX", (prio or 0) .. " " .. fq(t), ttl) end
function srv(n, t, port, prio, weight, ttl) add(n, "SRV", (prio or 0) .. " " .. (weight or 0) .. " " .. port .. " " .. fq(t), ttl) end
function caa(n, v, tag, flag, ttl) add(n, "CAA", (flag or 0) .. " " .. (tag or "issue") .. ' "' .. v .. '"', ttl) end
function txt(n, text, ttl)
  local parts = {}
  for i = 1, #text, 255 do parts[#parts + 1] = '"' .. text:sub(i, i + 254) .. '"' end
  add(n, "TXT", table.concat(parts, " "), ttl)
end
"""


def _lua_records(path: Path) -> set[tuple[str, str, int, str]]:
    from lupa import lua51

    lua = lua51.LuaRuntime()
    lua.globals().ORIGIN = ORIGIN
    lua.execute(_LUA_SHIM + "\nfunction __records() return out end")
    lua.execute(path.read_text())
    records = set()
    for row in lua.globals().__records().values():
        name, rtype, ttl, data = row[1], row[2], int(row[3]), row[4]
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rtype, data)
        records.add((name.lower(), rtype, ttl, rdata.to_text().lower()))
    return records


def test_bind_file_has_exact_count_and_realistic_mix(zone_files):
    records = _bind_records(zone_files["bind"])
    assert len(records) == N
    types = {rtype for _, rtype, _, _ in records}
    assert {"SOA", "A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS", "CAA"} <= types
    long_txt = [d for _, t, _, d in records if t == "TXT" and len(d) > 300]
    assert long_txt and all('" "' in d for d in long_txt)  # DKIM keys split into 255-octet strings
    delegations = {n for n, t, _, _ in records if t == "NS" and n != ORIGIN + "."}
    glue = {n for n, t, _, _ in records if t == "A" and any(n.endswith("." + d) for d in delegations)}
    assert delegations and glue


def test_lua_file_holds_the_same_records_as_the_bind_file(zone_files):
    bind = {r for r in _bind_records(zone_files["bind"]) if r[1] != "SOA"}
    lua = _lua_records(zone_files["lua"])
    assert lua == bind
    assert len(zone_files["lua"].read_text().splitlines()) == N  # header comment + one call per record


def test_generation_is_deterministic(tmp_path, zone_files):
    again = generate.generate(N, tmp_path, ORIGIN, ("bind", "lua"))
    assert again["bind"].read_bytes() == zone_files["bind"].read_bytes()
    assert again["lua"].read_bytes() == zone_files["lua"].read_bytes()


def test_octodns_yaml_groups_the_same_rrsets(zone_files):
    import yaml

    data = yaml.safe_load(zone_files["octodns"].read_text())
    count = 0
    for name, entries in data.items():
        for entry in entries:
            count += len(entry["values"]) if "values" in entry else 1
    assert count == N - 1  # everything but the SOA
    assert data["bench-edit"] == [{"type": "A", "ttl": 60, "values": [generate.EDIT_VALUE]}]


def _unshare_works() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "-n", "true"]).returncode == 0


@pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="named-checkzone not installed")
def test_named_checkzone_accepts_the_bind_file(zone_files):
    # named-checkzone looks up glue names with the system resolver: in a network namespace of its
    # own those lookups fail at once and nothing leaves the machine.
    if not _unshare_works():
        pytest.skip("cannot create a network namespace to keep named-checkzone offline")
    result = subprocess.run(["unshare", "-n", "named-checkzone", "-i", "full", ORIGIN, str(zone_files["bind"])],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


@pytest.mark.skipif(shutil.which("kzonecheck") is None, reason="kzonecheck not installed")
def test_kzonecheck_accepts_the_bind_file(zone_files):
    result = subprocess.run(["kzonecheck", "-o", ORIGIN, str(zone_files["bind"])], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_publisher_lint_reads_both_files_identically(zone_files):
    pytest.importorskip("publisher.zone.lua_zone")
    from publisher.zone.evaluate import evaluate_file

    bind = evaluate_file(zone_files["bind"], ORIGIN)
    lua = evaluate_file(zone_files["lua"], ORIGIN)
    assert not [f for f in bind.findings if f.is_error], bind.findings[:5]
    assert not [f for f in lua.findings if f.is_error], lua.findings[:5]
    bind_keys = {r.key for r in bind.zone.records if r.type != "SOA"}
    lua_keys = {r.key for r in lua.zone.records if r.type != "SOA"}
    assert bind_keys == lua_keys
    assert len(bind_keys) == N - 1
