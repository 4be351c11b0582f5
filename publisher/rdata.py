"""Canonical rdata text: the one spelling of each record's data that every stage compares.

dnspython is the reference: ``canonical_rdata`` must return exactly what
``dns.rdata.from_text(...).to_text()`` returns for absolute, lower-cased names.  Fast paths for the
common types avoid building a dnspython object per record (see ``tests/test_rdata.py`` for the
property tests that hold the two together).  A fast path either returns the reference's exact text
or ``None`` ("not sure"), in which case the reference decides, so the two can only disagree on
input the fast path accepts; the property tests generate exactly that input.
"""

from __future__ import annotations

import base64
import re
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import Callable, Sequence

import dns.exception
import dns.ipv6
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer


class RdataError(ValueError):
    """The record data is not valid for its type; the message says why.

    ``code`` is the stable finding code for the problem (``invalid-rdata`` unless more specific).
    """

    def __init__(self, message: str, code: str = "invalid-rdata") -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------
# Types

_TYPE_CACHE: dict[str, str] = {}


def canonical_type(rtype: str) -> str:
    """Upper-case mnemonic of a type written as ``mx``, ``MX`` or ``TYPE15``; raises RdataError."""
    cached = _TYPE_CACHE.get(rtype)
    if cached is not None:
        return cached
    extra = _BIND_ONLY_TYPES.get(rtype.upper())
    if extra is not None:
        return f"TYPE{extra}"
    try:
        value = dns.rdatatype.from_text(rtype)
    except (dns.rdatatype.UnknownRdatatype, ValueError) as error:
        raise RdataError(
            f"unknown record type {rtype!r}: check the spelling, or write an unknown type as "
            "TYPEnnn with RFC 3597 '\\# length hex' data",
            "unknown-type",
        ) from error
    text = dns.rdatatype.to_text(value)
    if len(_TYPE_CACHE) < 4096:
        _TYPE_CACHE[rtype] = text
    return text


def is_meta_type(rtype: str) -> bool:
    """True for query/meta types (ANY, AXFR, IXFR, OPT, TSIG, TKEY, MAILA, MAILB, 128-255)."""
    value = dns.rdatatype.from_text(rtype)
    return value == 0 or dns.rdatatype.is_metatype(value)


# ---------------------------------------------------------------------------------------------
# Names

# A name spelled without escapes, quotes or characters dnspython would escape on output, with
# every label 1..63 characters: such a name's canonical form is just lower-case + origin.
_LABEL = r"[A-Za-z0-9_*/+=,:!#%&'<>?\[\]^`{|}~-]{1,63}"
_SIMPLE_NAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?\Z|\.\Z", re.ASCII)
_NAME_CACHES: dict[str, dict[str, str]] = {}
_NAME_CACHE_LIMIT = 200_000

_NAME_ERRORS: dict[type, tuple[str, str]] = {
    dns.name.LabelTooLong: ("label-too-long", "a label is longer than 63 octets; shorten it"),
    dns.name.NameTooLong: ("name-too-long", "the name is longer than 255 octets; shorten it"),
    dns.name.EmptyLabel: ("empty-label", "the name has an empty label ('..' or a leading dot); remove the extra dot"),
}


def absolute_name(name: str, origin: str) -> str:
    """``name`` as an absolute lower-case name with trailing dot; ``@`` and relative names are
    taken relative to ``origin`` (itself absolute and lower-case).  Raises RdataError with code
    ``label-too-long``, ``name-too-long``, ``empty-label`` or ``bad-name``."""
    cache = _NAME_CACHES.get(origin)
    if cache is None:
        cache = _new_name_cache(origin)
    result = cache.get(name)
    if result is not None:
        return result
    result = _fast_name(name, origin)
    if result is None:
        result = _reference_name(name, origin)
    if len(cache) >= _NAME_CACHE_LIMIT:
        cache.clear()
    cache[name] = result
    return result


def _new_name_cache(origin: str) -> dict[str, str]:
    """A fresh cache for names under ``origin``; a long-running service reads many zones, so
    the caches of earlier origins are dropped rather than kept forever."""
    if len(_NAME_CACHES) >= 16:
        _NAME_CACHES.clear()
    cache: dict[str, str] = {}
    _NAME_CACHES[origin] = cache
    return cache


