"""The train stage of the monthly run: load → models/train.py → registry.

The stage is pure (models/train.py); this module loads what it needs (the labelled people's
feature rows of the training months, the holdout month's features, the outcomes as known
now, the champion from the registry) and saves what it returns (the refitted challenger, run
and version in MLflow, promoted when it serves).
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Callable

import pandas as pd

from models.labels import LabelPolicy, Outcomes
from models.train import (EvaluationSettings, TrainResult, comparison, enough_labels, few_labels_result,
                          fit_months, fitted_candidates, label_counts, labels_for, no_window_result, refit_frame,
                          split_rows, training_frame, training_plan, with_registered)
from contract.storage import DataDamaged
from pipelines.catalog import registry, runs
from pipelines.config import Config
from reports.modelcard import model_card_documents, registration_record, version_description
from reports.plots import splits

MonthFeatures = Callable[..., pd.DataFrame]   # (month, pids=None) -> the month's feature rows (of those pids)


def trained_month(cfg: Config, month: str, first_month: str, outcomes: Outcomes, month_features: MonthFeatures,
                  lake_fingerprint: str, key_id: str) -> TrainResult:
    """Fit the candidates, compare challenger, champion and baselines on the holdout, promote or not."""
    training, label_settings = cfg.settings["training"], cfg.settings["labels"]
    timespan = label_settings["timespan_days"]
    plan = training_plan(month, first_month, timespan, training)
    if plan is None:
        return no_window_result(month, first_month, timespan)
    settings = EvaluationSettings.of(cfg.settings)
    train = training_frame([labelled_rows(label_settings, outcomes, month_features, as_of, settings.min_age)
                            for as_of in plan.train_months])
    holdout_features = month_features(plan.holdout_month)
    cohort = _cohort(holdout_features, settings.min_age)
    holdout_labels = labels_for(evaluation_policy(label_settings), outcomes, plan.holdout_month, cohort)
    counts = label_counts(train, holdout_features, holdout_labels, settings.min_age)
    if not enough_labels(counts, training):
        return few_labels_result(plan, counts, training, settings, holdout_features, holdout_labels)
    fitted = fitted_candidates(plan, training, train)
    champion = registry.incumbent(cfg, month)
    result = comparison(plan, training, settings, counts, fitted, champion, holdout_features, holdout_labels)
    result = replace(result, split_plot=splits(split_rows(plan, timespan), month))
    tags = registry.provenance(cfg, month, lake_fingerprint, key_id)
    reused = registry.reusable(cfg, tags)
    if reused is not None:
        final, version = reused
        if version.tags.get("promoted") == "true":   # a run killed before it moved the alias
            registry.promote(cfg, month, str(version.version))
        registered_card(cfg, month, result, str(version.version), version.run_id, tags)
        return with_registered(result, final, str(version.version), version.run_id, champion)
    # The challenger as it would serve: refitted on every usable month, holdout included.
    everything = refit_frame(train, holdout_features, labels_for(label_settings, outcomes, plan.holdout_month, cohort))
    final, calibration = fit_months(training, result.challenger, everything, plan.final_calibration_months)
    result = replace(result, calibration=calibration)
    run_id, version = registry.log_training(cfg, final, result, everything, tags)
    registered_card(cfg, month, result, version, run_id, tags)
    return with_registered(result, final, version, run_id, champion)


def evaluation_policy(label_settings: dict) -> dict:
    """The labels the holdout is judged on: every labelled person (no sampled negatives) and, when
    the policy labels the whole cohort, adverse events alone. Visits go where today's rule sends
    them, so judging on them would reward whoever ranks like the rule; adverse events befall
    people whether or not anyone was sent."""
    policy = label_settings | {"max_negatives_per_month": 2**62}
    return policy | {"sources": ["adverse_events"]} if LabelPolicy.of(label_settings).population else policy


def _cohort(features: pd.DataFrame, min_age: int) -> pd.Series:
    return features.loc[features["age"] >= min_age, "pid"]


def labelled_rows(label_settings: dict, outcomes: Outcomes, month_features: MonthFeatures, as_of: str,
                  min_age: int) -> pd.DataFrame:
    """The feature rows of the people labelled after `as_of`, with their label and weight."""
    if LabelPolicy.of(label_settings).population:   # the whole cohort may be labelled: read every row once
        features = month_features(as_of)
        labelled = labels_for(label_settings, outcomes, as_of, _cohort(features, min_age))
        return features.merge(labelled, on="pid", how="inner")
    labelled = labels_for(label_settings, outcomes, as_of)
    # only the labelled people's rows: a few thousand of a million
    return month_features(as_of, labelled["pid"]).merge(labelled, on="pid", how="inner")


def registered_card(cfg: Config, month: str, result: TrainResult, version: str, run_id: str,
                    tags: dict[str, str]) -> None:
    """Write the version's card once, from its own training record, and attach it to MLflow.

    The version's tag `model_card_sha256` marks its card as registered: from then on the card is
    never rewritten, and a rerun reusing the version keeps it and checks it against the tag. A
    version without the tag (a run killed before tagging, or a card written before cards were
    immutable) gets its card written from its record and tagged now."""
    recorded = registry.card_hash(cfg, version)
    existing = runs.model_card_sha256(cfg, version)
    if recorded is not None and existing == recorded:
        return
    if recorded is not None and existing is not None:
        raise DataDamaged(f"{runs.card_paths(cfg, version)[1]} is not the card registered for version {version} "
                          f"(SHA-256 {existing[:12]}…, MLflow tag {registry.CARD_TAG} {recorded[:12]}…); "
                          "restore it from the run's model_card/ artifact")
    record = registration_record(result, month, version, run_id, tags)
    _, markdown, html = model_card_documents(cfg.settings, record)
    digest = hashlib.sha256(html.encode("utf-8")).hexdigest()
    if recorded is not None and digest != recorded:
        raise DataDamaged(f"the card of version {version} is missing and cannot be written again with the bytes "
                          f"MLflow recorded ({registry.CARD_TAG} {recorded[:12]}…); restore it from the run's "
                          "model_card/ artifact")
    paths = runs.write_model_card(cfg, version, markdown, html)
    if recorded is None:
        registry.attach_model_card(cfg, version, run_id, paths, digest, version_description(record, digest))
