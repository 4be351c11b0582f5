"""Lua zone evaluation: record functions, names, templates, errors at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.lua_zone import evaluate_lua_zone, evaluate_lua_zones
from publisher.model import Record
from publisher.rdata import canonical_rdata

LUA_DATA = Path(__file__).parent / "data" / "lua"


def zone_from(tmp_path: Path, source: str, origin: str = "example.com.", templates: dict[str, str] | None = None,
              **options):
    for name, text in (templates or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    path = tmp_path / f"{origin.rstrip('.')}.lua"
    path.write_text(source)
    return evaluate_lua_zone(tmp_path, path, origin, **options)


def records(result) -> list[tuple[str, str, int, str]]:
    assert result.zone is not None, [f.to_text() for f in result.findings]
    return [(r.name, r.type, r.ttl, r.data) for r in result.zone.records]


def codes(result) -> list[str]:
    return [f.code for f in result.findings]


def test_basic_records_are_canonical_with_file_and_line(tmp_path):
    result = zone_from(tmp_path, 'a("", "192.0.2.1")\na("www", "192.0.2.2", 300)\n'
                                 'mx("", "MX1.Mail.Example.NET", 10)\n')
    assert records(result) == [
        ("example.com.", "A", 3600, "192.0.2.1"),
        ("www.example.com.", "A", 300, "192.0.2.2"),
        ("example.com.", "MX", 3600, "10 mx1.mail.example.net."),
    ]
    assert [(r.file, r.line) for r in result.zone.records] == [("example.com.lua", 1), ("example.com.lua", 2),
                                                               ("example.com.lua", 3)]
    assert result.findings == ()


def test_bad_priority_is_reported_at_file_and_line(tmp_path):
    result = zone_from(tmp_path, '\n' * 11 + 'mx("", "mx.example.net", "ten")\n')
    (finding,) = result.findings
    assert (finding.file, finding.line, finding.severity) == ("example.com.lua", 12, "error")
    assert finding.message == 'mx: priority must be a number 0..65535, got "ten"'