def _fast_name(name: str, origin: str) -> str | None:
    """Canonical name without dnspython, or None when the spelling needs the reference."""
    if not _SIMPLE_NAME.match(name):
        return None
    if name[-1] == ".":
        full = name.lower()
    elif origin == ".":
        full = name.lower() + "."
    else:
        full = name.lower() + "." + origin
    if len(full) > 254:  # wire length is len(text) + 1 for an unescaped absolute name
        raise RdataError(f"name {name!r} is longer than 255 octets; shorten it", "name-too-long")
    return full


def _reference_name(name: str, origin: str) -> str:
    try:
        parsed = dns.name.from_text(_ascii_escaped(name), origin=dns.name.from_text(origin))
    except dns.exception.DNSException as error:
        code, advice = _NAME_ERRORS.get(type(error), ("bad-name", f"invalid name: {error}"))
        raise RdataError(f"name {name!r}: {advice}", code) from error
    return parsed.to_text().lower()


def _ascii_escaped(text: str) -> str:
    """Non-ASCII characters as \\DDD escapes of their UTF-8 bytes, as BIND reads raw octets."""
    if text.isascii():
        return text
    raw = text.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if b < 0x80 else f"\\{b:03d}" for b in raw)


# ---------------------------------------------------------------------------------------------
# Rdata


def canonical_rdata(rtype: str, text: str, origin: str) -> str:
    """Canonical text of ``text`` as rdata of type ``rtype`` (a canonical mnemonic).

    Relative names are made absolute under ``origin``; all names are lower-cased.
    Raises RdataError with a message fit for a user.
    """
    fast = FAST_PATHS.get(rtype)
    if fast is not None:
        if _PLAIN_TEXT.match(text):
            tokens = text.split()
        elif _QUOTED_TEXT.match(text):  # e.g. TXT and CAA as servers hand them back
            tokens = _TOKEN.findall(text)
        else:
            tokens = None
        result = fast(tokens, origin) if tokens is not None else None
        if result is not None:
            return result
    return reference_rdata(rtype, text, origin)


def canonical_rdata_tokens(rtype: str, tokens: Sequence[str], origin: str) -> str:
    """Like ``canonical_rdata`` for rdata already split into master-file tokens (quoted strings
    keep their quotes and escapes), as the BIND reader has them."""
    fast = FAST_PATHS.get(rtype)
    if fast is not None:
        result = fast(tokens, origin)
        if result is not None:
            return result
    return reference_rdata(rtype, " ".join(tokens), origin)


# Text the fast paths may split on whitespace: no quotes, escapes, parentheses or comments.
_PLAIN_TEXT = re.compile(r'[^"\\();]*\Z')
# Text of whitespace-separated tokens where quoted strings hold no quote or escape: split exactly
# by _TOKEN (anything else goes to dnspython).
_TOKEN = re.compile(r'"[^"\\]*"|[^\s"\\();]+')
_QUOTED_TEXT = re.compile(r'\s*(?:(?:"[^"\\]*"|[^\s"\\();]+)(?:\s+|\Z))*\Z')


def reference_rdata(rtype: str, text: str, origin: str) -> str:
    """The dnspython reference: canonical text of ``text`` as ``rtype`` rdata.

    Types BIND reads but dnspython only knows as generic data (MD, MINFO, A6, TA, ATMA, EID...)
    are encoded here and given in RFC 3597 form, as dnspython prints them."""
    encoder = _ENCODERS.get(rtype)
    if encoder is not None and not text.lstrip().startswith("\\#"):
        return _encode_generic(rtype, encoder, text, origin)
    try:
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.from_text(rtype),
            _ascii_escaped(text),
            origin=dns.name.from_text(origin),
            relativize=False,
        )
    except (dns.exception.DNSException, ValueError, TypeError, UnicodeError) as error:
        if rtype in ("SVCB", "HTTPS") and "ECHConfigList" in str(error):
            return _svcb_with_opaque_ech(rtype, text, origin)
        raise _rdata_error(rtype, text, error) from error
    result = rdata.to_text().lower() if rtype in _NAME_ONLY_TYPES else _lower_names(rdata)
    if result.endswith(" "):  # dnspython writes empty generic data as "\# 0 "
        result = result.rstrip()
    check = _BIND_CHECKS.get(rtype)
    if check is not None:
        problem = check(result)
        if problem:
            raise RdataError(f"invalid {rtype} data {text!r}: {problem}")
    return result


