"""Ablation against a synthetic ward's latent truth: what each feature group and each label
source adds, measured by the precision of the list a model trained without it would make.

A variant is (label sources, feature groups switched off). Its candidates are fitted exactly as
the train stage fits them (models/train.py: fit on the plan's fit months, calibrated on its
calibration months, the better one on the holdout chosen by the stage's own comparison, then
refitted on every usable month); both refits and the chosen one are scored at the final month
and cut to its capacities. A group switched off has its columns set to 0 in training, holdout
and scoring, so it carries nothing (a constant column teaches neither candidate anything); the
rows' own values still choose the cohort and feed the rules and the fairness groups (`Blind`).

The labelled rows are built once per ward for every source variant (`union_rows`): the
features of each month are read once, the labels of every variant are columns beside them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.catalog import MODEL_FEATURES, group_of
from models.labels import SOURCES
from models.train import (EvaluationSettings, TrainingPlan, comparison, enough_labels, fit_months,
                          fitted_candidates, label_counts, refit_frame, score_model)
from models.truthmeasure import hits, ranked

LABEL_COLUMNS = ("label", "weight", "visit_label")


@dataclass(frozen=True)
class Variant:
    name: str                          # e.g. "full", "without household", "sources: visits"
    sources: tuple[str, ...]           # the `[labels] sources` it trains on
    off: tuple[str, ...] = field(default=())   # feature groups whose columns are set to 0

    @property
    def columns(self) -> list[str]:
        return [n for n in MODEL_FEATURES if group_of(n) in self.off]


def source_key(sources: tuple[str, ...]) -> str:
    """One name per set of label sources, in SOURCES order (the label columns' suffix)."""
    return ",".join(s for s in SOURCES if s in sources)


def variants(configured: list[str] | tuple[str, ...], groups: list[str]) -> list[Variant]:
    """The full model, each feature group off, and each label source toggled from the
    configured `[labels] sources` (a toggle that would leave no source is skipped)."""
    full = tuple(s for s in SOURCES if s in configured)
    out = [Variant("full", full)] + [Variant(f"without {g}", full, (g,)) for g in groups]
    for source in SOURCES:
        toggled = tuple(s for s in SOURCES if (s in full) != (s == source))
        if toggled:
            word = "off" if source in full else "on"
            out.append(Variant(f"{source} {word} (sources: {source_key(toggled)})", toggled))
    return out


def union_rows(features: pd.DataFrame, labelled: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One month's feature rows of everyone labelled under any source variant, with
    `label__<key>`, `weight__<key>`, `visit_label__<key>` per variant (NaN: unlabelled there)."""
    pids = sorted(set().union(*(set(t["pid"]) for t in labelled.values()))) if labelled else []
    rows = features[features["pid"].isin(pids)].reset_index(drop=True)
    for key, table in labelled.items():
        columns = table.set_index("pid")[list(LABEL_COLUMNS)].rename(columns=lambda c: f"{c}__{key}")
        rows = rows.join(columns, on="pid")
    return rows


def variant_rows(union: pd.DataFrame, key: str) -> pd.DataFrame:
    """The training frame of one source variant, derived from the union frame."""
    mine = [f"{c}__{key}" for c in LABEL_COLUMNS]
    others = [c for c in union.columns if "__" in c and c not in mine]
    frame = union[union[mine[0]].notna()].drop(columns=others)
    frame = frame.rename(columns={f"{c}__{key}": c for c in LABEL_COLUMNS}).reset_index(drop=True)
    return frame.astype({"label": "int64", "weight": "float64", "visit_label": "float64"})


def zeroed(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    if not columns:
        return frame
    return frame.assign(**{c: 0.0 for c in columns})


@dataclass(frozen=True)
class FinalMonth:
    """The final month as the truth-check sees it: features, who may be listed, capacities, truth."""
    features: pd.DataFrame
    ok: np.ndarray
    caps: dict[str, int]
    isolated: pd.Series


class Blind:
    """A fitted model that sees 0 in the switched-off columns, whatever the rows hold: the
    holdout's and the final month's other columns (age for the cohort, the rules' inputs, the
    fairness groups) stay as they are, only the model is blind to the group."""

    def __init__(self, model: object, columns: list[str]):
        self.model, self.off = model, [MODEL_FEATURES.index(c) for c in columns]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype="float64", copy=True)
        X[:, self.off] = 0.0
        return self.model.predict_proba(X)


def measure_variant(variant: Variant, plan: TrainingPlan, training: dict, settings: EvaluationSettings,
                    train: pd.DataFrame, holdout_features: pd.DataFrame, holdout_labels: pd.DataFrame,
                    final: FinalMonth, refit_labels: pd.DataFrame | None = None) -> dict:
    """Fit the variant's candidates as the train stage would and measure them against the truth."""
    cols = variant.columns
    train = zeroed(train, cols)   # the fit reads only the model's columns: zeros there carry nothing
    counts = label_counts(train, holdout_features, holdout_labels, settings.min_age)
    out = {"variant": variant.name, "sources": list(variant.sources), "off": list(variant.off),
           "train_labelled": counts["train_labelled"], "train_positive": counts["train_positive"]}
    if not enough_labels(counts, training):   # the stage would serve a rule: there is no model to measure
        return out | {"chosen": None, "precision": None, "candidates": {}}
    fitted = {name: (Blind(model, cols), note) for name, (model, note) in fitted_candidates(plan, training, train).items()}
    chosen = comparison(plan, training, settings, counts, fitted, None, holdout_features, holdout_labels)
    # the refit takes the holdout month's training labels (the stage judges on others: evaluation_policy)
    everything = refit_frame(train, zeroed(holdout_features, cols),
                             holdout_labels if refit_labels is None else refit_labels)
    candidates = {}
    for name in fitted:
        model, _ = fit_months(training, name, everything, plan.final_calibration_months)
        listed = ranked(final.features, final.ok, score_model(Blind(model, cols), final.features), final.caps)
        holdout = chosen.candidates[name]
        candidates[name] = hits(listed, final.isolated) | {
            "holdout_" + chosen.criterion: holdout.get(f"{chosen.criterion}_worst", holdout.get(chosen.criterion))}
    return out | {"chosen": chosen.challenger, "criterion": chosen.criterion,
                  "precision": candidates[chosen.challenger]["precision"], "candidates": candidates}


def ablation(union: pd.DataFrame, holdout_features: pd.DataFrame, holdout_labels: dict[str, pd.DataFrame],
             plan: TrainingPlan, training: dict, settings: EvaluationSettings, final: FinalMonth,
             chosen_variants: list[Variant], refit_labels: dict[str, pd.DataFrame] | None = None) -> list[dict]:
    """Every variant measured; `effect` = its precision − the full model's (None if either is missing).
    `union` holds the training months' rows (union_rows); `holdout_labels` per source key."""
    results = []
    for variant in chosen_variants:
        key = source_key(variant.sources)
        results.append(measure_variant(variant, plan, training, settings, variant_rows(union, key),
                                       holdout_features, holdout_labels[key], final,
                                       None if refit_labels is None else refit_labels[key]))
    full = next((r["precision"] for r in results if r["variant"] == "full"), None)
    for r in results:
        r["effect"] = r["precision"] - full if r["precision"] is not None and full is not None else None
    return results
