"""BIND's own checkzone test zones, an optional extra beside the repository.

The corpus lives in ``../shared/corpora/bind9-checkzone`` next to the checkout (or wherever
``BIND_CHECKZONE_CORPUS`` points).  A fresh clone has no such folder: the tests that read it skip
with ``requires_corpus``'s reason, and ``tests/data/validate/`` covers every check without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS = Path(os.environ.get("BIND_CHECKZONE_CORPUS")
              or Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "bind9-checkzone")
ZONES = CORPUS / "zones"
PRESENT = (CORPUS / "EXPECTATIONS.tsv").is_file()

requires_corpus = pytest.mark.skipif(
    not PRESENT,
    reason=f"BIND checkzone corpus not found at {CORPUS} (optional; set BIND_CHECKZONE_CORPUS to "
           f"use a copy elsewhere); tests/data/validate covers every check without it")