def _check_nsap(canonical: str) -> str:
    return "the NSAP address is empty" if canonical.lower() == "0x" else ""


def _check_nsec3(canonical: str) -> str:
    fields = canonical.split()
    if len(fields) >= 5 and fields[0] == "1" and len(fields[4]) * 5 // 8 != 20:
        return "a SHA-1 (algorithm 1) next hashed owner name must be 20 octets"
    return ""


# Checks BIND makes that dnspython does not (the BIND corpus expects them).
_BIND_CHECKS: dict[str, Callable[[str], str]] = {"NSAP": _check_nsap, "NSEC3": _check_nsec3}


_SVCB_PARAM = re.compile(r'(?:[^\s"\\]|\\.|"(?:[^"\\]|\\.)*")+')
_ECH = re.compile(r'(?:ech|key5)=("?)([A-Za-z0-9+/=]*)\1\Z')


def _svcb_with_opaque_ech(rtype: str, text: str, origin: str) -> str:
    """SVCB/HTTPS whose ech= value is base64 but not an RFC 9849 ECHConfigList.

    dnspython 2.9 checks the ECHConfigList length prefix; BIND (and the BIND test corpus)
    accept any base64 there, so the value is kept as opaque base64 in its key-order slot."""
    params = _SVCB_PARAM.findall(text)
    ech = [p for p in params if _ECH.match(p)]
    if len(ech) != 1:
        raise RdataError(f"invalid {rtype} data {text!r}: invalid ECHConfigList")
    value = _ECH.match(ech[0]).group(2)
    try:
        raw = base64.b64decode(value.encode(), validate=True)
    except ValueError as error:
        raise RdataError(f"invalid {rtype} data {text!r}: ech is not base64") from error
    rest = [p for p in params if p is not ech[0]]
    canonical = reference_rdata(rtype, " ".join(rest), origin).split(" ")
    tokens = canonical[:2]
    inserted = False
    for param in canonical[2:]:
        key = param.split("=", 1)[0]
        number = _SVCB_KEYS.get(key)
        if number is None and key.startswith("key") and key[3:].isdigit():
            number = int(key[3:])
        if not inserted and number is not None and number > 5:
            tokens.append(f'ech="{base64.b64encode(raw).decode()}"')
            inserted = True
        tokens.append(param)
    if not inserted:
        tokens.append(f'ech="{base64.b64encode(raw).decode()}"')
    return " ".join(tokens)


_SVCB_KEYS = {"mandatory": 0, "alpn": 1, "no-default-alpn": 2, "port": 3, "ipv4hint": 4,
              "ech": 5, "ipv6hint": 6, "dohpath": 7, "ohttp": 8}


# --- Types BIND reads that dnspython has no parser for --------------------------------------

_BIND_ONLY_TYPES = {"EID": 31, "NIMLOC": 32, "ATMA": 34, "SINK": 40, "RKEY": 57, "TALINK": 58,
                    "DOA": 259}


def _wire_name(tok: dns.tokenizer.Tokenizer, origin: dns.name.Name) -> bytes:
    name = tok.get_name(origin)
    return dns.name.from_text(name.to_text().lower()).to_wire()


def _enc_names(count: int) -> Callable[[dns.tokenizer.Tokenizer, dns.name.Name], bytes]:
    def encode(tok: dns.tokenizer.Tokenizer, origin: dns.name.Name) -> bytes:
        return b"".join(_wire_name(tok, origin) for _ in range(count))
    return encode


def _enc_hex(tok: dns.tokenizer.Tokenizer, origin: dns.name.Name) -> bytes:
    return bytes.fromhex(tok.concatenate_remaining_identifiers())


