"""Time-honest training for one batch month, with baselines, MLflow tracking and promotion.

For the current month T: as-of months whose label window has closed by T are usable; the
newest of them is the holdout; training uses only as-of months whose window closed by the
holdout's as-of date (so nothing after the holdout's planning day informs the model that is
scored on it). The promoted model is then refitted on every usable month.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from features.catalog import MODEL_FEATURES
from models import metrics
from models.baselines import BASELINES
from models.estimator import make_model, one_thread
from models.fairness import audit
from models.labels import Outcomes, labels, window_closed
from pipelines.config import Config
from pipelines.months import shift
from pipelines.prioritise import capacity

FeaturesFor = Callable[[str], pd.DataFrame]


@dataclass
class TrainResult:
    mode: str                         # "model" or "baseline"
    reason: str                       # why, in plain words (shown in the report)
    baseline: str = "alone_75"        # the baseline used when mode == "baseline"
    model: object | None = None
    model_version: str | None = None
    run_id: str | None = None
    holdout_month: str | None = None
    train_months: list[str] = field(default_factory=list)
    evaluation: dict = field(default_factory=dict)   # {"model": {...}, "alone_75": {...}, ...}
    fairness: dict = field(default_factory=dict)     # {"model": [rows], "alone_75": [rows]} (models/fairness.py)
    holdout_k: int | None = None
    # Holdout people (aged min_age+): pid, age, sex, district, living_alone, label (1/0/NaN) and
    # score_<ranker> for the compared model and every baseline; kept in memory for the report.
    holdout_frame: pd.DataFrame | None = field(default=None, repr=False)
    label_counts: dict = field(default_factory=dict)


def split_months(current: str, first: str, timespan_days: int, max_history: int) -> tuple[list[str], str | None]:
    """(training as-of months, holdout as-of month) for the current month."""
    candidates = [shift(current, -i) for i in range(1, max_history + 12) if shift(current, -i) >= first]
    closed = sorted(m for m in candidates if window_closed(m, current, timespan_days))
    if not closed:
        return [], None
    holdout = closed[-1]
    train = [m for m in closed if window_closed(m, holdout, timespan_days)][-max_history:]
    return train, holdout


def labels_for(cfg: Config, outcomes: Outcomes, month: str) -> pd.DataFrame:
    return labels(outcomes, month, cfg.get("labels", "timespan_days"), cfg.get("labels", "adverse_events_of_unvisited"))


def labelled_frame(cfg: Config, months: list[str], outcomes: Outcomes, features_for: FeaturesFor) -> pd.DataFrame:
    frames = [features_for(month).merge(labels_for(cfg, outcomes, month), on="pid", how="inner") for month in months]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=MODEL_FEATURES + ["label"])


def fit_model(cfg: Config, frame: pd.DataFrame):
    t = cfg.settings["training"]
    model = make_model(t["seed"], t["max_iter"], t["learning_rate"], t["max_leaf_nodes"], t["min_samples_leaf"])
    with one_thread():
        return model.fit(frame[MODEL_FEATURES].to_numpy(dtype="float64"), frame["label"].to_numpy(dtype=int))


def score_model(model, features: pd.DataFrame) -> np.ndarray:
    with one_thread():
        return model.predict_proba(features[MODEL_FEATURES].to_numpy(dtype="float64"))[:, 1]


def holdout_evaluation(cfg: Config, model, holdout: pd.DataFrame,
                       holdout_labels: pd.DataFrame) -> tuple[dict, dict, pd.DataFrame, int]:
    """Model and every baseline on the holdout month, cut at that month's capacity, with a
    fairness audit of the model and of today's rule at the same k."""
    k = sum(capacity(holdout, cfg.get("capacity", "share_of_residents"), cfg.get("capacity", "districts")).values())
    frame = holdout[holdout["age"] >= cfg.get("prioritise", "min_age")].merge(holdout_labels, on="pid", how="left")
    scores = {name: rule(frame) for name, (_, _, rule) in BASELINES.items()}
    if model is not None:
        scores["model"] = score_model(model, frame)
    results = {name: metrics.evaluate(s, frame, k) for name, s in scores.items()}
    fairness = {}
    for name in ("model", "alone_75"):
        if name in scores:
            selected = np.zeros(len(frame), dtype=bool)
            selected[metrics.top_k(scores[name], frame["pid"].to_numpy(), k)] = True
            fairness[name] = audit(frame, selected, *cfg.get("fairness", "ratio_bounds"),
                                   min_labelled=cfg.get("fairness", "min_labelled"))
    scored = frame[["pid", "age", "sex", "district", "living_alone"]].assign(
        label=frame["label"].astype("float64"), **{f"score_{name}": s for name, s in scores.items()})
    return results, fairness, scored.reset_index(drop=True), k


