"""Disclosure control for aggregate tables: small counts suppressed, and one more where needed.

Counts from 1 to threshold-1 are shown as "<threshold". When a table shows its total and only
one cell is suppressed, that cell could be recovered by subtraction, so the next smallest
non-zero cell is suppressed as well (complementary suppression) and shown as "x": it is not
small, only hidden, and "<10" there would mislead. Zero is shown: it discloses nobody.
"""
from __future__ import annotations

import pandas as pd

COMPLEMENTARY = "x"


def suppress(counts: pd.Series, threshold: int = 10) -> pd.Series:
    """Return display strings for a 1-D table of counts whose total is shown beside it."""
    values = counts.astype(int)
    small = (values > 0) & (values < threshold)
    shown = values.astype(str)
    shown[small] = f"<{threshold}"
    if small.sum() == 1:
        others = values[~small & (values > 0)]
        if len(others):
            shown[others.idxmin()] = COMPLEMENTARY
    return shown


def suppressed_total(counts: pd.Series, threshold: int = 10) -> str:
    total = int(counts.sum())
    return f"<{threshold}" if 0 < total < threshold else str(total)
