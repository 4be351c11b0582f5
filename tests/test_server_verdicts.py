"""Our error/no-error verdict against the real servers' on every zone of the suite.

Each zone file of ``tests/data`` (and each zone of the suite's repositories, Lua or BIND, as the
publisher evaluates it, rendered with a stand-in SOA and NS)
goes through ``named-checkzone`` (BIND 9.18) and ``kzonecheck`` (Knot), and through ``lint`` in
BIND mode and in Knot mode: a zone has an error for us exactly when the checker refuses it.
``tests/data/validate/verdicts/`` holds one small zone per check code (and per ``code:case`` of
``validate._VERDICTS``); its header names the verdict it shows, so a mark in the catalogue that the
checkers contradict fails here.

BIND's reference is ``named`` loading the zone as a primary; ``named-checkzone`` performs the same
checks with two defaults changed to match it: ``-k fail`` (``named``'s ``check-names primary fail``,
where ``named-checkzone`` only warns) and ``-i local`` instead of ``full`` (``full`` also resolves
out-of-zone NS/MX/SRV targets through the system resolver, which the suite must not reach, only
ever warns about them, and ``named`` never does it).  The slow test at the end loads every verdict
zone into a running ``named`` to show that this is ``named``'s verdict.  ``kzonecheck`` runs with
``-d off``: its DNSSEC checks verify the signatures of a signed zone, which the publisher never
publishes (Knot signs itself) and ``knotd`` does not verify when it loads a zone.
"""

from __future__ import annotations

import functools
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from publisher.cli import build_parser
from publisher.commands import lint as lint_command
from publisher.model import Record, Zone
from publisher.zone import validate
from publisher.zone.bind_zone import read_bind_zone
from publisher.zone.evaluate import EvaluationOptions, evaluate_file, evaluate_repository
from publisher.zone.render import zone_to_text

DATA = Path(__file__).parent / "data"
VERDICTS = DATA / "validate" / "verdicts"
VERDICT_ORIGIN = "example.com."

# The other master files of tests/data, with the origin their tests give them.
ORIGINS = {
    "bind/repo/example.com.bind": "example.com.",
    "providers/handwritten.zone": "example.test.",
    "validate/mistakes.example.com.zone": "example.com.",
    "render/canonical-order.zone": "example.com.",
    "hostile/base/good.test.bind": "good.test.",
}
NOT_ZONES = {"bind/repo/includes/hosts.inc"}  # $INCLUDEd by example.com.bind
# The zone repositories of the suite (Lua and BIND zones, evaluated as a repository), relative to
# tests/data: its own, and zones/, the example repository test_commands_lint lints.
REPOSITORIES = ("lua/repo", "lua/luadns-style", "service/repo", "validate/lua-style", "../../zones")

# Verdicts of the BIND reader (publisher/zone/bind_zone.py), shown by verdict zones too.
READER_VERDICTS = {"missing-ttl": "EW", "ttl-from-soa-minimum": "WW", "ttl-from-previous-record": "WW",
                   "inherited-owner-after-origin": "WW"}
# Catalogue entries no master file can show to a checker.
PUBLISHER_ONLY = {
    "alias-and-address": "ALIAS is the publisher's own type: no server ever sees one",
    "alias-multiple": "ALIAS is the publisher's own type: no server ever sees one",
    "owner-outside-zone:published": "a repository's verdict (the provider refuses it: NOTZONE); "
                                    "test_validate checks it",
}

CHECKERS = shutil.which("named-checkzone") and shutil.which("kzonecheck")
pytestmark = pytest.mark.skipif(not CHECKERS, reason="named-checkzone (bind9-utils) and kzonecheck (knot) "
                                                     "are the oracle; install them (make deps)")


