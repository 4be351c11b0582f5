"""The fast canonical rdata paths agree with dnspython, the reference, on generated records.

Each property feeds the same master-file spelling to ``canonical_rdata`` (fast path first) and to
``reference_rdata`` (dnspython only): both must produce the same text, or both must reject it.
The last property does the same for whole zones: ``read_bind_zone`` against ``dns.zone``.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import dns.exception
import dns.ipv6
import dns.rdatatype
import dns.zone
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.zone.bind_zone import read_bind_zone
from publisher.model import ERROR
from publisher.rdata import (
    FAST_PATHS,
    RdataError,
    absolute_name,
    canonical_ipv6,
    canonical_rdata,
    canonical_rdata_tokens,
    canonical_type,
    reference_rdata,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies -------------------------------------------------------------------------------

LABEL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
labels = st.text(LABEL_CHARS, min_size=1, max_size=12)
long_labels = st.text("aB", min_size=60, max_size=66)  # around the 63-octet limit
origins = st.sampled_from(["example.com.", "sub.example.org.", "0.8.b.d.0.1.0.0.2.ip6.arpa.", "."])


@st.composite
def names(draw: st.DrawFn) -> str:
    """A name as a zone author writes it: relative or absolute, any case, sometimes '@'."""
    if draw(st.integers(0, 15)) == 0:
        return "@"
    parts = draw(st.lists(st.one_of(labels, labels, labels, long_labels), min_size=1, max_size=4))
    name = ".".join(parts)
    if draw(st.booleans()):
        name += "."
    if draw(st.integers(0, 30)) == 0:
        name = "*." + name
    return name


@st.composite
def ipv6_spellings(draw: st.DrawFn) -> str:
    value = draw(st.one_of(
        st.integers(0, 2**128 - 1),
        st.integers(0, 2**32 - 1),  # mostly zero: '::' forms and IPv4-compatible
        st.integers(0, 2**32 - 1).map(lambda v: 0xFFFF00000000 | v),  # IPv4-mapped
        st.integers(0, 2**16 - 1).map(lambda v: (0x20010DB8 << 96) | v),
        st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0xDB8]), min_size=8, max_size=8).map(
            lambda groups: sum(g << (16 * i) for i, g in enumerate(groups))
        ),
    ))
    address = ipaddress.IPv6Address(value)
    style = draw(st.integers(0, 4))
    if style == 0:
        text = address.compressed
    elif style == 1:
        text = address.exploded
    elif style == 2:  # groups without leading zeros, no '::'
        text = ":".join(f"{int(g, 16):x}" for g in address.exploded.split(":"))
    elif style == 3 and value >> 32 in (0, 0xFFFF):
        text = address.compressed.rsplit(":", 2)[0] + ":" + str(ipaddress.IPv4Address(value & 0xFFFFFFFF))
        if text.startswith(":") and not text.startswith("::"):
            text = ":" + text
    else:
        text = address.compressed
    return text.upper() if draw(st.booleans()) else text


ipv4s = st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v)))
uint16 = st.integers(0, 65535)


@st.composite
def numbers(draw: st.DrawFn, high: int = 65535) -> str:
    value = draw(st.integers(0, high))
    return ("0" * draw(st.integers(0, 2))) + str(value) if draw(st.integers(0, 5)) == 0 else str(value)


@st.composite
def character_strings(draw: st.DrawFn, max_size: int = 300) -> str:
    """A <character-string> as written in a master file: bare, quoted, with escapes."""
    text = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=max_size))
    if text and draw(st.integers(0, 3)) == 0 and all(c.isalnum() or c in "=:-_./" for c in text):
        return text  # bare word
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif draw(st.integers(0, 40)) == 0:
            out.append(f"\\{ord(char):03d}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


caa_tags = st.one_of(st.sampled_from(["issue", "issuewild", "iodef", "ISSUE", "Issue"]),
                     st.text("abcXYZ019", min_size=1, max_size=15))


@st.composite
def records(draw: st.DrawFn) -> tuple[str, str]:
    """(type, rdata text) of a common type, valid or nearly so."""
    rtype = draw(st.sampled_from(["A", "AAAA", "NS", "CNAME", "PTR", "DNAME", "MX", "SRV", "TXT",
                                  "SPF", "CAA", "DS"]))
    if rtype == "A":
        return rtype, draw(st.one_of(ipv4s, ipv4s, ipv4s, st.sampled_from(["1.2.3", "01.2.3.4", "256.0.0.1"])))
    if rtype == "AAAA":
        return rtype, draw(st.one_of(ipv6_spellings(), ipv6_spellings(), ipv4s,
                                     st.sampled_from(["1:2:3:4:5:6:7:8:9", "1::2::3", "12345::"])))
    if rtype in ("NS", "CNAME", "PTR", "DNAME"):
        return rtype, draw(names())
    if rtype == "MX":
        return rtype, f"{draw(numbers())} {draw(names())}"
    if rtype == "SRV":
        return rtype, f"{draw(numbers())} {draw(numbers())} {draw(numbers())} {draw(names())}"
    if rtype in ("TXT", "SPF"):
        strings = draw(st.lists(character_strings(), min_size=1, max_size=3))
        return rtype, " ".join(strings)
    if rtype == "DS":
        digest_type = draw(st.sampled_from(["1", "2", "4", "5", "0", "02"]))
        size = draw(st.sampled_from([20, 32, 48, 64, 70, 0]))
        digest = draw(st.binary(min_size=size, max_size=size)).hex()
        digest = digest.upper() if draw(st.booleans()) else digest
        cut = draw(st.integers(0, len(digest)))
        if draw(st.booleans()) and 0 < cut < len(digest):
            digest = digest[:cut] + " " + digest[cut:]
        algorithm = draw(st.one_of(numbers(255), st.sampled_from(["RSASHA256", "ECDSAP256SHA256"])))
        return rtype, f"{draw(numbers())} {algorithm} {digest_type} {digest}".rstrip()
    return rtype, f"{draw(numbers(255))} {draw(caa_tags)} {draw(character_strings(80))}"


def outcome(function, *args):
    try:
        return ("ok", function(*args))
    except RdataError:
        return ("error", None)


# -- properties -------------------------------------------------------------------------------


@SETTINGS
@given(record=records(), origin=origins)
def test_fast_path_equals_dnspython_reference(record: tuple[str, str], origin: str) -> None:
    rtype, text = record
    assert outcome(canonical_rdata, rtype, text, origin) == outcome(reference_rdata, rtype, text, origin)


@SETTINGS
@given(record=records(), origin=origins)
def test_token_fast_path_equals_dnspython_reference(record: tuple[str, str], origin: str) -> None:
    rtype, text = record
    assert outcome(canonical_rdata_tokens, rtype, _tokens(text), origin) == outcome(
        reference_rdata, rtype, text, origin
    )


def _tokens(text: str) -> list[str]:
    from publisher.zone.bind_zone import _lex_special  # noqa: PLC0415

    tokens, _ = _lex_special(text, 1, iter(()))
    return tokens


@SETTINGS
@given(address=ipv6_spellings())
def test_aaaa_fast_path_is_taken_and_exact(address: str) -> None:
    fast = FAST_PATHS["AAAA"]([address], ".")
    assert fast is not None
    assert fast == reference_rdata("AAAA", address, ".")
    assert fast == fast.lower()


@SETTINGS
@given(text=st.one_of(ipv6_spellings(), st.text("0123456789abcdefABCDEF:.", max_size=45)))
def test_canonical_ipv6_equals_dnspython(text: str) -> None:
    """The C round trip Lua AAAA data takes is dnspython's text, and refuses what dnspython refuses."""
    def reference(address: str) -> str:
        try:
            return dns.ipv6.inet_ntoa(dns.ipv6.inet_aton(address))
        except (dns.exception.SyntaxError, ValueError):
            raise RdataError("invalid") from None
    assert outcome(canonical_ipv6, text) == outcome(reference, text)