def _code_version() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _promote(client, month: str, version: str) -> None:
    """Alias the version `champion` unless the champion already serves a later month
    (rerunning an old month must not roll the ward's model back)."""
    from models.tracking import CHAMPION, REGISTERED_MODEL

    try:
        current = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
        if current.tags.get("month", "") > month:
            return
    except Exception:  # no champion yet
        pass
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)


def _provenance(cfg: Config, month: str, fingerprint: str, key_id: str) -> dict[str, str]:
    return {"month": month, "key_id": key_id, "config_hash": cfg.config_hash,
            "code_version": _code_version(), "lake_fingerprint": fingerprint}


def _reusable(cfg: Config, provenance: dict[str, str]):
    """A model version already trained from exactly these inputs, config and code, if any.

    Rerunning a month then yields the same model version instead of a duplicate, so the
    list (which names its model version) stays byte-identical.
    """
    from models.tracking import REGISTERED_MODEL, connect

    mlflow = connect(cfg.mlflow_db, cfg.mlflow_artifacts)
    client = mlflow.MlflowClient()
    versions = client.search_model_versions(f"name='{REGISTERED_MODEL}' and tag.month='{provenance['month']}'")
    for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
        if all(version.tags.get(k) == v for k, v in provenance.items()):
            import mlflow.sklearn

            return mlflow.sklearn.load_model(f"models:/{REGISTERED_MODEL}/{version.version}"), version
    return None


# Types skops will not load without being told to, reviewed for the model we log: the tree
# predictor is sklearn's own compiled node array. Anything else appearing here (a new sklearn
# version, another estimator) must be reviewed before it is trusted, so training stops instead.
REVIEWED_TRUSTED_TYPES = frozenset({
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
})


def reviewed_trusted_types(untrusted: list[str]) -> list[str]:
    unreviewed = sorted(set(untrusted) - REVIEWED_TRUSTED_TYPES)
    if unreviewed:
        raise RuntimeError("skops would need to trust types nobody has reviewed: " + ", ".join(unreviewed)
                           + " — review them and add them to models/train.py REVIEWED_TRUSTED_TYPES")
    return sorted(untrusted)


def _log_to_mlflow(cfg: Config, model, result: TrainResult, train_frame: pd.DataFrame,
                   provenance: dict[str, str]) -> None:
    from models.tracking import REGISTERED_MODEL, connect

    mlflow = connect(cfg.mlflow_db, cfg.mlflow_artifacts)
    import mlflow.sklearn
    import skops.io as sio
    from mlflow.models import infer_signature

    month = provenance["month"]
    X = train_frame[MODEL_FEATURES].astype("float64")
    with mlflow.start_run(run_name=f"train-{month}") as run:
        mlflow.set_tags(provenance | {"promoted": str(result.mode == "model")})
        mlflow.log_params({"holdout_month": result.holdout_month,
                           "train_months": ",".join(result.train_months),
                           "features": ",".join(MODEL_FEATURES), **cfg.settings["training"],
                           "label_timespan_days": cfg.get("labels", "timespan_days")})
        for who, figures in result.evaluation.items():
            mlflow.log_metrics({f"holdout_{who}_{name}": value for name, value in figures.items()
                                if isinstance(value, (int, float)) and value is not None})
        mlflow.log_metrics({f"labels_{k}": v for k, v in result.label_counts.items()})
        trusted = reviewed_trusted_types(sio.get_untrusted_types(data=sio.dumps(model)))
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(X.head(50), score_model(model, train_frame.head(50))),
            pyfunc_predict_fn="predict_proba", skops_trusted_types=trusted,
            pip_requirements=["scikit-learn==1.9.1", "skops==0.16.0"],
            registered_model_name=REGISTERED_MODEL)
        result.run_id = run.info.run_id
    client = mlflow.MlflowClient()
    version = str(info.registered_model_version)
    for tag, value in provenance.items():
        client.set_model_version_tag(REGISTERED_MODEL, version, tag, value)
    if result.mode == "model":
        _promote(client, month, version)
    result.model_version = version


