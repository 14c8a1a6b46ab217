"""Reasons are honest: SHAP against the month's eligible cohort for listed people, material
contributions only, worded only by the catalogue; random picks carry no reasons."""
from __future__ import annotations

import hashlib
import hmac
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.catalog import CATALOG, EXPLORATION, FLAGGED, MODEL_FEATURES, NO_SINGLE_REASON, describe
from models.candidates import base_pipeline, fit_candidate, log_odds
from models.estimator import make_model
from models.explain import (BACKGROUND, MIN_REASON, MIN_SHARE, additivity_error, background, contributions,
                            contributions_of, explained_list, explanation_table, grouped, reason_indices, reasons)
from pipelines.catalog.runs import EXPLANATIONS
from pipelines.explain import explain_person
from contract.storage import read_parquet


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"pid": [f"p{i:05d}" for i in range(n)]})
    frame["age"] = rng.integers(65, 100, n).astype(float)
    frame["living_alone"] = rng.integers(0, 2, n).astype(float)
    frame["months_at_address"] = np.where(rng.random(n) < .1, np.nan, rng.integers(0, 400, n)).astype(float)
    for name in ["months_since_checkup", "months_since_contact"]:
        frame[name] = rng.integers(0, 30, n).astype(float)
    for name in ["care_arrears_months", "nhi_arrears_months", "garbage_no_response_90d", "missed_visits_12m",
                 "emergencies_12m"]:
        frame[name] = rng.poisson(.4, n).astype(float)
    frame["care_level"] = rng.integers(0, 8, n).astype(float)
    for name in FLAGGED:
        frame[f"{name}_imp"] = (rng.random(n) < .3).astype(float)
    frame["months_at_address_imp"] = frame["months_at_address"].isna().astype(float)
    for name, feature in CATALOG.items():   # the features of change: mostly 0/1 flags
        if feature.group != "snapshot":
            frame[name] = (rng.random(n) < .15).astype(float)
    return frame


def _fitted(frame: pd.DataFrame):
    rng = np.random.default_rng(1)
    logit = (frame["age"] - 80) / 8 + frame["care_arrears_months"] + frame["months_since_contact_imp"] - 1
    y = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    return make_model(3, max_iter=40).fit(frame[MODEL_FEATURES].to_numpy(dtype="float64"), y)


def _check_phrases(features: pd.DataFrame, why: pd.DataFrame) -> None:
    """Every reason phrase is the catalogue's phrase for that feature at the person's value; a
    random pick carries exactly the exploration text and no reasons."""
    rows = features.set_index("pid")
    for _, r in why.iterrows():
        person = rows.loc[r["pid"]]
        if bool(r.get("exploration", False)):
            assert (r["reasons"], r["reasons_en"]) == EXPLORATION and len(r["reason_features"]) == 0
            assert len(r["reason_contributions"]) == 0
            continue
        expected = [describe(f, person[f], bool(person.get(f"{f}_imp", 0) >= .5)) for f in r["reason_features"]]
        if not expected:
            expected = [NO_SINGLE_REASON]
        assert r["reasons"] == "、".join(p[0] for p in expected)
        assert r["reasons_en"] == "; ".join(p[1] for p in expected)
        assert all(f in CATALOG for f in r["reason_features"])


def test_contributions_plus_base_equal_the_log_odds_and_reasons_come_from_the_catalogue():
    frame = _frame(600)
    model = _fitted(frame)
    listed = frame.iloc[:50]
    table = explanation_table(listed, contributions_of(model, listed, frame), "7")
    assert additivity_error(table) < 1e-6
    np.testing.assert_allclose(table["log_odds"], log_odds(model, listed[MODEL_FEATURES].to_numpy()), atol=1e-12)
    assert set(table["model_version"]) == {"7"}
    why = reasons(listed, contributions(table))
    _check_phrases(listed, why)
    names, grouped_phi = grouped(contributions(table))
    for i, r in why.reset_index(drop=True).iterrows():
        assert r["reason_contributions"] == [grouped_phi[i, names.index(f)] for f in r["reason_features"]]
        raising = grouped_phi[i][grouped_phi[i] > 0].sum()
        assert all(c >= MIN_REASON and c >= MIN_SHARE * raising for c in r["reason_contributions"])
        assert r["reason_contributions"] == sorted(r["reason_contributions"], reverse=True)
        assert len(r["reason_features"]) <= 3


