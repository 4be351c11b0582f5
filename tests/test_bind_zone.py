"""The BIND master-file reader: syntax, directives, findings with file:line, and the corpus."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from publisher.bind_zone import parse_ttl, read_bind_zone, TTLError
from publisher.model import ERROR, WARNING

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "bind9-checkzone"

ZONES = CORPUS / "zones"


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
