"""BIND's own checkzone test zones through our reader and validator (``lint FILE`` semantics:
standalone=True).  Every ``good*`` file loads without error; every ``bad*.db`` file is rejected for
the reason ``EXPECTATIONS.tsv`` gives, mapped from BIND's message to our finding codes; the root-zone
NS checks of ``zonechecks/`` give the verdicts BIND's ``zonechecks`` system test expects."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from publisher.zone.bind_zone import read_bind_zone
from publisher.model import ERROR, Finding
from publisher.zone.validate import validate_zone

from tests.corpus import CORPUS, ZONES, line_of, requires_full_corpus

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

# good* files Knot 3.2's zone parser cannot read (kzonecheck: "failed to run semantic checks"):
# the reader follows BIND's syntax, so --server knot does not predict these.
KNOT_PARSER_LIMITS = {
    "good-dns-sd-reverse.db": "Knot refuses the PTR target '!@#3.' (invalid record data)",
    "good-generate-modifier.db": "Knot has no $GENERATE",
    "good-nsap.db": "Knot does not know the NSAP type",
    "good-nsec3-nopadhash.db": "Knot refuses this unpadded base32hex NSEC3 hash",
    "good-svcb.db": "Knot 3.2 refuses an SVCB key this file uses",
}

# bad*.db files that BIND 9.18 (Debian's named-checkzone) still loads: the corpus comes from a later
# BIND, whose verdict we follow for these checks (validate.NEWER_BIND) or the reader's syntax.
NEEDS_NEWER_BIND = {
    "bad-_dns-svcb1.db", "bad-_dns-svcb2.db", "bad-_dns-svcb3.db", "bad-_dns-svcb4.db",
    "bad-_dns-svcb5.db", "bad-_dns-svcb6.db",  # RFC 9461 _dns SVCB rules
    "bad-cname-and-key.db",  # KEY beside a CNAME
    "bad-ds-2.db",  # DS not at a delegation point
    "bad-eui48-no-leading-zero.db", "bad-eui48-trailing-garbage.db",  # stricter EUI48/EUI64 syntax
    "bad-eui64-no-leading-zero.db", "bad-eui64-trailing-garbage.db",
}


def _expectations() -> dict[str, tuple[str, str]]:
    with open(CORPUS / "EXPECTATIONS.tsv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1:]
    return {row[0]: (row[1], row[2] if len(row) > 2 else "") for row in rows}


EXPECTATIONS = _expectations()
BAD = sorted(name for name, (args, _) in EXPECTATIONS.items()
             if name.startswith("bad") and name.endswith(".db") and not args.startswith("(")
             and (ZONES / name).is_file())
GOOD = sorted(p.name for p in ZONES.glob("good*")) if ZONES.is_dir() else []


def lint(path: Path, origin: str, *, check_names_fail: bool = False, server: str = "bind") -> list[Finding]:
    """Reader findings plus validation findings, as ``lint FILE`` produces them.  BIND's
    ``-k fail`` turns check-names warnings into errors; the test mirrors that flag."""
    origin = origin if origin.endswith(".") else origin + "."
    result = read_bind_zone(path, origin, repo=CORPUS, display_file=path.name, server=server)
    found = list(result.findings)
    if result.zone is not None:
        found += validate_zone(result.zone, standalone=True, server=server)
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


@requires_full_corpus
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


@requires_full_corpus
def test_at_least_116_bad_files_rejected_for_the_right_reason():
    matched = [name for name in BAD if verdict(name)[0]]
    missed = sorted(set(BAD) - set(matched))
    assert len(matched) >= 116, missed
    assert set(missed) <= set(NOT_MATCHED), missed


@requires_full_corpus
@pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="named-checkzone (Debian bind9-utils) not installed")
def test_bad_files_bind_9_18_accepts_are_exactly_the_newer_checks():
    """Which corpus verdicts need a BIND after 9.18, measured: the installed named-checkzone
    (9.18) loads exactly these bad files with the corpus's own arguments."""
    accepted = set()
    for name in BAD:
        args = EXPECTATIONS[name][0].split()
        run = subprocess.run(["named-checkzone", "-q", *args[:-1], args[-1], str(ZONES / name)],
                             capture_output=True, cwd=CORPUS, timeout=30)
        if run.returncode == 0:
            accepted.add(name)
    version = subprocess.run(["named-checkzone", "-v"], capture_output=True, text=True).stdout
    if not version.startswith("9.18."):
        pytest.skip(f"the list is for BIND 9.18; this is {version.strip()}")
    assert accepted - set(NOT_MATCHED) == NEEDS_NEWER_BIND


CORPUS_ORIGINS = {"good-dns-sd-reverse.db": "0.0.0.0.in-addr.arpa"}


@pytest.mark.parametrize("name", GOOD)
def test_good_file_loads_without_error(name):
    errors = {f.code for f in lint(ZONES / name, CORPUS_ORIGINS.get(name, "example")) if f.is_error}
    assert errors == set()


@pytest.mark.skipif(shutil.which("kzonecheck") is None, reason="kzonecheck (Debian knot) not installed")
@pytest.mark.parametrize("name", GOOD)
def test_good_file_under_knot_gets_kzonecheck_verdict(name):
    """``--server knot`` on BIND's good files: an error exactly when kzonecheck refuses the file
    (good1.db: NS beside a non-apex DNAME; good-occulted-ns-by-dname.db: data below the apex DNAME)."""
    if name in KNOT_PARSER_LIMITS:
        pytest.skip(KNOT_PARSER_LIMITS[name])
    origin = CORPUS_ORIGINS.get(name, "example")
    found = lint(ZONES / name, origin, server="knot")
    knot = subprocess.run(["kzonecheck", "-o", origin, str(ZONES / name)], capture_output=True, text=True, timeout=30)
    assert "failed to run semantic checks" not in knot.stdout + knot.stderr
    assert any(f.is_error for f in found) == (knot.returncode != 0), (knot.stdout, found)


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
    ("aaaa.db", "hostname-syntax", "ns-target-looks-like-ip"),  # '::1.': named's check-names refuses it
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
    if error:
        assert {(f.file, f.line) for f in found if f.code == error} >= {(name, line_of(CORPUS / "zonechecks" / name, "IN NS"))}


def test_check_names_lines_match_bind():
    """BIND names lines 8, 9 and 10 of bad-dns-sd-reverse.db (the three PTR lines; later in the
    licensed copy); the DNS-SD browsing names of the good twin are exempt."""
    bad = lint(ZONES / "bad-dns-sd-reverse.db", "0.0.0.0.in-addr.arpa")
    first = line_of(ZONES / "bad-dns-sd-reverse.db", "b._fail._udp")
    assert [f.line for f in bad if f.code == "hostname-syntax"] == [first, first + 1, first + 2]
    good = lint(ZONES / "good-dns-sd-reverse.db", "0.0.0.0.in-addr.arpa")
    assert [f for f in good if f.code == "hostname-syntax"] == []