@SETTINGS
@given(name=names(), origin=origins)
def test_absolute_name_equals_dnspython(name: str, origin: str) -> None:
    assert outcome(absolute_name, name, origin) == outcome(
        lambda n, o: reference_rdata("CNAME", n, o), name, origin
    )


def test_specific_findings() -> None:
    with pytest.raises(RdataError) as excinfo:
        canonical_rdata("AAAA", "192.0.2.1", ".")
    assert excinfo.value.code == "ipv4-in-aaaa"
    with pytest.raises(RdataError) as excinfo:
        canonical_rdata("TXT", '"' + "x" * 256 + '"', ".")
    assert excinfo.value.code == "txt-string-too-long"
    with pytest.raises(RdataError) as excinfo:
        canonical_rdata("TXT", "\\065" * 256, ".")
    assert excinfo.value.code == "txt-string-too-long"
    with pytest.raises(RdataError) as excinfo:
        absolute_name("a" * 64, "example.")
    assert excinfo.value.code == "label-too-long"
    with pytest.raises(RdataError) as excinfo:
        absolute_name("a..b", "example.")
    assert excinfo.value.code == "empty-label"
    with pytest.raises(RdataError) as excinfo:
        absolute_name(".".join(["a" * 60] * 5), "example.")
    assert excinfo.value.code == "name-too-long"


