"""The BIND master-file reader: syntax, directives, findings with file:line, and the corpus."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from publisher.zone.bind_zone import MAX_INCLUDES, TTLError, parse_ttl, read_bind_zone
from publisher.model import ERROR, MAX_FINDINGS_PER_ZONE, WARNING
from publisher.rdata import canonical_rdata, canonical_type

from tests.corpus import CORPUS, ZONES


def read_text(tmp_path: Path, text: str, origin: str = "example.com.", **options):
    path = tmp_path / "zone.bind"
    path.write_text(text)
    options.setdefault("repo", tmp_path)
    return read_bind_zone(path, origin, display_file="zone.bind", **options)


def codes(result) -> list[tuple[str, int]]:
    return [(f.code, f.line) for f in result.findings]


def errors(result):
    return [f for f in result.findings if f.severity == ERROR]


def corpus_origin(name: str) -> str:
    expectations = {}
    with open(CORPUS / "EXPECTATIONS.tsv", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) > 1 and row[0] != "file" and not row[1].startswith("("):
                expectations[row[0]] = row[1].split()[-1]
    return expectations.get(name, {"zone1.db": "zone1.com"}.get(name, "example"))


@pytest.mark.parametrize("path", sorted(ZONES.glob("good*.db")), ids=lambda p: p.name)
def test_corpus_good_files_read_without_errors(path: Path) -> None:
    result = read_bind_zone(path, corpus_origin(path.name), repo=CORPUS,
                            display_file=f"zones/{path.name}")
    assert errors(result) == []
    assert result.zone is not None and len(result.zone.records) >= 3


# The bad files whose reason is syntax or per-record data: the reader must reject them.
SYNTAX_BAD = [
    "bad-caa-rr.db", "bad-dhcid.db", "bad-eid.db", "bad-eui48-no-leading-zero.db",
    "bad-eui48-three-digits.db", "bad-eui48-too-short.db", "bad-eui48-trailing-garbage.db",
    "bad-eui64-no-leading-zero.db", "bad-eui64-three-digits.db", "bad-eui64-too-short.db",
    "bad-eui64-trailing-garbage.db", "bad-generate-garbage.db", "bad-generate-missing-brace.db",
    "bad-generate-range.db", "bad-generate-tkey.db", "bad-include-directory.db",
    "bad-nsap-empty.db", "bad-nsap-odd-nibble.db", "bad-nsec3-length.db", "bad-nsec3-padded.db",
    "bad-svcb-alpn1.db", "bad-svcb-alpn2.db", "bad-svcb-alpn3.db", "bad-svcb-alpn4.db",
    "bad-svcb-alpn5.db", "bad-svcb-alpn6.db", "bad-svcb-mandatory.db", "bad-svcb.db",
    "bad-tkey.db", "bad-unspec.db", "bad1.db", "bad2.db", "bad3.db", "bad4.db", "badttl.db",
]


@pytest.mark.parametrize("name", SYNTAX_BAD)
def test_corpus_syntax_bad_files_are_rejected(name: str) -> None:
    result = read_bind_zone(ZONES / name, corpus_origin(name), repo=CORPUS,
                            display_file=f"zones/{name}")
    found = errors(result)
    assert found, f"{name} was accepted"
    assert all(f.file == f"zones/{name}" and f.line >= 1 for f in found)


@pytest.mark.parametrize("path", sorted(ZONES.glob("bad-cname-and-*.db")), ids=lambda p: p.name)
def test_corpus_cname_files_parse_so_validation_can_reject_them(path: Path) -> None:
    result = read_bind_zone(path, "example", repo=CORPUS, display_file=path.name)
    assert errors(result) == []
    assert "CNAME" in {r.type for r in result.zone.records}


def test_parse_ttl_units_and_range() -> None:
    assert parse_ttl("3600") == 3600
    assert parse_ttl("1h30m") == 5400
    assert parse_ttl("1W") == 604800
    assert parse_ttl("2147483647") == 2147483647
    with pytest.raises(TTLError) as excinfo:
        parse_ttl("2147483648")
    assert excinfo.value.code == "ttl-out-of-range"
    for bad in ("1h30", "abc", "1x", "-5", "1.5"):
        with pytest.raises(TTLError):
            parse_ttl(bad)


# -- a realistic zone, checked against BIND itself ----------------------------------------------

REPO = Path(__file__).parent / "data" / "bind" / "repo"


def test_realistic_zone_reads_cleanly_with_positions() -> None:
    result = read_bind_zone(REPO / "example.com.bind", "Example.COM", repo=REPO,
                            display_file="example.com.bind")
    assert result.findings == ()
    assert result.origin == "example.com."
    by_key = {(r.name, r.type): r for r in result.zone.records}
    soa = by_key[("example.com.", "SOA")]
    assert soa.data == "ns1.example.com. hostmaster.example.com. 2024010101 7200 1800 1209600 300"
    assert (soa.ttl, soa.line) == (3600, 4)
    assert by_key[("ns1.example.com.", "AAAA")].ttl == 600  # "IN 600": class before TTL
    assert by_key[("_dmarc.example.com.", "TXT")].data == (
        '"v=DMARC1; p=reject;" " rua=mailto:d@example.com"'
    )
    assert by_key[("unknown.example.com.", "TYPE65534")].data == "\\# 3 010203"
    printers = [r for r in result.zone.records if r.name.startswith("printer.")]
    assert {(r.name, r.file, r.line) for r in printers} == {
        ("printer.lab.example.com.", "includes/hosts.inc", 2),
        ("printer.lab.example.com.", "includes/hosts.inc", 3),
        ("printer.other.example.com.", "includes/hosts.inc", 2),
        ("printer.other.example.com.", "includes/hosts.inc", 3),
    }
    # after an $INCLUDE the including file's origin is back
    assert ("after.lab.example.com.", "A") in by_key
    assert [r.name for r in result.zone.records if r.type == "PTR"] == [
        "010.rev.lab.example.com.", "012.rev.lab.example.com.", "014.rev.lab.example.com."]


@pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="BIND tools not installed")
def test_realistic_zone_equals_named_checkzone_dump(tmp_path: Path) -> None:
    dump = tmp_path / "dump.txt"
    subprocess.run(["named-checkzone", "-q", "-i", "local", "-D", "-o", str(dump), "example.com",
                    "example.com.bind"], cwd=REPO, check=True)
    theirs = set()
    for line in dump.read_text().splitlines():
        name, ttl, _, rtype, data = line.split(None, 4)
        rtype = canonical_type(rtype)
        theirs.add((name.lower(), rtype, int(ttl), canonical_rdata(rtype, data, ".")))
    result = read_bind_zone(REPO / "example.com.bind", "example.com", repo=REPO,
                            display_file="example.com.bind")
    assert {(r.name, r.type, r.ttl, r.data) for r in result.zone.records} == theirs


# -- syntax and per-record findings -------------------------------------------------------------


def test_all_findings_at_once_with_lines(tmp_path: Path) -> None:
    result = read_text(tmp_path, "\n".join([
        "$TTL 300",
        "@ SOA ns hostmaster 1 2 3 4 5",  # 2
        "bad1 A 192.0.2.256",  # 3
        "ok1 A 192.0.2.1",  # 4
        "v4 AAAA 192.0.2.1",  # 5
        "chaos CH TXT hello",  # 6
        "meta IN ANY 1.2.3.4",  # 7
        "tsig TSIG x",  # 8
        "typo AAA ::1",  # 9
        "long TXT \"" + "x" * 256 + "\"",  # 10
        ("y" * 64) + " A 192.0.2.2",  # 11
        "a..b A 192.0.2.3",  # 12
        "ttl 2147483648 A 192.0.2.4",  # 13
        "ttl2 1x A 192.0.2.4",  # 14
        "mx MX 70000 mail",  # 15
        "caa CAA 0 is-sue x",  # 16
        "ok2 A 192.0.2.5",  # 17
        "noth",  # 18
        "$BOGUS 1",  # 19
        "paren A ( 192.0.2.1",  # 20 -- never closed
        "after A 192.0.2.9",
    ]) + "\n")
    assert codes(result) == [
        ("invalid-rdata", 3), ("ipv4-in-aaaa", 5), ("class-not-in", 6), ("meta-type", 7),
        ("meta-type", 8), ("unknown-type", 9), ("txt-string-too-long", 10),
        ("label-too-long", 11), ("empty-label", 12), ("ttl-out-of-range", 13), ("bad-ttl", 14),
        ("invalid-rdata", 15), ("invalid-rdata", 16), ("missing-type", 18),
        ("unknown-directive", 19), ("syntax-error", 20),
    ]
    assert all(f.severity == ERROR and f.file == "zone.bind" and f.zone == "example.com."
               for f in result.findings)
    assert "use an A record" in result.findings[1].message
    assert "split it" in result.findings[6].message
    assert {r.name for r in result.zone.records} == {
        "example.com.", "ok1.example.com.", "ok2.example.com."}


def test_name_longer_than_255_octets(tmp_path: Path) -> None:
    owner = ".".join(["a" * 63] * 4)  # 4*64 + len("example.com.")+1 > 255
    result = read_text(tmp_path, f"$TTL 1\n{owner} A 192.0.2.1\nx CNAME {owner}\n")
    assert codes(result) == [("name-too-long", 2), ("name-too-long", 3)]


def test_quotes_escapes_and_parentheses(tmp_path: Path) -> None:
    result = read_text(tmp_path, "\n".join([
        "$TTL 60",
        'a TXT "semi;colon" "q\\"uote" back\\\\slash "\\065\\066"  ; comment "x',
        "b TXT ( first",
        "        second ) ; done",
        'c TXT "unterminated',
        "d TXT ok",
    ]) + "\n")
    assert codes(result) == [("syntax-error", 5)]
    data = {r.name: r.data for r in result.zone.records}
    assert data["a.example.com."] == '"semi;colon" "q\\"uote" "back\\\\slash" "AB"'
    assert data["b.example.com."] == '"first" "second"'
    assert data["d.example.com."] == '"ok"'
    assert [r.line for r in result.zone.records] == [2, 3, 6]


def test_generic_rdata_and_type_numbers(tmp_path: Path) -> None:
    result = read_text(tmp_path, "$TTL 60\n"
                       "a TYPE1 \\# 4 c0000201\n"
                       "b type65534 \\# 0\n"
                       "c A \\# 3 c00002\n")
    assert codes(result) == [("invalid-rdata", 4)]
    assert [(r.type, r.data) for r in result.zone.records] == [("A", "192.0.2.1"),
                                                               ("TYPE65534", "\\# 0")]


# -- TTLs ---------------------------------------------------------------------------------------


def test_ttl_from_soa_minimum_is_the_default_ttl(tmp_path: Path) -> None:
    # BIND makes the SOA minimum the default TTL ("using SOA MINTTL instead"): y gets 900, not
    # x's 60 (named-checkzone -D prints it; test_server_verdicts compares every verdict zone).
    result = read_text(tmp_path, "@ SOA ns hostmaster 1 2 3 4 900\nwww A 192.0.2.1\n"
                       "x 60 A 192.0.2.2\ny A 192.0.2.3\n")
    assert codes(result) == [("ttl-from-soa-minimum", 1)]
    assert {f.severity for f in result.findings} == {WARNING}
    assert [r.ttl for r in result.zone.records] == [900, 900, 60, 900]


def test_missing_ttl_is_an_error_without_soa_or_ttl(tmp_path: Path) -> None:
    result = read_text(tmp_path, "www A 192.0.2.1\n")
    assert codes(result) == [("missing-ttl", 1)]
    result = read_text(tmp_path, "www A 192.0.2.1\n", default_ttl=3600)
    assert result.findings == () and result.zone.records[0].ttl == 3600


def test_ttl_directive_errors(tmp_path: Path) -> None:
    result = read_text(tmp_path, "$TTL\n$TTL 1y\n$TTL 99999999999\nwww 5 A 192.0.2.1\n")
    assert codes(result) == [("bad-ttl", 1), ("bad-ttl", 2), ("ttl-out-of-range", 3)]


# -- $GENERATE ----------------------------------------------------------------------------------


def test_generate_modifiers_and_escapes(tmp_path: Path) -> None:
    result = read_text(tmp_path, "\n".join([
        "$TTL 60",
        "$GENERATE 1-2 h$ A 10.0.0.$",
        "$GENERATE 0-8/4 ${10,3} TXT \"n$$ \\$ ${0,4,x}\"",
        "$GENERATE 255-255 ${0,0,X} CNAME ${0,5,n}.rev",
        "$GENERATE 1-1 ip IN 300 A 10.1.1.$",
        '$GENERATE 7-7 q TXT "\\"a b$\\""',
    ]) + "\n")
    assert result.findings == ()
    assert [(r.name, r.type, r.ttl, r.data) for r in result.zone.records] == [
        ("h1.example.com.", "A", 60, "10.0.0.1"),
        ("h2.example.com.", "A", 60, "10.0.0.2"),
        ("010.example.com.", "TXT", 60, '"n$" "$" "0000"'),  # as named-checkzone -D prints
        ("014.example.com.", "TXT", 60, '"n$" "$" "0004"'),
        ("018.example.com.", "TXT", 60, '"n$" "$" "0008"'),
        ("ff.example.com.", "CNAME", 60, "f.f.0.rev.example.com."),
        ("ip.example.com.", "A", 300, "10.1.1.1"),
        ("q.example.com.", "TXT", 60, '"a b7"'),
    ]
    assert {r.line for r in result.zone.records} == {2, 3, 4, 5, 6}


def test_generate_errors(tmp_path: Path) -> None:
    result = read_text(tmp_path, "\n".join([
        "$TTL 60",
        "$GENERATE 5-1 h$ A 10.0.0.$",
        "$GENERATE 1-3/0 h$ A 10.0.0.$",
        "$GENERATE 1-100 h$ A 10.0.0.$",
        "$GENERATE 1-2 h$ TKEY x",
        "$GENERATE 1-2 h${1,2,q} A 10.0.0.$",
        "$GENERATE 1-2 h$ A 10.0.0.${300}",
        "$GENERATE 1-2",
    ]) + "\n", max_generate=50)
    assert codes(result) == [
        ("generate-range", 2), ("generate-range", 3), ("generate-too-many", 4),
        ("generate-meta-type", 5), ("generate-syntax", 6), ("invalid-rdata", 7),
        ("generate-syntax", 8),
    ]
    assert "limit of 50" in result.findings[2].message


# -- $INCLUDE confinement -----------------------------------------------------------------------


def test_include_is_confined_to_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "inc").mkdir(parents=True)
    (repo / "inc" / "ok.inc").write_text("inc A 192.0.2.1\n")
    (repo / "inc" / "bad.inc").write_text("oops A 192.0.2.300\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("leak A 192.0.2.2\n")
    (repo / "link.inc").symlink_to(outside)
    (repo / "dev.inc").symlink_to("/dev/null")
    zone = repo / "example.com.bind"
    zone.write_text("\n".join([
        "$TTL 60",
        "$INCLUDE inc/ok.inc",
        "$INCLUDE inc/bad.inc",
        f"$INCLUDE {outside}",
        "$INCLUDE ../secret.txt",
        "$INCLUDE inc/../../secret.txt",
        "$INCLUDE link.inc",
        "$INCLUDE inc",
        "$INCLUDE dev.inc",
        "$INCLUDE /etc/passwd",
        "$INCLUDE missing.inc",
        "$INCLUDE example.com.bind",
    ]) + "\n")
    result = read_bind_zone(zone, "example.com", repo=repo, display_file="example.com.bind")
    assert [(f.code, f.file, f.line) for f in result.findings] == [
        ("invalid-rdata", "inc/bad.inc", 1),
        ("include-outside-repository", "example.com.bind", 4),
        ("include-outside-repository", "example.com.bind", 5),
        ("include-outside-repository", "example.com.bind", 6),
        ("include-outside-repository", "example.com.bind", 7),
        ("include-not-a-file", "example.com.bind", 8),
        ("include-outside-repository", "example.com.bind", 9),
        ("include-outside-repository", "example.com.bind", 10),
        ("include-not-found", "example.com.bind", 11),
        ("include-loop", "example.com.bind", 12),
    ]
    assert [(r.name, r.file) for r in result.zone.records] == [("inc.example.com.", "inc/ok.inc")]
    assert not any("leak" in r.name for r in result.zone.records)


def test_single_file_lint_includes_only_beside_or_below(tmp_path: Path) -> None:
    (tmp_path / "zones" / "sub").mkdir(parents=True)
    (tmp_path / "zones" / "sub" / "a.inc").write_text("a A 192.0.2.1\n")
    (tmp_path / "up.inc").write_text("up A 192.0.2.2\n")
    zone = tmp_path / "zones" / "z.bind"
    zone.write_text("$TTL 60\n$INCLUDE sub/a.inc\n$INCLUDE ../up.inc\n")
    result = read_bind_zone(zone, "example.com", repo=None, display_file="zones/z.bind")
    assert [(f.code, f.file, f.line) for f in result.findings] == [
        ("include-outside-repository", "zones/z.bind", 3)]
    assert [(r.name, r.file) for r in result.zone.records] == [("a.example.com.",
                                                                "zones/sub/a.inc")]


def test_bad_owner_is_reported_once(tmp_path: Path) -> None:
    result = read_text(tmp_path, f"$TTL 60\n{'x' * 70} A 192.0.2.1\n  TXT hi\nok A 192.0.2.2\n")
    assert codes(result) == [("label-too-long", 2)]
    assert [r.name for r in result.zone.records] == ["ok.example.com."]


def test_first_record_without_owner(tmp_path: Path) -> None:
    result = read_text(tmp_path, "$TTL 60\n   A 192.0.2.1\n")
    assert codes(result) == [("missing-owner", 2)]


def test_non_utf8_bytes_are_read_as_octets(tmp_path: Path) -> None:
    path = tmp_path / "zone.bind"
    path.write_bytes(b"$TTL 60\ncaf\xe9 TXT \"na\xefve\"\n")
    result = read_bind_zone(path, "example.com", repo=tmp_path, display_file="zone.bind")
    assert result.findings == ()
    assert [(r.name, r.data) for r in result.zone.records] == [
        ("caf\\233.example.com.", '"na\\239ve"')]


def test_symlinked_zone_file_outside_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    outside = tmp_path / "elsewhere.bind"
    outside.write_text("$TTL 60\nx A 192.0.2.1\n")
    (repo / "x.bind").symlink_to(outside)
    result = read_bind_zone(repo / "x.bind", "x", repo=repo, display_file="x.bind")
    assert result.zone is None
    assert codes(result) == [("zone-file-outside-repository", 0)]


def test_inherited_owner_after_origin_warns(tmp_path: Path) -> None:
    result = read_text(tmp_path, "$TTL 60\nwww A 192.0.2.1\n$ORIGIN sub.example.com.\n"
                       "        A 192.0.2.2\nhost A 192.0.2.3\n      A 192.0.2.4\n")
    assert codes(result) == [("inherited-owner-after-origin", 4)]
    assert result.findings[0].severity == WARNING
    assert [r.name for r in result.zone.records] == [
        "www.example.com.", "www.example.com.", "host.sub.example.com.", "host.sub.example.com."]



def test_crlf_line_endings_and_tabs(tmp_path: Path) -> None:
    path = tmp_path / "zone.bind"
    path.write_bytes(b"$TTL 60\r\n@\tIN\tSOA\tns hm (\r\n  1 2 3 4 5 )\r\nwww\tA\t192.0.2.1\r\n")
    result = read_bind_zone(path, "example.com", repo=tmp_path, display_file="zone.bind")
    assert result.findings == ()
    assert [(r.type, r.line) for r in result.zone.records] == [("SOA", 2), ("A", 4)]


def test_garbage_file_reports_a_bounded_number_of_findings_and_stops_reading(tmp_path: Path) -> None:
    result = read_text(tmp_path, "".join(f"x{i} BOGUS {i}\n" for i in range(3000)))
    assert len(result.findings) == MAX_FINDINGS_PER_ZONE
    assert result.findings[-1].code == "too-many-findings"
    assert result.findings[-1].line == MAX_FINDINGS_PER_ZONE  # reading stopped at the 100th error
    assert result.zone is None


def test_many_warnings_do_not_stop_a_valid_zone(tmp_path: Path) -> None:
    lines = ["$TTL 60", "@ SOA ns hm 1 2 3 4 5", "@ NS ns", "ns A 192.0.2.1"]
    for i in range(300):  # each inherits its owner across an $ORIGIN: a warning per record
        lines += [f"h{i} A 192.0.2.1", f"$ORIGIN o{i}.example.com.", " TXT x"]
    result = read_text(tmp_path, "\n".join(lines) + "\n")
    assert result.zone is not None and len(result.zone.records) == 3 + 600
    assert len(result.findings) == MAX_FINDINGS_PER_ZONE
    summary = result.findings[-1]
    assert summary.code == "too-many-findings" and summary.severity == WARNING
    assert summary.message.startswith(f"{300 - MAX_FINDINGS_PER_ZONE + 1} more findings not shown (0 of them")


def test_mutual_includes_are_a_loop(tmp_path: Path) -> None:
    (tmp_path / "a.inc").write_text("a A 192.0.2.1\n$INCLUDE b.inc\n")
    (tmp_path / "b.inc").write_text("b A 192.0.2.2\n$INCLUDE a.inc\n")
    result = read_text(tmp_path, "$TTL 60\n$INCLUDE a.inc\n")
    assert [(f.code, f.file, f.line) for f in result.findings] == [("include-loop", "b.inc", 2)]
    assert [r.name for r in result.zone.records] == ["a.example.com.", "b.example.com."]


# -- limits: a hostile file ends with a finding, never with the machine's memory ---------------

HEAD = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"


def test_generate_width_is_bounded(tmp_path: Path) -> None:
    result = read_text(tmp_path, HEAD + "$GENERATE 0-0 h${0,300000000,n} A 192.0.2.1\n"
                                        "$GENERATE 0-0 t$ TXT \"${0,255,d}\"\n")
    assert codes(result) == [("generate-syntax", 5)]
    assert "width 300000000 in ${0,300000000,n} is more than 255" in result.findings[0].message
    assert [r.data for r in result.zone.records if r.type == "TXT"] == ['"' + "0" * 255 + '"']


def test_record_limit_stops_reading(tmp_path: Path) -> None:
    result = read_text(tmp_path, HEAD + "".join(f"h{i} A 192.0.2.1\n" for i in range(20)), max_records=10)
    assert result.zone is None
    assert [(f.code, f.message) for f in result.findings] == [
        ("zone-record-limit", "more than 10 records, the configured maximum")]


def test_generate_over_the_record_limit_is_refused_before_it_runs(tmp_path: Path) -> None:
    result = read_text(tmp_path, HEAD + "$GENERATE 0-65535 g$ A 192.0.2.1\n" * 3, max_records=100000)
    assert result.zone is None and codes(result) == [("zone-record-limit", 6)]


def test_include_fan_out_is_bounded(tmp_path: Path) -> None:
    for level in range(1, 5):  # 10 + 100 + 1,000 + 10,000 includes
        (tmp_path / f"inc{level}.db").write_text(f"$INCLUDE inc{level + 1}.db\n" * 10 if level < 4 else "x A 192.0.2.1\n")
    result = read_text(tmp_path, HEAD + "$INCLUDE inc1.db\n" * 10)
    assert result.zone is None
    assert [f.code for f in result.findings] == ["include-limit"]
    assert result.findings[0].message.startswith(f"more than {MAX_INCLUDES} $INCLUDEs")


def test_bytes_of_included_files_count_against_the_size_limit(tmp_path: Path) -> None:
    (tmp_path / "big.db").write_text("".join(f"h{i} A 192.0.2.1\n" for i in range(100)))
    result = read_text(tmp_path, HEAD + "$INCLUDE big.db\n", max_bytes=1024)
    assert result.zone is None
    assert [(f.code, f.file, f.line) for f in result.findings] == [("file-too-large", "zone.bind", 5)]
    assert result.findings[0].message == "zone.bind with the files it includes is larger than the limit of 1 KiB"


def named_checkzone_refuses(path: Path) -> bool:
    done = subprocess.run(["named-checkzone", "-q", "-i", "none", "example.com", str(path)], capture_output=True,
                          timeout=120)
    return done.returncode != 0


@pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="BIND tools not installed")
@pytest.mark.parametrize("data, code", [
    ("a " * 40000, "rdata-too-long"),  # 80,000 octets: BIND runs out of space
    ("a " * 70000, "syntax-error"),  # more fields than octets
    ("( " + "a\n" * 70000 + ")", "syntax-error"),  # the same across lines
    (('"' + "a" * 250 + '" ') * 200, None),  # 50,200 octets: fits
], ids=["80k-octets", "70k-fields", "70k-lines", "50k-octets-fit"])
def test_record_data_is_bounded_by_the_wire_as_bind_does(tmp_path: Path, data: str, code: str | None) -> None:
    text = HEAD + f"x TXT {data}\nafter A 192.0.2.9\n"
    result = read_text(tmp_path, text)
    assert [f.code for f in result.findings] == ([code] if code else [])
    assert named_checkzone_refuses(tmp_path / "zone.bind") == (code is not None)  # the oracle agrees
    names = [r.name for r in result.zone.records]
    assert "after.example.com." in names and ("x.example.com." in names) == (code is None)
    if code:
        assert result.findings[0].line == 5
    assert [r.line for r in result.zone.records if r.name == "after.example.com."] == [text.count("\n")]


@pytest.mark.parametrize("body, line", [
    ("".join(f"h{i} A 192.0.2.1\n" for i in range(70000)), 65536),  # checked every 65,536 lines
    ("x TXT ( " + "a\n" * 30000 + "; a comment\n" * 40000 + ")\n", 5),  # inside one long record
], ids=["lines", "parentheses"])
def test_cpu_time_limit_stops_reading(tmp_path: Path, body: str, line: int) -> None:
    result = read_text(tmp_path, HEAD + body, cpu_seconds=0.0)
    assert result.zone is None
    assert [(f.code, f.line, f.message) for f in result.findings] == [
        ("zone-cpu-limit", line, "CPU time limit of 0 s exceeded while reading; is this a zone file?")]
    assert read_text(tmp_path, HEAD + body).findings == ()  # within the default limit it is a zone
