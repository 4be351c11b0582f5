"""BIND's own checkzone test zones through our reader and validator (``lint FILE`` semantics:
standalone=True).  Every ``good*`` file loads without error; every ``bad*.db`` file is rejected for
the reason ``EXPECTATIONS.tsv`` gives, mapped from BIND's message to our finding codes; the root-zone
NS checks of ``zonechecks/`` give the verdicts BIND's ``zonechecks`` system test expects."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from publisher.zone.bind_zone import read_bind_zone
from publisher.model import ERROR, Finding
from publisher.zone.validate import validate_zone

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "bind9-checkzone"
ZONES = CORPUS / "zones"

pytestmark = pytest.mark.skipif(not (CORPUS / "EXPECTATIONS.tsv").is_file(), reason="BIND corpus not present")

# BIND message fragment -> finding codes that mean the same reason.  First match wins, so the
# $GENERATE forms come before the generic "syntax error".
REASONS: list[tuple[str, frozenset[str]]] = [
    ("SVCB record not valid", frozenset({"svcb-dns-missing-alpn", "svcb-dns-missing-dohpath"})),
    ("CDS/CDNSKEY consistency", frozenset({"cds-mismatch", "cdnskey-mismatch"})),
    ("CNAME and other data", frozenset({"cname-and-other-data"})),
    ("DS not at delegation point", frozenset({"ds-not-at-delegation"})),
    ("DS record at top of zone", frozenset({"ds-at-apex"})),
    ("bad owner name (check-names)", frozenset({"nsec3-owner-invalid"})),
    ("bad name (check-names)", frozenset({"hostname-syntax"})),
    ("$GENERATE: ${db}:6: syntax error", frozenset({"generate-syntax"})),
    ("meta RR type", frozenset({"generate-meta-type"})),
    ("out of range", frozenset({"generate-range", "invalid-rdata"})),  # $GENERATE range or NSEC3 hash
    ("invalid range", frozenset({"generate-range"})),
    ("not a file", frozenset({"include-not-a-file"})),
    ("invalid use of a meta type", frozenset({"meta-type"})),
    ("unknown class/type", frozenset({"invalid-rdata", "unknown-type", "unknown-class"})),
    ("unexpected end of line", frozenset({"bad-ttl", "missing-ttl"})),
    ("unexpected end of input", frozenset({"invalid-rdata", "missing-rdata"})),
    ("bad EUI", frozenset({"invalid-rdata"})),
    ("bad base32 encoding", frozenset({"invalid-rdata"})),
    ("extra input text", frozenset({"invalid-rdata"})),
    ("disallowed (by application policy)", frozenset({"invalid-rdata"})),
    ("syntax error", frozenset({"invalid-rdata", "unknown-type"})),
]

# bad*.db files we accept as not rejected for BIND's reason, and why.
NOT_MATCHED = {
    "bad-rpz-prefix.db": "RPZ policy-zone owner syntax (rpz-ip prefixes) is a BIND response-policy "
                         "feature; a published DNS zone has no such names, so we do not check it",
}

# good* files we deliberately reject, and why.
GOOD_REJECTED = {
    "good1.db": ({"ns-beside-dname"}, "validation.md E.32: NS beside a DNAME below the apex is "
                 "rejected (Knot rejects it; BIND accepts it)"),
}
GOOD1_CODES = {"ns-beside-dname", "ns-target-below-dname", "data-below-dname"}


def _expectations() -> dict[str, tuple[str, str]]:
    with open(CORPUS / "EXPECTATIONS.tsv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1:]
    return {row[0]: (row[1], row[2] if len(row) > 2 else "") for row in rows}


EXPECTATIONS = _expectations() if (CORPUS / "EXPECTATIONS.tsv").is_file() else {}
BAD = sorted(name for name, (args, _) in EXPECTATIONS.items()
             if name.startswith("bad") and name.endswith(".db") and not args.startswith("("))
GOOD = sorted(p.name for p in ZONES.glob("good*")) if ZONES.is_dir() else []


def lint(path: Path, origin: str, *, check_names_fail: bool = False) -> list[Finding]:
    """Reader findings plus validation findings, as ``lint FILE`` produces them.  BIND's
    ``-k fail`` turns check-names warnings into errors; the test mirrors that flag."""
    origin = origin if origin.endswith(".") else origin + "."
    result = read_bind_zone(path, origin, repo=CORPUS, display_file=path.name)
    found = list(result.findings)
    if result.zone is not None:
        found += validate_zone(result.zone, standalone=True)
    if check_names_fail:
        found = [f._replace(severity=ERROR) if f.code == "hostname-syntax" else f for f in found]
    return found


def expected_reason(message: str) -> frozenset[str]:
    for fragment, codes in REASONS:
        if fragment in message:
            return codes
    return frozenset()


def verdict(name: str) -> tuple[bool, set[str], frozenset[str]]:
    """(rejected for the expected reason, error codes, expected codes) for one bad file."""
    args, message = EXPECTATIONS[name]
    errors = {f.code for f in lint(ZONES / name, args.split()[-1], check_names_fail="-k fail" in args)
              if f.is_error}
    expected = expected_reason(message)
    return bool(errors & expected), errors, expected


def test_corpus_is_complete():
    assert len(BAD) == 119 and len(GOOD) == 14


@pytest.mark.parametrize("name", BAD)
def test_bad_file_rejected_for_the_expected_reason(name):
    matched, errors, expected = verdict(name)
    if name in NOT_MATCHED:
        assert not matched, f"{name} now matches: remove it from NOT_MATCHED"
        pytest.xfail(NOT_MATCHED[name])
    assert expected, f"no reason mapping for {EXPECTATIONS[name][1]!r}"
    assert matched, f"{name}: expected one of {sorted(expected)}, got errors {sorted(errors)}"


def test_at_least_110_bad_files_rejected_for_the_right_reason():
    matched = [name for name in BAD if verdict(name)[0]]
    missed = sorted(set(BAD) - set(matched))
    assert len(matched) >= 110, missed
    assert set(missed) <= set(NOT_MATCHED), missed


@pytest.mark.parametrize("name", GOOD)
def test_good_file_loads_without_error(name):
    errors = {f.code for f in lint(ZONES / name, "example") if f.is_error}
    if name in GOOD_REJECTED:
        required, _why = GOOD_REJECTED[name]
        assert required <= errors <= GOOD1_CODES
        return
    assert errors == set()


@pytest.mark.parametrize("name, origin, warning", [
    ("spf.db", "example", "spf-record-type"),
    ("warn.inherited.owner.db", "example", "inherited-owner-after-origin"),
    ("warn.no-a.server.db", "example", None),
    ("warn.no-aaaa.server.glue.db", "example", None),
    ("warn.deprecated.cds-sha1.db", "example", "ds-digest-deprecated"),
    ("warn.deprecated.digest-sha1.db", "example", "ds-digest-deprecated"),
    ("warn.deprecated.ds-alg.db", "example", "dnssec-algorithm-deprecated"),
    ("warn.deprecated.key-alg.db", "example", "dnssec-algorithm-deprecated"),
    ("warn.deprecated.nsec3rsasha1.db", "example", "dnssec-algorithm-deprecated"),
    ("warn.deprecated.rsasha1.db", "example", "dnssec-algorithm-deprecated"),
    ("nowarn.inherited.owner.db", "example", None),
    ("er.db", "example", None),
    ("test1.db", "example", None),
])
def test_files_that_load_with_warnings(name, origin, warning):
    found = lint(ZONES / name, origin)
    assert [f for f in found if f.is_error] == []
    if warning:
        assert warning in {f.code for f in found}


@pytest.mark.parametrize("name, error, warning", [
    ("a.db", None, "ns-target-looks-like-ip"),
    ("aaaa.db", None, "ns-target-looks-like-ip"),
    ("bigserial.db", None, None),
    ("cname.db", "ns-target-is-cname", None),
    ("dname.db", "ns-target-below-dname", None),
    ("noaddress.db", "ns-target-no-address", None),
    ("nxdomain.db", "ns-target-no-address", None),
])
def test_root_zone_ns_checks(name, error, warning):
    found = lint(CORPUS / "zonechecks" / name, ".")
    errors = {f.code for f in found if f.is_error}
    assert errors == ({error} if error else set())
    if warning:
        assert warning in {f.code for f in found if not f.is_error}
    for finding in found:
        if finding.code == error:
            assert finding.file == name and finding.line == 2  # the NS record's line


def test_check_names_lines_match_bind():
    """BIND names lines 8, 9 and 10 of bad-dns-sd-reverse.db; the DNS-SD browsing names of the
    good twin are exempt."""
    bad = lint(ZONES / "bad-dns-sd-reverse.db", "0.0.0.0.in-addr.arpa")
    assert [f.line for f in bad if f.code == "hostname-syntax"] == [8, 9, 10]
    good = lint(ZONES / "good-dns-sd-reverse.db", "0.0.0.0.in-addr.arpa")
    assert [f for f in good if f.code == "hostname-syntax"] == []
