"""The fast canonical spelling of provider data must equal publisher.rdata's, always."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.providers.presentation import canonical_text
from publisher.rdata import RdataError, canonical_rdata

ORIGIN = "example.com."

label = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*\\. ", min_size=1,
                max_size=12)
name = st.lists(label, min_size=1, max_size=4).map(lambda labels: ".".join(labels) + ".")
txt_string = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=300), max_size=40)
quoted = txt_string.map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
number = st.integers(min_value=0, max_value=70000).map(str)


def same_as_reference(rtype: str, text: str) -> None:
    try:
        expected = canonical_rdata(rtype, text, ORIGIN)
    except RdataError:
        with pytest.raises(RdataError):
            canonical_text(rtype, text, ORIGIN)
        return
    assert canonical_text(rtype, text, ORIGIN) == expected


@pytest.mark.parametrize("rtype, text", [
    ("A", "192.0.2.1"), ("A", "192.0.2.01"), ("AAAA", "2001:DB8::1"), ("AAAA", "::ffff:192.0.2.1"),
    ("AAAA", "2001:db8:0:1:1:1:1:1"), ("NS", "NS1.Example.COM."), ("CNAME", "relative"), ("MX", "10 MX.example.com."),
    ("MX", "70000 mx.example.com."), ("SRV", "0 5 5060 SIP.example.com."), ("TXT", '"v=spf1 -all"'),
    ("TXT", '"a"   "b"'), ("TXT", 'unquoted'), ("TXT", '"caf\\195\\169"'), ("TXT", '"' + "x" * 256 + '"'),
    ("CAA", '0 issue "letsencrypt.org"'), ("CAA", '128 iodef "mailto:x@example.com"'), ("CAA", '0 ISSUE "ca"'),
])
def test_examples(rtype: str, text: str) -> None:
    same_as_reference(rtype, text)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["NS", "CNAME", "PTR", "DNAME"]), name)
def test_names(rtype: str, target: str) -> None:
    same_as_reference(rtype, target)


@settings(max_examples=300, deadline=None)
@given(number, number, number, name)
def test_mx_and_srv(a: str, b: str, c: str, target: str) -> None:
    same_as_reference("MX", f"{a} {target}")
    same_as_reference("SRV", f"{a} {b} {c} {target}")


@settings(max_examples=300, deadline=None)
@given(st.lists(quoted, min_size=1, max_size=4), st.sampled_from([" ", "  "]))
def test_txt(strings: list[str], separator: str) -> None:
    same_as_reference("TXT", separator.join(strings))
    same_as_reference("CAA", f"0 issue {strings[0]}")