def _enc_a6(tok: dns.tokenizer.Tokenizer, origin: dns.name.Name) -> bytes:
    prefix_len = tok.get_uint8()
    if prefix_len > 128:
        raise ValueError("A6 prefix length above 128")
    suffix = b""
    if prefix_len < 128:
        address = inet_pton(AF_INET6, tok.get_string())
        suffix = address[prefix_len // 8:]
    prefix = _wire_name(tok, origin) if prefix_len > 0 else b""
    return bytes([prefix_len]) + suffix + prefix


def _enc_via(rtype: str) -> Callable[[dns.tokenizer.Tokenizer, dns.name.Name], bytes]:
    """A type with the wire format of ``rtype`` (TA is DS, RKEY is DNSKEY)."""
    def encode(tok: dns.tokenizer.Tokenizer, origin: dns.name.Name) -> bytes:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), tok,
                                    origin=origin, relativize=False)
        return rdata.to_wire()
    return encode


def _enc_atma(tok: dns.tokenizer.Tokenizer, origin: dns.name.Name) -> bytes:
    value = tok.get_string()
    if value.startswith("+"):
        if not value[1:].isdigit() or not value.isascii():
            raise ValueError("an E.164 ATMA address is '+' followed by digits")
        return b"\x01" + value[1:].encode()
    return b"\x00" + bytes.fromhex(value)


def _enc_doa(tok: dns.tokenizer.Tokenizer, origin: dns.name.Name) -> bytes:
    enterprise, kind = tok.get_uint32(), tok.get_uint32()
    location = tok.get_uint8()
    media = tok.get_string().encode()
    if len(media) > 255:
        raise ValueError("DOA media type longer than 255 octets")
    data = tok.concatenate_remaining_identifiers()
    payload = b"" if data == "-" else base64.b64decode(data.encode(), validate=True)
    return (enterprise.to_bytes(4, "big") + kind.to_bytes(4, "big") + bytes([location, len(media)])
            + media + payload)


def _enc_sink(tok: dns.tokenizer.Tokenizer, origin: dns.name.Name) -> bytes:
    head = bytes([tok.get_uint8(), tok.get_uint8(), tok.get_uint8()])
    return head + base64.b64decode(tok.concatenate_remaining_identifiers().encode(), validate=True)


_ENCODERS: dict[str, Callable[[dns.tokenizer.Tokenizer, dns.name.Name], bytes]] = {
    "MD": _enc_names(1),
    "MF": _enc_names(1),
    "MB": _enc_names(1),
    "MG": _enc_names(1),
    "MR": _enc_names(1),
    "MINFO": _enc_names(2),
    "A6": _enc_a6,
    "TA": _enc_via("DS"),
    "TYPE31": _enc_hex,  # EID
    "TYPE32": _enc_hex,  # NIMLOC
    "TYPE34": _enc_atma,
    "TYPE40": _enc_sink,
    "TYPE57": _enc_via("DNSKEY"),  # RKEY
    "TYPE58": _enc_names(2),  # TALINK
    "TYPE259": _enc_doa,
}


def _encode_generic(
    rtype: str,
    encoder: Callable[[dns.tokenizer.Tokenizer, dns.name.Name], bytes],
    text: str,
    origin: str,
) -> str:
    try:
        tok = dns.tokenizer.Tokenizer(_ascii_escaped(text))
        wire = encoder(tok, dns.name.from_text(origin))
        tok.get_eol()
    except (dns.exception.DNSException, ValueError, TypeError, UnicodeError, OSError) as error:
        raise _rdata_error(rtype, text, error) from error
    generic = dns.rdata.GenericRdata(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), wire)
    return generic.to_text().rstrip()


def _rdata_error(rtype: str, text: str, error: Exception) -> RdataError:
    reason = (str(error) or type(error).__name__).rstrip(".")
    if rtype == "AAAA" and _is_ipv4(text.strip()):
        return RdataError(
            f"AAAA data {text.strip()!r} is an IPv4 address; use an A record for it", "ipv4-in-aaaa"
        )
    if rtype in ("TXT", "SPF") and "too long" in reason:
        return RdataError(
            f"{rtype} string longer than 255 octets; split it into several quoted strings "
            '("part one" "part two")',
            "txt-string-too-long",
        )
    cause = error if type(error) in _NAME_ERRORS else error.__cause__
    if type(cause) in _NAME_ERRORS:
        code, advice = _NAME_ERRORS[type(cause)]
        return RdataError(f"invalid {rtype} data {text!r}: {advice}", code)
    hint = _FORMAT_HINTS.get(rtype)
    advice = f"; write {hint}" if hint else ""
    return RdataError(f"invalid {rtype} data {text!r}: {reason}{advice}")


