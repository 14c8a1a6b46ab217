"""The groups people are counted in (age bands, sex), worded once for every report and sheet.

Ages are top-coded at AGE_TOP (features/catalog.py) so that the oldest residents are not
singled out.
"""
from __future__ import annotations

import pandas as pd

from features.catalog import AGE_TOP

AGE_BANDS = [(0, 64, "〜64歳"), (65, 74, "65〜74歳"), (75, 84, "75〜84歳"), (85, AGE_TOP - 1, f"85〜{AGE_TOP - 1}歳"),
             (AGE_TOP, 200, f"{AGE_TOP}歳以上")]

# Sex as the report's tables word it, and as the narrow column of a visiting sheet does.
SEX_JA = {"male": "男性", "female": "女性", "other": "その他・不明"}
SEX_JA_SHORT = {"male": "男", "female": "女", "other": "その他"}


def age_band(age: pd.Series) -> pd.Series:
    """Five bands, the last top-coded."""
    out = pd.Series("不明", index=age.index, dtype="str")
    for low, high, label in AGE_BANDS:
        out[(age >= low) & (age <= high)] = label
    return out
