"""The rules wards use today, as rankers scored and reported like any model.

Each rule takes the features table and the `[baselines]` settings and returns a score in
[0, 1] per row, higher = visit first; 0 means outside the rule. Ties (same age, same points)
are real: metrics report them worst and best (models/metrics.py), lists break them by pid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from features.catalog import label

Rule = Callable[[pd.DataFrame, dict], np.ndarray]


def _oldest_first(in_rule: pd.Series, features: pd.DataFrame) -> np.ndarray:
    return np.where(in_rule, features["age"].clip(upper=120) / 120.0, 0.0)


def alone_75_oldest_first(features: pd.DataFrame, settings: dict | None = None) -> np.ndarray:
    """(a) 75+ living alone, oldest first: today's rule in most wards."""
    return _oldest_first((features["age"] >= 75) & (features["living_alone"] >= 0.5), features)


def health_status_unknown(features: pd.DataFrame, settings: dict | None = None) -> np.ndarray:
    """(b) 健康状態不明者-style: no checkup on record for 2 years and no care certification, oldest first."""
    in_rule = (features["months_since_checkup"] >= 24) & (features["care_level"] == 0) & (features["age"] >= 65)
    return _oldest_first(in_rule, features)


def points(features: pd.DataFrame, conditions: list[dict]) -> np.ndarray:
    """Total points per person: each condition `feature >= at_least` met adds its `points`."""
    total = np.zeros(len(features))
    for c in conditions:
        total += np.where(features[c["feature"]].to_numpy(dtype="float64") >= c["at_least"], c["points"], 0.0)
    return total


def points_score(features: pd.DataFrame, settings: dict) -> np.ndarray:
    """(c) A transparent points score from config (`[[baselines.points]]`), oldest first among equals.

    Below `points_min` a person is outside the rule. The age term is smaller than one point,
    so it only orders people with the same total.
    """
    conditions = settings["points"]
    total = points(features, conditions)
    top = sum(c["points"] for c in conditions) + 1.0
    score = (total + features["age"].clip(lower=0, upper=120).to_numpy(dtype="float64") / 121.0) / top
    return np.where(total >= settings["points_min"], score, 0.0)


@dataclass(frozen=True)
class Baseline:
    title_ja: str
    title_en: str
    score: Rule     # (features, the [baselines] settings) -> score per row in [0, 1]


BASELINES: dict[str, Baseline] = {
    "alone_75": Baseline("75歳以上のひとり暮らし（高齢順）", "75+ living alone, oldest first", alone_75_oldest_first),
    "health_unknown": Baseline("健康状態不明者（2年健診なし・認定なし）", "no checkup in 2 years and no care certification",
                               health_status_unknown),
    "points": Baseline("点数表（設定の条件の合計点）", "points score from config", points_score),
}


def baseline_scores(features: pd.DataFrame, settings: dict) -> dict[str, np.ndarray]:
    """Every baseline's scores for a features table; `settings` is the config's `[baselines]`."""
    return {name: rule.score(features, settings) for name, rule in BASELINES.items()}


def describe_points(settings: dict) -> list[str]:
    """The points table in words, for the report and the model card."""
    return [f"{label(c['feature'])[0]} ≥ {c['at_least']:g}: {c['points']:g}点 / "
            f"{label(c['feature'])[1]} ≥ {c['at_least']:g}: {c['points']:g} pt" for c in settings["points"]]