# What the data of a type looks like, for error messages.
_FORMAT_HINTS = {
    "A": "an IPv4 address such as 192.0.2.1",
    "AAAA": "an IPv6 address such as 2001:db8::1",
    "NS": "a host name",
    "CNAME": "one host name",
    "PTR": "a host name",
    "DNAME": "a domain name",
    "MX": "a preference (0-65535) and a mail host name, such as '10 mail'",
    "SRV": "priority, weight, port (0-65535 each) and a target, such as '10 60 5060 sip'",
    "TXT": 'one or more quoted strings of at most 255 octets each, such as "v=spf1 -all"',
    "SPF": 'one or more quoted strings of at most 255 octets each, such as "v=spf1 -all"',
    "CAA": 'flags (0-255), a tag and a quoted value, such as 0 issue "letsencrypt.org"',
    "DS": "key tag, algorithm, digest type and the hex digest of the right length",
    "TLSA": "usage, selector, matching type (numbers) and the hex data",
    "SSHFP": "algorithm, fingerprint type (numbers) and the hex fingerprint",
    "SOA": "primary server, mailbox, serial, refresh, retry, expire and minimum",
    "SVCB": "priority, target and key=value parameters, such as 1 . alpn=h2",
    "HTTPS": "priority, target and key=value parameters, such as 1 . alpn=h2",
    "NAPTR": 'order, preference, "flags" "service" "regexp" and a replacement name',
    "LOC": "latitude, longitude and altitude, such as 52 22 23.000 N 4 53 32.000 E -2.00m",
}


def _is_ipv4(text: str) -> bool:
    try:
        inet_pton(AF_INET, text)
    except (OSError, ValueError):
        return False
    return True


# Types whose whole presentation is names and numbers, so lower-casing the text is exact.
_NAME_ONLY_TYPES = frozenset({"NS", "CNAME", "PTR", "DNAME", "MX", "SRV", "KX", "AFSDB", "RT"})


def _lower_names(rdata: dns.rdata.Rdata) -> str:
    """Lower-case only the domain-name fields of ``rdata`` (TXT text keeps its case)."""
    changes = {}
    for slot in rdata.__slots__:
        value = getattr(rdata, slot)
        if isinstance(value, dns.name.Name):
            changes[slot] = dns.name.from_text(value.to_text().lower())
    if changes:
        rdata = rdata.replace(**changes)
    return rdata.to_text()


def canonical_ipv6(text: str) -> str:
    """IPv6 address text as dnspython prints it (RFC 5952); RdataError when it is not one.  The C
    round trip gives the same text (``_fast_aaaa``, held to dnspython by property tests) at a
    twentieth of the cost; dnspython decides whatever the C parser refuses."""
    try:
        return inet_ntop(AF_INET6, inet_pton(AF_INET6, text))
    except (OSError, ValueError):
        pass
    try:
        return dns.ipv6.inet_ntoa(dns.ipv6.inet_aton(text))
    except (dns.exception.SyntaxError, ValueError) as error:
        raise RdataError(f"invalid IPv6 address {text!r}") from error


# ---------------------------------------------------------------------------------------------
# Fast paths: each takes the rdata tokens and returns the reference's text, or None.


def _fast_a(tokens: Sequence[str], origin: str) -> str | None:
    if len(tokens) != 1:
        return None
    try:
        inet_pton(AF_INET, tokens[0])
    except (OSError, ValueError):
        return None
    return tokens[0]  # inet_pton accepts only the canonical dotted quad (no leading zeros)


def _fast_aaaa(tokens: Sequence[str], origin: str) -> str | None:
    if len(tokens) != 1:
        return None
    try:
        return inet_ntop(AF_INET6, inet_pton(AF_INET6, tokens[0]))
    except (OSError, ValueError):
        if _is_ipv4(tokens[0]):
            raise RdataError(
                f"AAAA data {tokens[0]!r} is an IPv4 address; use an A record for it",
                "ipv4-in-aaaa",
            ) from None
        return None