def train_month(cfg: Config, month: str, first_month: str, features_for: FeaturesFor,
                lake_fingerprint: str, key_id: str) -> TrainResult:
    """Train, compare with the baselines on the holdout, and promote or fall back to a rule."""
    t = cfg.settings["training"]
    timespan = cfg.get("labels", "timespan_days")
    train_months, holdout_month = split_months(month, first_month, timespan, t["max_training_history_months"])
    if not train_months:
        return TrainResult("baseline", f"cold start: no label window of {timespan} days has closed "
                           f"early enough to train and hold out (history starts {first_month})")
    outcomes = Outcomes.known_at(cfg.lake, month)
    train = labelled_frame(cfg, train_months, outcomes, features_for)
    positives, labelled = int(train["label"].sum()), len(train)
    counts = {"train_labelled": labelled, "train_positive": positives}
    if labelled < t["min_labelled"] or positives < t["min_positive"]:
        return TrainResult("baseline", f"cold start: {labelled} labelled rows ({positives} positive) in "
                           f"the training months; at least {t['min_labelled']} ({t['min_positive']} positive) "
                           "are needed", train_months=train_months, holdout_month=holdout_month,
                           label_counts=counts)
    model = fit_model(cfg, train)
    holdout_features = features_for(holdout_month)
    holdout_labels = labels_for(cfg, outcomes, holdout_month)
    evaluation, fairness, scored, k = holdout_evaluation(cfg, model, holdout_features, holdout_labels)
    counts |= {"holdout_labelled": len(holdout_labels), "holdout_positive": int(holdout_labels["label"].sum())}
    best_name = max(BASELINES, key=lambda n: evaluation[n]["average_precision"] or 0.0)
    best_ap = evaluation[best_name]["average_precision"] or 0.0
    model_ap = evaluation["model"]["average_precision"]
    if model_ap is None or model_ap <= best_ap:
        mode, reason = "baseline", (f"the model's holdout average precision ({model_ap}) did not beat the "
                                    f"best baseline {best_name} ({best_ap:.3f}); the list uses the baseline")
    else:
        mode, reason = "model", (f"trained on {len(train_months)} as-of months, holdout {holdout_month}: "
                                 f"average precision {model_ap:.3f} vs best baseline {best_name} {best_ap:.3f}")
    result = TrainResult(mode, reason, baseline=best_name, holdout_month=holdout_month,
                         train_months=train_months, evaluation=evaluation, fairness=fairness, label_counts=counts,
                         holdout_k=k, holdout_frame=scored)
    provenance = _provenance(cfg, month, lake_fingerprint, key_id)
    reused = _reusable(cfg, provenance)
    if reused is not None:
        final, version = reused
        result.model_version, result.run_id = str(version.version), version.run_id
    else:
        # The model that serves the list is refitted on every usable month, holdout included.
        everything = pd.concat([train, holdout_features.merge(holdout_labels, on="pid")], ignore_index=True)
        final = fit_model(cfg, everything)
        _log_to_mlflow(cfg, final, result, everything, provenance)
    result.model = final if mode == "model" else None
    return result


def fingerprint_of(records: list[dict]) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()[:16]