def _logit(frame: pd.DataFrame):
    """An uncalibrated logistic-regression candidate, as training fits it."""
    import tomllib

    from pipelines.config import DEFAULTS

    rng = np.random.default_rng(5)
    logit = (frame["age"] - 80) / 6 + frame["care_arrears_months"] + frame["living_alone"] - 1
    y = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    training = tomllib.loads(DEFAULTS.read_text(encoding="utf-8"))["training"]
    model, _ = fit_candidate("logit", training, frame[MODEL_FEATURES].to_numpy(dtype="float64"), y,
                             np.zeros((0, len(MODEL_FEATURES))), np.zeros(0))
    return model


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_contributions_are_taken_against_the_eligible_cohort_mean(seed):
    frame = _frame(700, seed)
    model = _logit(frame)
    # the eligible cohort: a part of the people the model was fitted on, younger on average
    cohort = frame[frame["age"] < 85]
    listed = cohort.iloc[:30]
    explained = contributions_of(model, listed, cohort)
    pipe = base_pipeline(model)
    weights, intercept = pipe[-1].coef_.ravel(), float(pipe[-1].intercept_[0])
    Z = pipe[:-1].transform(listed[MODEL_FEATURES].to_numpy(dtype="float64"))
    mean = pipe[:-1].transform(cohort[MODEL_FEATURES].to_numpy(dtype="float64")).mean(axis=0)
    np.testing.assert_allclose(explained.values, weights * (Z - mean), atol=1e-12)
    # the base value is the cohort's expected log-odds (for a linear model: at the cohort mean)
    assert explained.base == pytest.approx(intercept + weights @ mean, abs=1e-12)
    assert explained.base == pytest.approx(log_odds(model, cohort[MODEL_FEATURES].to_numpy()).mean(), abs=1e-9)
    assert (explained.method, explained.reference_people, explained.reference_rows) == ("logit", len(cohort),
                                                                                        len(cohort))
    table = explanation_table(listed, explained, "3")
    assert additivity_error(table) < 1e-9
    # and not against the training split's mean (0 after scaling), as before
    assert not np.allclose(explained.values, weights * Z, atol=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_age_is_not_a_reason_for_someone_at_the_cohorts_mean_age(seed):
    frame = _frame(700, seed)
    model = _logit(frame)
    cohort = frame[frame["age"] < 85]
    person = cohort.iloc[:5].copy()
    person["age"] = cohort["age"].mean()
    values = contributions_of(model, person, cohort).values
    assert np.abs(values[:, MODEL_FEATURES.index("age")]).max() < 1e-12
    assert not any("age" in fs for fs in reasons(person, values)["reason_features"])
    # below the cohort's mean age, age lowers the person's rank; above it, it raises it
    older, younger = person.assign(age=cohort["age"].mean() + 8), person.assign(age=cohort["age"].mean() - 8)
    w = base_pipeline(model)[-1].coef_.ravel()[MODEL_FEATURES.index("age")]
    assert w > 0   # the generating model raises risk with age
    assert (contributions_of(model, older, cohort).values[:, MODEL_FEATURES.index("age")] > 0).all()
    assert (contributions_of(model, younger, cohort).values[:, MODEL_FEATURES.index("age")] < 0).all()


def test_trees_are_explained_against_a_seeded_background_of_the_eligible_cohort():
    frame = _frame(900, 3)
    model = _fitted(frame)
    cohort = frame[frame["age"] < 90]
    listed = cohort.iloc[:25]
    explained = contributions_of(model, listed, cohort)
    rows = background(cohort)
    assert len(rows) == BACKGROUND < len(cohort) and set(rows["pid"]) <= set(cohort["pid"])
    # the same cohort in any order gives the same background and the same contributions
    shuffled = cohort.sample(frac=1, random_state=9)
    assert background(shuffled)["pid"].tolist() == rows["pid"].tolist()
    np.testing.assert_array_equal(contributions_of(model, listed, shuffled).values, explained.values)
    # the base value is the background's mean log-odds: interventional TreeSHAP against it
    assert explained.base == pytest.approx(log_odds(model, rows[MODEL_FEATURES].to_numpy()).mean(), abs=1e-6)
    assert (explained.method, explained.reference_people, explained.reference_rows) == ("hgb", len(cohort), BACKGROUND)
    assert additivity_error(explanation_table(listed, explained, "2")) < 1e-6
    # another reference moves the base, and with it every contribution
    older = frame[frame["age"] >= 85]
    assert contributions_of(model, listed, older).base != pytest.approx(explained.base, abs=1e-3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-3, 3, allow_nan=False), min_size=len(CATALOG), max_size=len(CATALOG)))
