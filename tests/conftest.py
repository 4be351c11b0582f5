"""Shared test setup.  Real-server fixtures live in their own modules, listed below, so each area
keeps its fixtures beside its tests."""

from pathlib import Path

import pytest

pytest_plugins = ["tests.servers"]  # named_server, knot_server, pdns_server

TESTS = Path(__file__).parent
DATA = TESTS / "data"
CORPUS = TESTS.parent.parent / "shared" / "corpora" / "bind9-checkzone"


@pytest.fixture
def data_dir() -> Path:
    return DATA
