"""The rules wards use today, as rankers scored and reported like any model.

Each returns a score in [0, 1] per row, higher = visit first; 0 means outside the rule.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def alone_75_oldest_first(features: pd.DataFrame) -> np.ndarray:
    """(a) 75+ living alone, oldest first: today's rule in most wards."""
    in_rule = (features["age"] >= 75) & (features["living_alone"] >= 0.5)
    return np.where(in_rule, features["age"].clip(upper=120) / 120.0, 0.0)


def health_status_unknown(features: pd.DataFrame) -> np.ndarray:
    """(b) 健康状態不明者-style: no checkup on record for 2 years and no care certification, oldest first."""
    in_rule = (features["months_since_checkup"] >= 24) & (features["care_level"] == 0) & (features["age"] >= 65)
    return np.where(in_rule, features["age"].clip(upper=120) / 120.0, 0.0)


BASELINES = {
    "alone_75": ("75歳以上のひとり暮らし（高齢順）", "75+ living alone, oldest first", alone_75_oldest_first),
    "health_unknown": ("健康状態不明者（2年健診なし・認定なし）", "no checkup in 2 years and no care certification",
                       health_status_unknown),
}
