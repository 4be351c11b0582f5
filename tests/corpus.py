"""BIND's own checkzone test zones: the full corpus beside the checkout when there is one, else the
subset copied into ``tests/data/validate/bind9-checkzone`` (MPL-2.0, headers kept).

The full corpus lives in ``../shared/corpora/bind9-checkzone`` next to the checkout (or wherever
``BIND_CHECKZONE_CORPUS`` points).  A fresh clone has no such folder: the tests of single files run
on the copies, and the tests that count the whole corpus skip with ``requires_full_corpus``'s reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("BIND_CHECKZONE_CORPUS")
              or Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "bind9-checkzone")
COPY = Path(__file__).resolve().parent / "data" / "validate" / "bind9-checkzone"
FULL = (SHARED / "EXPECTATIONS.tsv").is_file()
CORPUS = SHARED if FULL else COPY
ZONES = CORPUS / "zones"

requires_full_corpus = pytest.mark.skipif(
    not FULL,
    reason=f"the full BIND checkzone corpus is not at {SHARED} (optional; set BIND_CHECKZONE_CORPUS "
           f"to use a copy elsewhere); the single-file tests use the subset in {COPY.relative_to(COPY.parents[3])}")


def line_of(path: Path, text: str) -> int:
    """The first line of ``path`` that contains ``text``: the copies carry a licence header, so
    their line numbers differ from the full corpus's."""
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")