@functools.cache
def checker(server: str, path: Path, origin: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real checker's run on ``path``; $INCLUDE paths are relative to ``cwd`` (default: the
    file's folder)."""
    cwd = cwd or path.parent
    name = str(path.relative_to(cwd))
    if server == "bind":
        command = ["named-checkzone", "-k", "fail", "-i", "local", origin, name]
    else:
        command = ["kzonecheck", "-v", "-d", "off", "-o", origin, name]
    return subprocess.run(command, capture_output=True, text=True, errors="replace", cwd=cwd, timeout=60)


def refuses(server: str, path: Path, origin: str, cwd: Path | None = None) -> bool:
    return checker(server, path, origin, cwd).returncode != 0


def knot_cannot_parse(run: subprocess.CompletedProcess) -> bool:
    return "failed to run semantic checks" in run.stdout + run.stderr


def knot_refuses(path: Path, origin: str, findings, zone: Zone | None, tmp_path: Path, cwd: Path | None = None) -> bool:
    """kzonecheck's verdict on the zone.  When Knot's parser stops at syntax we read cleanly
    ($GENERATE, for one), the verdict is Knot's on the records we read, written out: the
    publisher never hands Knot a BIND file, only records.  When Knot 3.2's parser cannot read even
    those (presentation forms it lacks: the SVCB dohpath key, NSAP, names such as ``::1.``), there
    is no verdict of Knot's to compare with, and the test skips."""
    run = checker("knot", path, origin, cwd)
    if not knot_cannot_parse(run) or any(f.is_error for f in findings):
        return run.returncode != 0
    assert zone is not None
    rendered = tmp_path / "rendered.zone"
    rendered.write_text(zone_to_text(zone))
    run = checker("knot", rendered, origin)
    if knot_cannot_parse(run):
        reason = next((line.partition("zone loader, ")[2] for line in (run.stdout + run.stderr).splitlines()
                       if "error in zone" in line), "unreadable")
        pytest.skip(f"Knot 3.2's zone parser cannot read these records ({reason.rpartition('(')[2].rstrip(')')})")
    return run.returncode != 0


def header(path: Path) -> dict[str, str]:
    """The ``; key: value`` lines at the top of a verdict zone."""
    fields = {}
    for line in path.read_text().splitlines():
        match = re.match(r"; ([a-z-]+): (.*)", line)
        if match:
            fields[match.group(1)] = match.group(2)
        elif not line.startswith(";"):
            break
    return fields


def verdict_of(key: str) -> str:
    return validate._VERDICTS.get(key) or READER_VERDICTS[key]


def lint(path: Path, origin: str, server: str):
    return evaluate_file(path, origin, EvaluationOptions(server=server)).findings


VERDICT_FILES = sorted(VERDICTS.glob("*.zone"))
SERVERS = ("bind", "knot")


def test_verdict_zones_cover_every_check():
    shown = {header(path)["verdict"] for path in VERDICT_FILES}
    wanted = (set(validate._VERDICTS) | set(READER_VERDICTS)) - set(PUBLISHER_ONLY) - {"clean"}
    assert wanted - shown == set()
    assert shown - wanted == {"clean"}


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("path", VERDICT_FILES, ids=lambda p: p.stem)
def test_verdict_zone_matches_the_checker(path, server):
    fields = header(path)
    key = fields["verdict"]
    found = lint(path, VERDICT_ORIGIN, server)
    errors = sorted({f.code for f in found if f.is_error})
    if key != "clean":
        code = key.partition(":")[0]
        expected = "error" if verdict_of(key)[SERVERS.index(server)] == "E" else "warning"
        assert {f.severity for f in found if f.code == code} == {expected}, found
    else:
        assert found == ()
    output = checker(server, path, VERDICT_ORIGIN).stdout
    if server == "bind" and "newer-bind" in fields:
        # BIND 9.18 loads it; the error is a later BIND's verdict (validate.NEWER_BIND).
        assert key in validate.NEWER_BIND
        assert not refuses("bind", path, VERDICT_ORIGIN) and errors == [key.partition(":")[0]], output
        return
    assert bool(errors) == refuses(server, path, VERDICT_ORIGIN), (errors, output)


COPY = DATA / "validate" / "bind9-checkzone"  # BIND's own zones (MPL-2.0), see tests/corpus.py
DATA_FILES = sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*")
                    if p.is_file() and p.suffix in (".zone", ".bind", ".db", ".inc")
                    and VERDICTS not in p.parents and COPY not in p.parents)


def test_every_master_file_of_the_suite_is_checked():
    assert set(DATA_FILES) == set(ORIGINS) | NOT_ZONES


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("name", sorted(ORIGINS))
def test_test_data_master_file_matches_the_checker(name, server, tmp_path):
    path, origin = DATA / name, ORIGINS[name]
    result = evaluate_file(path, origin, EvaluationOptions(server=server))
    errors = sorted({f.code for f in result.findings if f.is_error})
    if server == "knot":
        refused = knot_refuses(path, origin, result.findings, result.zone, tmp_path)
    else:
        refused = refuses(server, path, origin)
    assert bool(errors) == refused, (errors, checker(server, path, origin).stdout)