def _name_or_none(token: str, origin: str) -> str | None:
    if token == "@":
        return origin
    cache = _NAME_CACHES.get(origin)
    if cache is not None:
        hit = cache.get(token)
        if hit is not None:
            return hit
    try:
        result = _fast_name(token, origin)
    except RdataError:
        return None  # too long: let the reference word the error
    if result is not None:
        if cache is None:
            cache = _new_name_cache(origin)
        elif len(cache) >= _NAME_CACHE_LIMIT:
            cache.clear()
        cache[token] = result
    return result


def _fast_name_rdata(tokens: Sequence[str], origin: str) -> str | None:
    if len(tokens) != 1:
        return None
    return _name_or_none(tokens[0], origin)


def _uint(token: str, limit: int) -> int | None:
    if token.isdigit() and token.isascii():
        value = int(token)
        if value <= limit:
            return value
    return None


def _fast_mx(tokens: Sequence[str], origin: str) -> str | None:
    if len(tokens) != 2:
        return None
    preference = _uint(tokens[0], 65535)
    if preference is None:
        return None
    target = _name_or_none(tokens[1], origin)
    if target is None:
        return None
    return f"{preference} {target}"


def _fast_srv(tokens: Sequence[str], origin: str) -> str | None:
    if len(tokens) != 4:
        return None
    priority = _uint(tokens[0], 65535)
    weight = _uint(tokens[1], 65535)
    port = _uint(tokens[2], 65535)
    if priority is None or weight is None or port is None:
        return None
    target = _name_or_none(tokens[3], origin)
    if target is None:
        return None
    return f"{priority} {weight} {port} {target}"


def _plain_string(token: str) -> str | None:
    """Inner text of a quoted or bare character-string that needs no escaping, else None."""
    if token[0] == '"':
        inner = token[1:-1]
        if len(token) < 2 or token[-1] != '"':
            return None
    else:
        inner = token
    if '"' in inner or "\\" in inner or not inner.isascii() or not inner.isprintable():
        return None
    return inner


def _fast_txt(tokens: Sequence[str], origin: str) -> str | None:
    if not tokens:
        return None
    parts = []
    for token in tokens:
        inner = _plain_string(token)
        if inner is None:
            return None
        if len(inner) > 255:
            raise RdataError(
                f"TXT string of {len(inner)} octets is longer than 255; split it into several "
                'quoted strings ("part one" "part two")',
                "txt-string-too-long",
            )
        parts.append(inner)
    return '"' + '" "'.join(parts) + '"'


def _fast_caa(tokens: Sequence[str], origin: str) -> str | None:
    if len(tokens) != 3:
        return None
    flags = _uint(tokens[0], 255)
    tag = tokens[1]
    if flags is None or not (tag.isascii() and tag.isalnum()) or len(tag) > 255:
        return None
    value = _plain_string(tokens[2])
    if value is None:
        return None
    return f'{flags} {tag} "{value}"'


_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+\Z")
_DS_DIGEST_LENGTH = {1: 40, 2: 64, 3: 64, 4: 96}  # in hex digits, as dnspython checks them


def _fast_ds(tokens: Sequence[str], origin: str) -> str | None:
    if len(tokens) < 4:
        return None
    key_tag = _uint(tokens[0], 65535)
    algorithm = _uint(tokens[1], 255)  # mnemonics (RSASHA256) take the reference path
    digest_type = _uint(tokens[2], 255)
    if key_tag is None or algorithm is None or not digest_type:
        return None
    digest = "".join(tokens[3:])
    if len(digest) > 128 or not _HEX.match(digest):
        return None  # dnspython splits longer digests into chunks; let it
    expected = _DS_DIGEST_LENGTH.get(digest_type)
    if expected is not None and len(digest) != expected:
        return None
    return f"{key_tag} {algorithm} {digest_type} {digest.lower()}"


FAST_PATHS: dict[str, Callable[[Sequence[str], str], str | None]] = {
    "DS": _fast_ds,
    "A": _fast_a,
    "AAAA": _fast_aaaa,
    "NS": _fast_name_rdata,
    "CNAME": _fast_name_rdata,
    "PTR": _fast_name_rdata,
    "DNAME": _fast_name_rdata,
    "MX": _fast_mx,
    "SRV": _fast_srv,
    "TXT": _fast_txt,
    "SPF": _fast_txt,
    "CAA": _fast_caa,
}

