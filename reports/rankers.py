"""The rankers' names: the model, the champion, the candidates and the rules, worded once."""
from __future__ import annotations

from models.baselines import BASELINES
from models.candidates import CANDIDATES

# Short English names, for plot legends.
RANKER_NAMES = {"model": "challenger", "champion": "champion"} | {
    name: f"rule: {rule.title_en}" for name, rule in BASELINES.items()}
# Bilingual names, for tables.
RANKER_TITLES = {"model": "挑戦モデル / challenger", "champion": "現行モデル / champion"} | {
    name: f"{rule.title_ja} / {rule.title_en}" for name, rule in BASELINES.items()}


def ranker_title(who: str, trained) -> str:
    """Bilingual name of a ranker in the evaluation tables, with the month's versions."""
    if who == "model":
        ja, en = CANDIDATES.get(trained.challenger or "", ("モデル", "model"))
        return f"挑戦モデル（{ja}）/ challenger ({en})"
    if who == "champion":
        return f"現行モデル v{trained.champion_version} / champion v{trained.champion_version}"
    if who in CANDIDATES:
        ja, en = CANDIDATES[who]
        return f"候補：{ja} / candidate: {en}"
    return f"ルール：{BASELINES[who].title_ja} / rule: {BASELINES[who].title_en}"