def test_a_reason_is_a_contribution_that_genuinely_separates(contrib):
    contrib = np.array(contrib)
    chosen = reason_indices(contrib)
    raising = contrib[contrib > 0].sum()
    material = [j for j in range(len(contrib)) if contrib[j] >= MIN_REASON and contrib[j] >= MIN_SHARE * raising]
    # the largest material contributions, at most three, largest first; nothing below the floor
    assert sorted(chosen, key=lambda j: (-contrib[j], j)) == chosen
    assert set(chosen) <= set(material) and len(chosen) == min(len(material), 3)
    assert all(contrib[j] >= contrib[k] for j in chosen for k in material if k not in chosen)


def test_someone_without_a_strong_factor_is_told_so():
    frame = _frame(3)
    values = np.full((3, len(MODEL_FEATURES)), MIN_REASON / 4)   # many small pushes, none a reason
    why = reasons(frame, values)
    assert why["reasons"].tolist() == [NO_SINGLE_REASON[0]] * 3 and why["reasons_en"].tolist() == [NO_SINGLE_REASON[1]] * 3
    assert all(len(f) == 0 for f in why["reason_features"])


def _explained_list_of(frame: pd.DataFrame, model, mode: str = "model"):
    """explained_list on a small list with two exploration picks, as the monthly run calls it."""
    from models.prioritise import make_list

    cohort = frame[frame["age"] < 95]
    scored = cohort[["pid"]].assign(district=np.where(np.arange(len(cohort)) % 2, "東町地区", "西原地区"),
                                    score=np.round(1 / (1 + np.exp(-log_odds(model, cohort[MODEL_FEATURES].to_numpy()))), 6))
    listed = make_list(scored, {"東町地区": 8, "西原地区": 7}, {"東町地区": 1, "西原地区": 1}, seed=4)
    trained = SimpleNamespace(mode=mode, model=model, model_version="5" if mode == "model" else None,
                              baseline="alone_75")
    return explained_list(listed, frame, cohort, trained, "k1"), cohort


@pytest.mark.parametrize("mode", ["model", "baseline"])
def test_exploration_picks_carry_only_the_exploration_text(mode):
    frame = _frame(500, 6)
    (listed, table, _), cohort = _explained_list_of(frame, _logit(frame), mode)
    picked = listed[listed["exploration"]]
    assert len(picked) == 2
    assert set(picked["reasons"]) == {EXPLORATION[0]} and set(picked["reasons_en"]) == {EXPLORATION[1]}
    assert all(len(f) == 0 for f in picked["reason_features"]) and all(len(c) == 0 for c in picked["reason_contributions"])
    ranked = listed[~listed["exploration"]]
    assert not ranked["reasons"].str.contains(EXPLORATION[0]).any()
    _check_phrases(frame, listed)
    if mode == "model":   # their contributions are still stored (the auditor sees what the model made of them)
        assert set(picked["pid"]) <= set(table["pid"]) and additivity_error(table) < 1e-9
        assert set(table["reference_people"]) == {len(cohort)}


