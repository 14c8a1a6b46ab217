"""Candidates, baselines, metrics under ties and the promotion rule, on small hand-made frames."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import MODEL_FEATURES
from models import metrics
from models.baselines import baseline_scores, points_score
from models.candidates import base_pipeline, fit_candidate, log_odds
from models.explain import shap_values
from models.fairness import audit
from models.train import decide
from pipelines.config import load_config
from tests.test_fairness import under_selected_holdout

TRAINING = load_config(environ={}).settings["training"] | {"max_iter": 30}


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.integers(0, 5, n).astype("float64") for name in MODEL_FEATURES})
    frame["age"] = rng.integers(65, 100, n).astype("float64")
    frame["months_at_address"] = rng.normal(120, 30, n)
    frame.loc[rng.random(n) < 0.2, "months_at_address"] = np.nan
    frame["months_at_address_imp"] = frame["months_at_address"].isna().astype("float64")
    logit = 0.8 * frame["garbage_no_response_90d"] + 0.04 * (frame["age"] - 80) - 3
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, y


def test_the_imputer_is_fitted_on_the_training_split_and_frozen_with_the_model():
    frame, y = _frame(600, 1)
    X = frame[MODEL_FEATURES].to_numpy()
    model, _ = fit_candidate("logit", TRAINING, X, y, X[:0], y[:0])
    column = MODEL_FEATURES.index("months_at_address")
    imputer = base_pipeline(model)[0].named_transformers_["months_at_address"]
    assert imputer.statistics_[0] == pytest.approx(np.nanmedian(X[:, column]))
    # scoring data with a very different distribution is filled with the training median, not its own
    other = X[:5].copy()
    other[:, column] = [np.nan, 1000, 1000, 1000, 1000]
    filled = base_pipeline(model)[0].transform(other)[0, column]
    assert filled == pytest.approx(np.nanmedian(X[:, column]))


@pytest.mark.parametrize("name", ["hgb", "logit"])
def test_calibration_wraps_the_frozen_pipeline_and_keeps_its_ranking(name):
    frame, y = _frame(1200, 2)
    X = frame[MODEL_FEATURES].to_numpy()
    fit, cal = slice(0, 800), slice(800, None)
    uncalibrated, _ = fit_candidate(name, TRAINING, X[fit], y[fit], X[:0], y[:0])
    calibrated, note = fit_candidate(name, TRAINING, X[fit], y[fit], X[cal], y[cal])
    assert note.startswith("sigmoid")
    # the pipeline inside is the one fitted on the fit rows only: calibration did not refit it
    np.testing.assert_allclose(log_odds(calibrated, X), log_odds(uncalibrated, X))
    p = calibrated.predict_proba(X)[:, 1]
    order = np.argsort(log_odds(calibrated, X))
    assert np.all(np.diff(p[order]) >= -1e-12)        # monotone in the log-odds: same list, same reasons
    # the calibrated probabilities match the calibration months' positive rate better than raw ones
    raw = uncalibrated.predict_proba(X[cal])[:, 1]
    assert abs(p[800:].mean() - y[cal].mean()) <= abs(raw.mean() - y[cal].mean()) + 1e-9


def test_too_small_a_calibration_set_is_not_used_and_says_so():
    frame, y = _frame(400, 3)
    X = frame[MODEL_FEATURES].to_numpy()
    model, note = fit_candidate("hgb", TRAINING, X[:380], y[:380], X[380:], y[380:])
    assert note.startswith("not calibrated") and base_pipeline(model) is model


@pytest.mark.parametrize("name", ["hgb", "logit"])
def test_shap_contributions_add_up_to_each_candidates_log_odds(name):
    frame, y = _frame(900, 4)
    X = frame[MODEL_FEATURES].to_numpy()
    model, _ = fit_candidate(name, TRAINING, X[:600], y[:600], X[600:], y[600:])
    values, base, _ = shap_values(model, frame.iloc[:50], frame)
    np.testing.assert_allclose(values.sum(axis=1) + base, log_odds(model, X[:50]), atol=1e-6)
    # the strongest signal in the data is the strongest reason on average
    strongest = MODEL_FEATURES[int(np.argmax(np.abs(values).mean(axis=0)))]
    assert strongest in {"garbage_no_response_90d", "age"}


def test_ties_are_evaluated_worst_and_best():
    scores = np.array([.9, .5, .5, .5, .5, .1])
    pids = np.array(["a", "b", "c", "d", "e", "f"])
    labels = np.array([1, 0, np.nan, 1, 1, 0])
    m = metrics.at_k(scores, pids, labels, 3)
    # pid order takes a, b, c: 1 positive of 2 labelled
    assert (m["positives_in_top_k"], m["labelled_in_top_k"]) == (1, 2)
    # worst: the tied negative first, then the unlabelled; best: two tied positives first
    assert (m["positives_in_top_k_worst"], m["labelled_in_top_k_worst"]) == (1, 2)
    assert (m["positives_in_top_k_best"], m["labelled_in_top_k_best"]) == (3, 3)
    assert m["precision_at_k_worst"] == .5 and m["precision_at_k_best"] == 1.0
    assert m["recall_at_k_worst"] == pytest.approx(1 / 3) and m["recall_at_k_best"] == 1.0


def test_people_outside_a_rule_are_not_a_tie_block_to_pick_positives_from():
    scores = np.array([.8, 0, 0, 0, 0])
    labels = np.array([0, 1, 1, 0, np.nan])
    m = metrics.at_k(scores, np.array(list("abcde")), labels, 3)
    # the rule holds one person; the rest of k is filled in pid order whatever the tie policy
    assert m["positives_in_top_k_best"] == m["positives_in_top_k_worst"] == m["positives_in_top_k"] == 2


def test_metrics_per_district_use_each_districts_capacity():
    frame = pd.DataFrame({"pid": list("abcdef"), "district": ["東", "東", "東", "西", "西", "西"],
                          "label": [1, 0, 1, 0, 1, np.nan]})
    out = metrics.by_district(np.array([.9, .8, .1, .7, .6, .5]), frame, {"東": 1, "西": 2})
    assert out["東"]["k"] == 1 and out["東"]["precision_at_k"] == 1.0 and out["東"]["recall_at_k"] == .5
    assert out["西"]["labelled_in_top_k"] == 2 and out["西"]["precision_at_k"] == .5


def test_the_points_baseline_follows_the_configured_table():
    features = pd.DataFrame({"age": [76.0, 90.0, 70.0, 80.0], "living_alone": [1.0, 0.0, 1.0, 1.0],
                             "garbage_no_response_90d": [0.0, 0.0, 3.0, 3.0]})
    table = {"points_min": 2, "points": [{"feature": "living_alone", "at_least": 1, "points": 1},
                                          {"feature": "garbage_no_response_90d", "at_least": 2, "points": 2},
                                          {"feature": "age", "at_least": 75, "points": 1}]}
    score = points_score(features, table)
    assert score[1] == 0                               # 1 point only: outside the rule
    assert score[3] > score[2] > score[0] > 0          # 4 pts > 3 pts > 2 pts
    heavier = table | {"points": [dict(c, points=5) if c["feature"] == "age" else c for c in table["points"]]}
    assert points_score(features, heavier)[1] > points_score(features, heavier)[2]
    assert set(baseline_scores(features.assign(months_since_checkup=0.0, care_level=0.0), table)) == {
        "alone_75", "health_unknown", "points"}


def _figures(ap: float, flagged: list[str] = ()) -> tuple[dict, list[dict]]:
    figures = {"average_precision": ap, "labelled_in_top_k_worst": 2, "labelled_in_top_k_best": 2,
               "precision_at_k_worst": None, "precision_at_k_best": None}
    rows = [{"attribute": g.split("=")[0], "group": g.split("=")[1], "flag": True} for g in flagged]
    return figures, rows


def _decide(model, champion=None, baselines=(.2, .1, .15)):
    evaluation, fairness = {}, {}
    for name, figures in zip(["alone_75", "health_unknown", "points"], baselines):
        evaluation[name], fairness[name] = _figures(figures)
    evaluation["model"], fairness["model"] = model
    if champion is not None:
        evaluation["champion"], fairness["champion"] = champion
    return decide(evaluation, fairness, champion is not None, min_labelled=10)


def test_a_challenger_must_beat_champion_and_best_baseline_without_new_fairness_flags():
    d = _decide(_figures(.3), _figures(.25))
    assert d["serving"] == "challenger" and d["criterion"] == "average_precision"
    d = _decide(_figures(.3), _figures(.35))
    assert d["serving"] == "champion" and "worse than the champion" in d["reason"]
    # a tie with the champion lets the fresher model serve
    assert _decide(_figures(.3), _figures(.3))["serving"] == "challenger"
    d = _decide(_figures(.3, ["sex=female"]), _figures(.25))
    assert d["serving"] == "champion" and "sex=female" in d["reason"]
    # a flag the champion already has is not new
    assert _decide(_figures(.3, ["sex=female"]), _figures(.25, ["sex=female"]))["serving"] == "challenger"
    d = _decide(_figures(.18))
    assert d["serving"] == "alone_75" and "best baseline alone_75" in d["reason"]


def test_a_challenger_whose_top_k_finds_nobody_aged_90_plus_is_not_promoted_and_the_flag_is_named():
    frame, baseline, challenger = under_selected_holdout()
    evaluation, fairness = {}, {}
    for name, ap in zip(["alone_75", "health_unknown", "points"], (.2, .1, .15)):
        evaluation[name], _ = _figures(ap)
        fairness[name] = audit(frame, baseline)
    evaluation["model"], fairness["model"] = _figures(.3)[0], audit(frame, challenger)
    d = decide(evaluation, fairness, False, min_labelled=10)
    assert d["serving"] == "alone_75" and d["new_flags"] == ["age_band=90歳以上"]
    assert "fairness flags" in d["reason"] and "age_band=90歳以上 (recall too low against the whole cohort)" in d["reason"]
    # the same challenger without the gap is promoted: the gate, not the figures, refused it
    fairness["model"] = audit(frame, baseline)
    assert decide(evaluation, fairness, False, min_labelled=10)["serving"] == "challenger"