def test_canonical_forms_of_common_types() -> None:
    assert canonical_rdata("MX", "010 Mail", "Example.COM.".lower()) == "10 mail.example.com."
    assert canonical_rdata("AAAA", "2001:DB8:0:0:0:0:0:1", ".") == "2001:db8::1"
    assert canonical_rdata("TXT", 'abc "d e" "q\\"x"', ".") == '"abc" "d e" "q\\"x"'
    assert canonical_rdata("CAA", '0 issue "ca.example"', ".") == '0 issue "ca.example"'
    assert canonical_rdata("SRV", "0 5 5060 SIP", "example.") == "0 5 5060 sip.example."
    assert canonical_rdata("HTTPS", "1 . alpn=h2,h3", ".") == '1 . alpn="h2,h3"'
    assert canonical_rdata("TYPE65534", "\\# 2 abcd", ".") == "\\# 2 abcd"
    assert canonical_type("type1") == "A"
    assert canonical_type("TYPE65534") == "TYPE65534"
    with pytest.raises(RdataError) as excinfo:
        canonical_type("AAAAA")
    assert excinfo.value.code == "unknown-type"


# -- whole zones: the reader against dns.zone ----------------------------------------------------


@st.composite
def zone_texts(draw: st.DrawFn, skip: tuple[str, ...] = ("CNAME", "DNAME")) -> tuple[str, str]:
    """A zone file with varied layout (inherited owners, TTL/class order, comments) and the
    origin to read it with."""
    origin = draw(st.sampled_from(["example.com.", "zone.test."]))
    lines = [f"$ORIGIN {origin}", "$TTL 3600",
             "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300"]
    count = draw(st.integers(1, 25))
    for _ in range(count):
        rtype, text = draw(records())
        if rtype in skip:
            continue  # CNAME beside other data, DS off a delegation: validation's business
        try:
            canonical_rdata(rtype, text, origin)
        except RdataError:
            continue  # the zone property is about valid zones; errors are tested above
        owner = draw(st.one_of(st.just(""), st.sampled_from(["@", "www", f"Mail.{origin}"]),
                               labels))
        ttl = draw(st.sampled_from(["", "300", "1h", "2D"]))
        layout = draw(st.integers(0, 2))
        fields = [ttl, "IN"] if layout == 0 else (["IN", ttl] if layout == 1 else [ttl])
        line = " ".join([owner or "\t"] + [f for f in fields if f] + [rtype, text])
        if draw(st.integers(0, 4)) == 0:
            line += " ; a comment"
        lines.append(line)
    return origin, "\n".join(lines) + "\n"


def _dnspython_records(text: str, origin: str) -> set[tuple[str, str, str]]:
    zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
    result = set()
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            rtype = dns.rdatatype.to_text(rdataset.rdtype)
            for rdata in rdataset:
                result.add((name.to_text().lower(), rtype,
                            reference_rdata(rtype, rdata.to_text(), origin)))
    return result


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(zone=zone_texts())
def test_reader_equals_dnspython_zone(zone: tuple[str, str], tmp_path: Path) -> None:
    origin, text = zone
    path = tmp_path / "zone.bind"
    path.write_text(text)
    result = read_bind_zone(path, origin, repo=tmp_path, display_file="zone.bind")
    assert [f for f in result.findings if f.severity == ERROR] == []
    ours = {(r.name, r.type, r.data) for r in result.zone.records}
    assert ours == _dnspython_records(text, origin)


@SETTINGS
@given(record=records(), origin=origins)
def test_canonical_text_is_a_fixed_point(record: tuple[str, str], origin: str) -> None:
    """Stages re-canonicalise data they did not produce (providers, the Lua evaluator): the
    canonical text must come back unchanged, under any origin."""
    rtype, text = record
    try:
        canonical = canonical_rdata(rtype, text, origin)
    except RdataError:
        return
    assert canonical_rdata(rtype, canonical, "example.net.") == canonical
    assert reference_rdata(rtype, canonical, "example.net.") == canonical


@pytest.mark.parametrize("rtype, text", [
    ("A", "192.0.2.1"), ("AAAA", "2001:DB8::1"), ("NS", "ns1"), ("CNAME", "www.example.net."),
    ("PTR", "host"), ("DNAME", "x"), ("MX", "10 mail"), ("SRV", "0 5 5060 sip"),
    ('TXT', '"v=spf1 -all" more'), ("SPF", '"v=spf1"'), ("CAA", '0 issue "ca.example"'),
    ("DS", "12345 13 2 3A0D8F5A1F3E4C2B7D6E9F0A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B0C"),
])
def test_fast_paths_are_taken_for_the_common_types(rtype: str, text: str) -> None:
    """The speed of the BIND reader depends on these never falling back to dnspython."""
    fast = FAST_PATHS[rtype](_tokens(text), "example.com.")
    assert fast is not None
    assert fast == reference_rdata(rtype, text, "example.com.")


@pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="BIND tools not installed")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(zone=zone_texts(skip=("CNAME", "DNAME", "DS", "NS")))
def test_reader_equals_named_checkzone(zone: tuple[str, str], tmp_path: Path) -> None:
    """BIND itself as the oracle: what named-checkzone loads and dumps, the reader reads."""
    origin, text = zone
    path = tmp_path / "zone.bind"
    path.write_text(text + "@ NS ns1\nns1 A 192.0.2.53\n")
    dump = tmp_path / "dump.txt"
    completed = subprocess.run(
        ["named-checkzone", "-i", "none", "-k", "ignore", "-m", "ignore", "-M", "ignore",
         "-n", "ignore", "-S", "ignore", "-T", "ignore", "-D", "-o", str(dump), origin, str(path)],
        capture_output=True, text=True,
    )
    result = read_bind_zone(path, origin, repo=tmp_path, display_file="zone.bind")
    assert completed.returncode == 0, completed.stdout
    assert [f for f in result.findings if f.severity == ERROR] == []
    theirs = set()
    for line in dump.read_text().splitlines():
        name, ttl, _, rtype, data = line.split(None, 4)
        rtype = canonical_type(rtype)
        theirs.add((name.lower(), rtype, canonical_rdata(rtype, data, ".")))
    assert {(r.name, r.type, r.data) for r in result.zone.records} == theirs


# -- canonical_rdata on whole rdata text, as providers read it back (quoted strings included) --

PROVIDER_ORIGIN = "example.com."

provider_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*\\. ", min_size=1,
                max_size=12)
provider_name = st.lists(provider_label, min_size=1, max_size=4).map(lambda labels: ".".join(labels) + ".")
provider_txt_string = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=300), max_size=40)
provider_quoted = provider_txt_string.map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
provider_number = st.integers(min_value=0, max_value=70000).map(str)


def same_as_reference(rtype: str, text: str) -> None:
    """canonical_rdata (fast paths, whole text as servers hand it back) == the dnspython reference."""
    try:
        expected = reference_rdata(rtype, text, PROVIDER_ORIGIN)
    except RdataError:
        with pytest.raises(RdataError):
            canonical_rdata(rtype, text, PROVIDER_ORIGIN)
        return
    assert canonical_rdata(rtype, text, PROVIDER_ORIGIN) == expected


@pytest.mark.parametrize("rtype, text", [
    ("A", "192.0.2.1"), ("A", "192.0.2.01"), ("AAAA", "2001:DB8::1"), ("AAAA", "::ffff:192.0.2.1"),
    ("AAAA", "2001:db8:0:1:1:1:1:1"), ("NS", "NS1.Example.COM."), ("CNAME", "relative"), ("MX", "10 MX.example.com."),
    ("MX", "70000 mx.example.com."), ("SRV", "0 5 5060 SIP.example.com."), ("TXT", '"v=spf1 -all"'),
    ("TXT", '"a"   "b"'), ("TXT", 'unquoted'), ("TXT", '"caf\\195\\169"'), ("TXT", '"' + "x" * 256 + '"'),
    ("CAA", '0 issue "letsencrypt.org"'), ("CAA", '128 iodef "mailto:x@example.com"'), ("CAA", '0 ISSUE "ca"'),
])
def test_whole_text_examples(rtype: str, text: str) -> None:
    same_as_reference(rtype, text)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["NS", "CNAME", "PTR", "DNAME"]), provider_name)
def test_whole_text_names(rtype: str, target: str) -> None:
    same_as_reference(rtype, target)


@settings(max_examples=300, deadline=None)
@given(provider_number, provider_number, provider_number, provider_name)
def test_whole_text_mx_and_srv(a: str, b: str, c: str, target: str) -> None:
    same_as_reference("MX", f"{a} {target}")
    same_as_reference("SRV", f"{a} {b} {c} {target}")


@settings(max_examples=300, deadline=None)
@given(st.lists(provider_quoted, min_size=1, max_size=4), st.sampled_from([" ", "  "]))
def test_whole_text_txt_and_caa(strings: list[str], separator: str) -> None:
    same_as_reference("TXT", separator.join(strings))
    same_as_reference("CAA", f"0 issue {strings[0]}")