def test_the_auditors_view_of_an_exploration_pick_shows_no_reasons():
    from reports.explain_view import person_view

    frame = _frame(500, 6)
    (listed, table, _), _ = _explained_list_of(frame, _logit(frame))
    listed = listed.assign(source="model")
    pick = listed[listed["exploration"]].iloc[0]
    values = frame.set_index("pid").loc[pick["pid"]]
    text = person_view("2026-10", listed, pick["pid"], values, table[table["pid"] == pick["pid"]]).text
    assert f"理由 reasons: {EXPLORATION[0]} / {EXPLORATION[1]}\n" in text and "★" not in text.split("★ = ")[0]
    # what the model's own reasons would have said is nowhere in the view
    names, phi = grouped(contributions(table[table["pid"] == pick["pid"]]))
    would = [describe(names[j], values[names[j]], bool(values.get(f"{names[j]}_imp", 0) >= .5))[0]
             for j in reason_indices(phi[0])]
    assert not would or "、".join(would) not in text
    ranked = listed[~listed["exploration"]].iloc[0]
    own = person_view("2026-10", listed, ranked["pid"], frame.set_index("pid").loc[ranked["pid"]],
                      table[table["pid"] == ranked["pid"]]).text
    assert f"理由 reasons: {ranked['reasons']}" in own and EXPLORATION[0] not in own


def test_the_auditors_view_names_the_reference_and_shows_a_rank_band_not_a_score():
    from reports.explain_view import person_view

    frame = _frame(500, 6)
    (listed, table, _), cohort = _explained_list_of(frame, _logit(frame))
    person = listed[~listed["exploration"]].iloc[0]
    text = person_view("2026-10", listed, person["pid"], frame.set_index("pid").loc[person["pid"]],
                       table[table["pid"] == person["pid"]]).text
    assert f"reference: その月の掲載可能な住民{len(cohort):,}人 / the month's eligible cohort, {len(cohort):,} people" in text
    assert "linear SHAP" in text and "TreeSHAP" not in text
    assert f"{person['band']} / {person['band_en']} of the eligible cohort" in text
    # no probability-looking figure: neither the score nor a sigmoid of the log-odds
    assert f"{person['score']:.4f}" not in text and "probability" not in text


def _calibrated(frame: pd.DataFrame, name: str):
    """A candidate as training serves it: fitted on one part, Platt-calibrated on another."""
    from sklearn.calibration import CalibratedClassifierCV

    import tomllib

    from pipelines.config import DEFAULTS

    rng = np.random.default_rng(2)
    logit = (frame["age"] - 80) / 8 + frame["care_arrears_months"] + frame["months_since_contact_imp"] - 1
    y = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    X = frame[MODEL_FEATURES].to_numpy(dtype="float64")
    training = tomllib.loads(DEFAULTS.read_text(encoding="utf-8"))["training"] | {"max_iter": 40}
    model, note = fit_candidate(name, training, X[:500], y[:500], X[500:], y[500:])
    assert isinstance(model, CalibratedClassifierCV), note
    return model


@pytest.mark.parametrize("name", ["hgb", "logit"])
def test_a_calibrated_models_explanations_add_up_to_its_pipelines_log_odds(name):
    frame = _frame(900, seed=4)
    model = _calibrated(frame, name)
    assert not hasattr(model, "decision_function")   # why the explanations cannot call it directly
    listed = frame.iloc[:40]
    X = listed[MODEL_FEATURES].to_numpy(dtype="float64")
    table = explanation_table(listed, contributions_of(model, listed, frame), "9")
    assert additivity_error(table) < 1e-6
    np.testing.assert_allclose(table["log_odds"], base_pipeline(model).decision_function(X), atol=1e-12)
    np.testing.assert_allclose(table["log_odds"], log_odds(model, X), atol=1e-12)
    # calibration is monotone in those log-odds, so the reasons explain the served ranking too
    served = model.predict_proba(X)[:, 1]
    order = np.argsort(table["log_odds"].to_numpy(), kind="stable")
    assert np.all(np.diff(served[order]) >= -1e-12)


