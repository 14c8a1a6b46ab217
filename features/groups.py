"""The groups people are counted in (age bands, sex), worded once for every report and sheet.

Ages are top-coded at AGE_TOP (features/catalog.py) so that the oldest residents are not
singled out.
"""
from __future__ import annotations

import pandas as pd

from features.catalog import AGE_TOP

# 60〜64歳 is its own band so that a ward listing from 60 (`[prioritise] min_age = 60`) sees its
# youngest listed people as a group (in the fairness audit, the make-up tables and the age band
# a volunteer's sheet shows), not merged with everyone younger.
AGE_BANDS = [(0, 59, "〜59歳"), (60, 64, "60〜64歳"), (65, 74, "65〜74歳"), (75, 84, "75〜84歳"),
             (85, AGE_TOP - 1, f"85〜{AGE_TOP - 1}歳"), (AGE_TOP, 200, f"{AGE_TOP}歳以上")]

# Sex as the report's tables word it, and as the narrow column of a visiting sheet does.
SEX_JA = {"male": "男性", "female": "女性", "other": "その他・不明"}
SEX_JA_SHORT = {"male": "男", "female": "女", "other": "その他"}


def age_band(age: pd.Series) -> pd.Series:
    """The bands of AGE_BANDS, the last top-coded; an age outside them (missing) is 不明."""
    out = pd.Series("不明", index=age.index, dtype="str")
    for low, high, label in AGE_BANDS:
        out[(age >= low) & (age <= high)] = label
    return out
