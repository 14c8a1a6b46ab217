"""Precision of a month's list against a synthetic ward's latent truth (demo and benchmarks only).

The truth file holds 宛名番号, so this runs with the key, on the custody side; it prints
only counts. The rule it is compared with is today's: 75+ living alone, oldest first, cut to
the same district capacities after the same exclusions. The arithmetic is models/truthmeasure.py;
this module loads its tables. Many wards at once: pipelines/truthwards.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.catalog.features import month_features
from models.baselines import BASELINES
from models.train import score_model
from models.truthmeasure import ceiling, hits, ranked
from pipelines.catalog import registry, runs
from pipelines.config import Config
from pipelines.monthly import excluded_pids, recently_visited
from models.prioritise import capacity, eligible
from pipelines.pseudonymise import load_key, pseudonymise
from contract.messages import no_run
from contract.months import check_month
from contract.storage import read_parquet


@dataclass(frozen=True)
class MonthTruth:
    """A month's tables as the truth-check measures them (pseudonyms only; no 宛名番号)."""
    month: str
    features: pd.DataFrame
    ok: np.ndarray                 # may be listed under the configured min_age
    caps: dict[str, int]
    isolated: pd.Series            # 0/1 by pseudonym
    listed: pd.DataFrame           # the released list (ranked picks and exploration picks)
    champion: tuple[object, str] | None


def read_truth(cfg: Config, truth_path: Path) -> pd.Series:
    """The latent isolation state by pseudonym: the 宛名番号 are pseudonymised as they are read."""
    truth = pd.read_csv(truth_path, dtype={"resident_id": str})
    return pd.Series(truth["isolated"].to_numpy(),
                     index=pseudonymise(truth["resident_id"], load_key(cfg.key_file), "resident").to_numpy())


def eligible_at(cfg: Config, month: str, features: pd.DataFrame, min_age: int) -> np.ndarray:
    return eligible(features, excluded_pids(cfg, month), recently_visited(cfg, month), min_age).to_numpy()


def month_truth(cfg: Config, month: str, truth_path: Path) -> MonthTruth:
    if not runs.list_file(cfg, check_month(month)).exists():   # no list to measure: say what to run
        raise FileNotFoundError(no_run(month, "（リストがない）", " (no list)"))
    feats = month_features(cfg.work, month)
    return MonthTruth(month, feats, eligible_at(cfg, month, feats, cfg.get("prioritise", "min_age")),
                      capacity(feats, cfg.get("capacity", "share_of_residents"), cfg.get("capacity", "districts")),
                      read_truth(cfg, truth_path), read_parquet(runs.list_file(cfg, month)), registry.champion(cfg))


def rankers(t: MonthTruth, baseline_settings: dict) -> dict[str, pd.Series]:
    """name -> pids listed: the list's ranked and random picks, each rule, the champion alone
    (cut to the whole capacity, no exploration share, whether or not it made the list), the ceiling."""
    listed = t.listed
    # Exploration picks are random by design: they are reported apart, not in the list's precision.
    out = {"list": listed.loc[~listed["exploration"], "pid"], "exploration": listed.loc[listed["exploration"], "pid"]}
    for name, rule in BASELINES.items():
        out[name] = ranked(t.features, t.ok, rule.score(t.features, baseline_settings), t.caps, in_rule_only=True)
    if t.champion is not None:
        out["champion"] = ranked(t.features, t.ok, score_model(t.champion[0], t.features), t.caps)
    return out


def precision_figures(t: MonthTruth, baseline_settings: dict) -> dict:
    """Counts and precision of every ranker, the ceiling, the ward's base rate."""
    out = {"k": len(t.listed), "isolated_in_ward": int(t.isolated.sum()), "residents": len(t.isolated),
           "base_rate": float(np.mean(t.isolated.to_numpy()))}
    if t.champion is not None:
        out["champion_version"] = t.champion[1]
    out |= {name: hits(pids, t.isolated) for name, pids in rankers(t, baseline_settings).items()}
    out["ceiling"] = ceiling(t.features, t.ok, t.caps, t.isolated)
    return out


def truth_precision(cfg: Config, month: str, truth_path: Path) -> dict:
    return precision_figures(month_truth(cfg, month, truth_path), cfg.settings["baselines"])


LABELS = [("list", "mimamori list (ranked picks)"), ("exploration", "mimamori list (random picks)"),
          ("champion", "champion model v{v} alone"), ("alone_75", "rule: 75+ living alone"),
          ("health_unknown", "rule: no checkup 2y, no care cert"), ("points", "rule: points score (config)"),
          ("ceiling", "ceiling: perfect ranking of the truth")]


def lines(month: str, r: dict) -> list[str]:
    """The one-ward command's printout (counts only)."""
    out = [f"{month}: precision against the synthetic ward's latent isolation state "
           f"(base rate {r['base_rate']:.2%} of {r['residents']:,d} residents)"]
    for name, label in LABELS:
        if name in r:
            x = r[name]
            figure = "n/a" if x["precision"] is None else f"{x['precision']:.1%}"
            out.append(f"  {label.format(v=r.get('champion_version')):36s} {x['isolated']:>5d} / {x['listed']:<5d} = {figure}")
    rule = r["alone_75"]["precision"]
    for name in ("list", "champion"):
        if name in r and rule and r[name]["precision"] is not None:
            out.append(f"  {name} vs the 75+ living-alone rule: {r[name]['precision'] / rule:.2f}×")
    out.append("  (the rules, the champion and the ceiling are cut to the same district capacities after the same exclusions)")
    return out