def test_a_feature_and_its_no_record_flag_are_one_reason():
    values = np.zeros((1, len(MODEL_FEATURES)))
    values[0, MODEL_FEATURES.index("months_since_checkup")] = .2
    values[0, MODEL_FEATURES.index("months_since_checkup_imp")] = .5
    names, out = grouped(values)
    assert out[0, names.index("months_since_checkup")] == pytest.approx(.7)
    assert len(names) == len(CATALOG)


def test_every_catalogue_feature_reads_naturally_in_both_languages():
    for name, feature in CATALOG.items():
        for value, imputed in [(0.0, False), (4.0, False), (30.0, True)]:
            ja, en = describe(name, value, imputed)
            assert ja and en and "、" not in ja and ";" not in en
        assert feature.label_ja and feature.label_en and feature.source and feature.window and feature.imputation
        assert feature.ask_ja and feature.ask_en
    assert describe("care_arrears_months", 4.0) == ("介護保険料を4か月分滞納", "4 months of care-premium arrears")
    assert describe("age", 97.0) == ("90歳以上", "aged 90 or over")   # top-coded


# ------------------------------------------------------------------------ on the synthetic ward

def _stored(ward):
    listed = read_parquet(ward.cfg.runs / ward.month / "list.parquet")
    if not str(listed["source"].iloc[0]).startswith("model"):
        pytest.skip("the test ward's list was made by a rule baseline this time")
    return listed, read_parquet(ward.cfg.runs / ward.month / EXPLANATIONS)


def test_stored_explanations_add_up_to_the_registered_models_log_odds(ward):
    import mlflow.sklearn

    from pipelines.catalog.registry import REGISTERED_MODEL, connect

    listed, table = _stored(ward)
    assert table["pid"].tolist() == listed["pid"].tolist()
    assert set(table["model_version"]) == set(listed["model_version"])
    assert additivity_error(table) < 1e-6
    connect(ward.cfg)
    model = mlflow.sklearn.load_model(f"models:/{REGISTERED_MODEL}/{listed['model_version'].iloc[0]}")
    features = read_parquet(ward.cfg.features_dir / f"{ward.month}.parquet").set_index("pid").loc[listed["pid"]]
    X = features[MODEL_FEATURES].to_numpy(dtype="float64")
    # log_odds, not model.decision_function: a calibrated model (CalibratedClassifierCV over a
    # FrozenEstimator) has no decision_function; the reasons explain its pipeline's log-odds
    np.testing.assert_allclose(contributions(table).sum(axis=1) + table["base_value"],
                               log_odds(model, X), atol=1e-6)
    np.testing.assert_allclose(listed["score"], model.predict_proba(X)[:, 1], atol=1e-6)
    # the stored reasons are the largest grouped contributions, worded by the catalogue
    names, grouped_phi = grouped(contributions(table))
    for i, r in listed.iterrows():
        assert list(r["reason_contributions"]) == pytest.approx(
            [grouped_phi[i, names.index(f)] for f in r["reason_features"]], abs=1e-12)
    _check_phrases(features.reset_index(), listed)