def copy_origin(path: Path) -> str:
    if path.parent.name == "zonechecks":
        return "."
    for line in (COPY / "EXPECTATIONS.tsv").read_text().splitlines()[1:]:
        name, args, *_ = line.split("\t") + [""]
        if name == path.name and not args.startswith("("):
            return args.split()[-1].rstrip(".") + "."
    return "zone1.com." if path.name == "zone1.db" else "example."


COPY_FILES = sorted(p for p in COPY.rglob("*.db") if p.name != "inherit.db")  # inherit.db is $INCLUDEd
# The copies BIND 9.18 loads and we refuse, each for a later BIND's verdict (see
# test_validate_corpus.NEEDS_NEWER_BIND; the reader's stricter EUI syntax among them).
COPY_NEWER_BIND = {"bad-_dns-svcb1.db", "bad-_dns-svcb2.db", "bad-_dns-svcb3.db", "bad-_dns-svcb4.db",
                   "bad-_dns-svcb5.db", "bad-_dns-svcb6.db", "bad-cname-and-key.db", "bad-ds-2.db",
                   "bad-eui48-no-leading-zero.db", "bad-eui48-trailing-garbage.db",
                   "bad-eui64-no-leading-zero.db", "bad-eui64-trailing-garbage.db"}


# Record syntax the reader refuses as BIND does while Knot reads it: the reader is BIND's in both
# modes, so --server knot is stricter than Knot here.
READER_STRICTER_THAN_KNOT = {"bad-nsec3-padded.db": "a padded base32hex NSEC3 next-hash"}


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("path", COPY_FILES, ids=lambda p: p.name)
def test_bind_corpus_copy_matches_the_checker(path, server, tmp_path):
    """BIND's own zones (``lint FILE`` with the corpus folder as the $INCLUDE root, as BIND's
    tests run them) against both checkers with their defaults."""
    origin = copy_origin(path)
    result = read_bind_zone(path, origin, repo=COPY, display_file=path.name, server=server)
    findings = list(result.findings)
    if result.zone is not None:
        findings += validate.validate_zone(result.zone, standalone=True, server=server)
    errors = sorted({f.code for f in findings if f.is_error})
    if server == "knot":
        refused = knot_refuses(path, origin, findings, result.zone, tmp_path, cwd=COPY)
        if path.name in READER_STRICTER_THAN_KNOT:
            assert errors and not refused, errors
            return
    else:
        refused = refuses(server, path, origin, cwd=COPY)
        if path.name in COPY_NEWER_BIND:
            assert errors and not refused, errors
            return
    assert bool(errors) == refused, (errors, checker(server, path, origin, COPY).stdout)


def stand_in_soa_and_ns(zone: Zone) -> Zone:
    """A repository zone gets its SOA and apex NS from configuration: add stand-ins (out of zone,
    so they raise no finding) for the checkers."""
    records = list(zone.records)
    if not any(r.type == "SOA" for r in records):
        records.append(Record(zone.origin, "SOA", 3600, "a.ns.invalid. hostmaster.ns.invalid. 1 7200 3600 1209600 3600", "", 0))
    if not any(r.type == "NS" and r.name == zone.origin for r in records):
        records += [Record(zone.origin, "NS", 3600, f"{n}.ns.invalid.", "", 0) for n in "ab"]
    return Zone(zone.origin, tuple(records), zone.file)


@functools.cache
def repository(repo: str, server: str = "bind") -> dict:
    return {z.origin: z for z in evaluate_repository(DATA / repo, EvaluationOptions(server=server)).zones}


REPOSITORY_ZONES = [(repo, origin) for repo in REPOSITORIES
                    for origin, zone in repository(repo).items() if zone.zone is not None]


def test_repositories_hold_zones():
    assert {repo for repo, _ in REPOSITORY_ZONES} == set(REPOSITORIES)
    assert {origin for _, origin in REPOSITORY_ZONES} >= {"example.io.", "shop.example.", "example.net."}


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("repo, origin", REPOSITORY_ZONES)
def test_repository_zone_matches_the_checker(repo, origin, server, tmp_path):
    result = repository(repo, server)[origin]
    errors = sorted({f.code for f in result.findings if f.is_error})
    path = tmp_path / f"{origin}zone"
    path.write_text(zone_to_text(stand_in_soa_and_ns(result.zone)))
    assert bool(errors) == refuses(server, path, origin), (errors, checker(server, path, origin).stdout)


