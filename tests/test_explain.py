"""Reasons are honest: exact TreeSHAP for listed people, worded only by the catalogue."""
from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import pytest

from features.catalog import CATALOG, EXPLORATION, FLAGGED, MODEL_FEATURES, describe
from models.candidates import base_pipeline, fit_candidate, log_odds
from models.estimator import make_model
from models.explain import additivity_error, contributions, contributions_of, explanation_table, grouped, reasons
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
    return frame


def _fitted(frame: pd.DataFrame):
    rng = np.random.default_rng(1)
    logit = (frame["age"] - 80) / 8 + frame["care_arrears_months"] + frame["months_since_contact_imp"] - 1
    y = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    return make_model(3, max_iter=40).fit(frame[MODEL_FEATURES].to_numpy(dtype="float64"), y)


def _check_phrases(features: pd.DataFrame, why: pd.DataFrame) -> None:
    """Every reason phrase is the catalogue's phrase for that feature at the person's value."""
    rows = features.set_index("pid")
    for _, r in why.iterrows():
        person = rows.loc[r["pid"]]
        expected = [describe(f, person[f], bool(person.get(f"{f}_imp", 0) >= .5)) for f in r["reason_features"]]
        if bool(r.get("exploration", False)):   # a random pick says so first, in the catalogue's words
            expected.insert(0, EXPLORATION)
        assert r["reasons"] == "、".join(p[0] for p in expected)
        assert r["reasons_en"] == "; ".join(p[1] for p in expected)
        assert all(f in CATALOG for f in r["reason_features"])


def test_contributions_plus_base_equal_the_log_odds_and_reasons_come_from_the_catalogue():
    frame = _frame(600)
    model = _fitted(frame)
    listed = frame.iloc[:50]
    table = explanation_table(listed, contributions_of(model, listed), "7")
    assert additivity_error(table) < 1e-6
    np.testing.assert_allclose(table["log_odds"], log_odds(model, listed[MODEL_FEATURES].to_numpy()), atol=1e-12)
    assert set(table["model_version"]) == {"7"}
    why = reasons(listed, contributions(table))
    _check_phrases(listed, why)
    names, grouped_phi = grouped(contributions(table))
    for i, r in why.reset_index(drop=True).iterrows():
        assert r["reason_contributions"] == [grouped_phi[i, names.index(f)] for f in r["reason_features"]]
        assert all(c > 0 for c in r["reason_contributions"])
        assert r["reason_contributions"] == sorted(r["reason_contributions"], reverse=True)
        assert len(r["reason_features"]) <= 3


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
    table = explanation_table(listed, contributions_of(model, listed), "9")
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


def test_the_auditors_view_shows_contributions_and_a_waterfall_without_identifiers(ward):
    from contract.sources import SOURCES
    from pipelines.pseudonymise import load_key
    from pipelines.reading import delivery_file, read_source

    listed, table = _stored(ward)
    pid = listed["pid"].iloc[0]
    text, png = explain_person(ward.cfg, ward.month, pid)
    assert pid in text and "base + Σ SHAP" in text and "|difference|" in text
    assert png is not None and png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000
    residents = read_source(delivery_file(ward.cfg.inbox / ward.month, "residents"), SOURCES["residents"]).rows
    key = load_key(ward.cfg.key_file)
    me = residents[[hmac.new(key, f"resident:{i}".encode(), hashlib.sha256).hexdigest()[:32] == pid
                    for i in residents["resident_id"]]].iloc[0]
    for value in (me["resident_id"], me["name"], me["address"], me["household_id"]):
        assert str(value) not in text
    with pytest.raises(ValueError, match="not on the"):
        explain_person(ward.cfg, ward.month, "0" * 32)