def test_the_stored_contributions_are_taken_against_the_months_eligible_cohort(ward):
    import mlflow.sklearn

    from models.candidates import kind
    from pipelines.catalog.registry import REGISTERED_MODEL, connect
    from pipelines.monthly import prioritise_month

    listed, table = _stored(ward)
    feats = read_parquet(ward.cfg.features_dir / f"{ward.month}.parquet")
    scored = read_parquet(ward.cfg.runs / ward.month / "scores.parquet")
    _, ok, _ = prioritise_month(ward.cfg, ward.month, feats, scored)
    cohort = feats[ok.mask]
    assert set(table["reference_people"]) == {len(cohort)}
    connect(ward.cfg)
    model = mlflow.sklearn.load_model(f"models:/{REGISTERED_MODEL}/{listed['model_version'].iloc[0]}")
    assert set(table["method"]) == {kind(model)}
    reference = background(cohort) if kind(model) == "hgb" else cohort
    assert set(table["reference_rows"]) == {len(reference)}
    expected_base = log_odds(model, reference[MODEL_FEATURES].to_numpy(dtype="float64")).mean()
    assert table["base_value"].iloc[0] == pytest.approx(expected_base, abs=1e-6)
    # the band shown instead of the score: the share of the eligible scoring at least as high
    eligible_scores = scored[ok.mask]["score"].to_numpy()
    for _, row in listed.iterrows():
        share = (eligible_scores >= row["score"]).mean() * 100
        assert share <= row["top_percent"] < share + 0.1 + 1e-9


def test_the_auditors_view_shows_contributions_and_a_waterfall_without_identifiers(ward):
    from contract.sources import SOURCES
    from pipelines.pseudonymise import load_key
    from pipelines.reading import delivery_file, read_source

    listed, table = _stored(ward)
    pid = listed["pid"].iloc[0]
    text, png = explain_person(ward.cfg, ward.month, pid)
    assert pid in text and "base + Σ SHAP" in text and "|difference|" in text
    assert "reference: その月の掲載可能な住民" in text and text.count("waterfall:") == 1
    assert png is not None and png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000
    residents = read_source(delivery_file(ward.cfg.inbox / ward.month, "residents"), SOURCES["residents"]).rows
    key = load_key(ward.cfg.key_file)
    me = residents[[hmac.new(key, f"resident:{i}".encode(), hashlib.sha256).hexdigest()[:32] == pid
                    for i in residents["resident_id"]]].iloc[0]
    for value in (me["resident_id"], me["name"], me["address"], me["household_id"]):
        assert str(value) not in text
    with pytest.raises(ValueError, match="not on the"):
        explain_person(ward.cfg, ward.month, "0" * 32)


def test_mimamori_explain_prints_the_waterfall_line_once(ward, capsys):
    import argparse

    from pipelines.commands import cmd_explain

    listed, _ = _stored(ward)
    assert cmd_explain(ward.cfg, argparse.Namespace(month=ward.month, pid=listed["pid"].iloc[0])) == 0
    out = capsys.readouterr().out
    assert out.count("waterfall:") == 1 and "基準 reference:" in out


@pytest.mark.parametrize("change", [n for n, f in CATALOG.items() if f.group != "snapshot"])
def test_a_change_that_drives_the_risk_is_named_in_natural_words(change):
    """A person whose risk comes from a change (a household that shrank, a broken checkup habit, …)
    reads that change on the list, in the catalogue's Japanese and English, and `explain` finds it."""
    import tomllib

    from pipelines.config import DEFAULTS

    frame = _frame(900, 4)
    rng = np.random.default_rng(6)
    logit = 3.0 * (frame[change] >= 1) + (frame["age"] - 80) / 20 - 2.5
    y = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    training = tomllib.loads(DEFAULTS.read_text(encoding="utf-8"))["training"]
    model, _ = fit_candidate("logit", training, frame[MODEL_FEATURES].to_numpy(dtype="float64"), y,
                             np.zeros((0, len(MODEL_FEATURES))), np.zeros(0))
    changed = frame[frame[change] >= 1].iloc[:20]
    why = reasons(changed, contributions_of(model, changed, frame).values)
    phrase = describe(change, float(changed[change].iloc[0]))
    named = why["reason_features"].apply(lambda f: change in f)
    assert named.mean() > .8, why[["reasons"]].head()
    assert why.loc[named, "reasons"].str.contains(phrase[0], regex=False).all()
    _check_phrases(changed, why)