@pytest.mark.parametrize("name, bind_exit, knot_exit", [
    ("ns-beside-dname.zone", 0, 1),  # BIND's good1.db: BIND loads it, Knot refuses it
    ("ds-at-apex.zone", 1, 0),
    ("mx-target-no-address.zone", 0, 0),  # LuaDNS's example: both serve it
])
def test_lint_command_takes_the_server(name, bind_exit, knot_exit):
    def exit_status(*options: str) -> int:
        args = build_parser().parse_args(["lint", *options, "--zone", VERDICT_ORIGIN, str(VERDICTS / name)])
        return lint_command.run(args, out=io.StringIO())

    assert exit_status() == bind_exit
    assert exit_status("--server", "bind") == bind_exit
    assert exit_status("--server", "knot") == knot_exit
    assert (checker("bind", VERDICTS / name, VERDICT_ORIGIN).returncode != 0) == bool(bind_exit)
    assert (checker("knot", VERDICTS / name, VERDICT_ORIGIN).returncode != 0) == bool(knot_exit)


def test_unknown_server_is_refused():
    with pytest.raises(ValueError, match="bind, knot"):
        validate.validate_zone(Zone(VERDICT_ORIGIN, ()), standalone=False, server="pdns")


@pytest.mark.slow
def test_named_loading_each_verdict_zone_as_a_primary_agrees(named_server):
    """``rndc addzone`` of every verdict zone as a primary: named adds it exactly when our BIND
    verdict has no error (the newer-BIND zones aside, which 9.18 still loads)."""
    disagreements = []
    for path in VERDICT_FILES:
        origin = f"{path.stem.replace('.', '-')}.verdicts.test."
        errors = sorted({f.code for f in lint(path, origin, "bind") if f.is_error})
        added = named_server.rndc("addzone", origin.rstrip("."), f'{{ type primary; file "{path}"; }};',
                                  check=False)
        loaded = added.returncode == 0
        expected = not errors or "newer-bind" in header(path)
        if loaded != expected:
            disagreements.append((path.name, errors, added.stderr.strip()))
        if loaded:
            named_server.rndc("delzone", origin.rstrip("."), check=False)
    assert disagreements == []


def test_docs_table_is_the_catalogue():
    """docs/checks.md gives every verdict of the code's catalogue (and the reader's), no other."""
    text = (Path(__file__).parent.parent / "docs" / "checks.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z0-9:-]+)` \| [^|]+ \| ([EW]) \| ([EW]) \|", text, re.M)
    assert len(rows) == len({code for code, _, _ in rows})
    assert {code: bind + knot for code, bind, knot in rows} == {**validate._VERDICTS, **READER_VERDICTS}


def test_luadns_style_zone_with_addressless_targets_lints_clean():
    """MX and SRV to in-zone hosts without an address (LuaDNS's own example.net.lua line 39):
    BIND serves the zone, so these are warnings, and the zone is published."""
    zone = repository("validate/lua-style")["example.org."]
    assert [f for f in zone.findings if f.is_error] == []
    assert {(f.code, f.line) for f in zone.findings} == {
        ("mx-target-no-address", 6), ("mx-target-no-address", 7), ("srv-target-no-address", 8),
        ("mx-target-no-address", 9)}


@pytest.mark.parametrize("path", VERDICT_FILES, ids=lambda p: p.stem)
def test_records_and_ttls_are_bind_s(path):
    """Where BIND loads a verdict zone, we read the same owners, types and TTLs (named-checkzone
    prints the zone it loaded)."""
    dump = subprocess.run(["named-checkzone", "-k", "fail", "-i", "local", "-D", "-o", "-", VERDICT_ORIGIN, path.name],
                          capture_output=True, text=True, errors="replace", cwd=path.parent, timeout=60)
    if dump.returncode != 0:
        return  # refused: test_verdict_zone_matches_the_checker compares that
    theirs = {(f[0], f[3], int(f[1])) for f in (line.split() for line in dump.stdout.splitlines())
              if len(f) > 4 and f[2] == "IN"}
    result = evaluate_file(path, VERDICT_ORIGIN)
    first_ttl: dict[tuple[str, str], int] = {}  # BIND gives an RRset its first record's TTL
    for record in result.zone.records:
        first_ttl.setdefault((record.name, record.type), record.ttl)
    ours = {(name, rtype, ttl) for (name, rtype), ttl in first_ttl.items() if name.endswith(VERDICT_ORIGIN)}
    assert ours == theirs
