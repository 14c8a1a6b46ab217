"""Precision of a month's list against a synthetic ward's latent truth (demo and benchmarks only).

The truth file holds 宛名番号, so this runs with the key, on the custody side; it prints
only counts. The rule it is compared with is today's: 75+ living alone, oldest first, cut to
the same district capacities after the same exclusions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.catalog.features import month_features
from models.baselines import BASELINES
from models.train import score_model
from pipelines.catalog import registry, runs
from pipelines.config import Config
from pipelines.monthly import excluded_pids, recently_visited
from models.prioritise import capacity, eligible, make_list
from pipelines.pseudonymise import load_key, pseudonymise
from contract.messages import no_run
from contract.months import check_month
from contract.storage import read_parquet


def truth_precision(cfg: Config, month: str, truth_path: Path) -> dict:
    if not runs.list_file(cfg, check_month(month)).exists():   # no list to measure: say what to run
        raise FileNotFoundError(no_run(month, "（リストがない）", " (no list)"))
    key = load_key(cfg.key_file)
    truth = pd.read_csv(truth_path, dtype={"resident_id": str})
    isolated = pd.Series(truth["isolated"].to_numpy(),
                         index=pseudonymise(truth["resident_id"], key, "resident").to_numpy())
    listed = read_parquet(runs.list_file(cfg, month))
    feats = month_features(cfg.work, month)
    ok = eligible(feats, excluded_pids(cfg, month), recently_visited(cfg, month),
                  cfg.get("prioritise", "min_age"))
    caps = capacity(feats, cfg.get("capacity", "share_of_residents"), cfg.get("capacity", "districts"))
    out = {"k": len(listed), "isolated_in_ward": int(isolated.sum()), "residents": len(isolated)}
    # Exploration picks are random by design: they are reported apart, not in the list's precision.
    rankers = {"list": listed.loc[~listed["exploration"], "pid"], "exploration": listed.loc[listed["exploration"], "pid"]}
    for name, rule in BASELINES.items():
        scored = feats[["pid", "district"]].assign(score=rule.score(feats, cfg.settings["baselines"]))[ok.to_numpy()]
        scored = scored[scored["score"] > 0]
        rankers[name] = make_list(scored, caps)["pid"]
    champion = registry.champion(cfg)
    if champion is not None:
        # the champion alone, cut to the whole capacity (no exploration share), whether or not it made the list
        scored = feats[["pid", "district"]].assign(score=score_model(champion[0], feats))[ok.to_numpy()]
        rankers["champion"] = make_list(scored, caps)["pid"]
        out["champion_version"] = champion[1]
    for name, pids in rankers.items():
        hits = isolated.reindex(pids).fillna(0).to_numpy()
        out[name] = {"listed": len(pids), "isolated": int(hits.sum()),
                     "precision": float(hits.mean()) if len(hits) else float("nan")}
    out["base_rate"] = float(np.mean(isolated.to_numpy()))
    return out
