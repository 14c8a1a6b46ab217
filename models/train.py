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
from models.baselines import BASELINES, baseline_scores
from models.candidates import fit_candidate
from models.estimator import one_thread
from models.fairness import audit
from models.labels import Outcomes, labels, window_closed
from pipelines.config import Config
from contract.months import month_end, shift
from pipelines.prioritise import capacity

FeaturesFor = Callable[..., pd.DataFrame]   # (month, pids=None) -> the month's feature rows (of those pids)


@dataclass
class TrainResult:
    mode: str                         # "model" or "baseline": what makes this month's list
    reason: str                       # why, in plain words (shown in the report)
    baseline: str = "alone_75"        # the best baseline (serves when mode == "baseline")
    model: object | None = None       # the serving model when mode == "model"
    model_version: str | None = None  # the version the report is about: serving, else this month's challenger
    run_id: str | None = None
    challenger: str | None = None     # candidate kind of this month's challenger ("hgb" | "logit")
    challenger_version: str | None = None
    champion_version: str | None = None   # the champion before this month, if any
    serving: str | None = None        # "challenger" | "champion" | baseline name
    criterion: str | None = None      # the holdout metric promotion compared
    holdout_month: str | None = None
    train_months: list[str] = field(default_factory=list)
    calibration_months: list[str] = field(default_factory=list)
    calibration: str | None = None    # how the challenger's probabilities were calibrated
    evaluation: dict = field(default_factory=dict)   # ranker -> metrics ("model" = challenger, "champion", baselines)
    candidates: dict = field(default_factory=dict)   # candidate kind -> holdout metrics
    fairness: dict = field(default_factory=dict)     # ranker -> audit rows (models/fairness.py)
    new_flags: list[str] = field(default_factory=list)
    holdout_k: int | None = None
    # Holdout people (aged min_age+): pid, age, sex, district, living_alone, label (1/0/NaN) and
    # score_<ranker> for every compared ranker; kept in memory for the report.
    holdout_frame: pd.DataFrame | None = field(default=None, repr=False)
    split_plot: bytes | None = field(default=None, repr=False)
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


def fit_and_calibration(months: list[str], calibration_months: int) -> tuple[list[str], list[str]]:
    """The newest `calibration_months` calibrate; the rest fit. Too short a history: all fit."""
    if calibration_months <= 0 or len(months) <= calibration_months:
        return list(months), []
    return months[:-calibration_months], months[-calibration_months:]


def split_rows(fit: list[str], calibrate: list[str], holdout: str | None, timespan_days: int) -> list[dict]:
    """Bars of the split plot: each as-of month's label window and its role."""
    rows = [(m, "fit") for m in fit] + [(m, "calibrate") for m in calibrate] + ([(holdout, "holdout")] if holdout else [])
    return [{"month": m, "role": role, "start": month_end(m), "end": month_end(m) + pd.Timedelta(days=timespan_days)}
            for m, role in rows]


def labels_for(cfg: Config, outcomes: Outcomes, month: str) -> pd.DataFrame:
    return labels(outcomes, month, cfg.get("labels", "timespan_days"), cfg.get("labels", "adverse_events_of_unvisited"),
                  tuple(cfg.get("labels", "positive_outcomes")), tuple(cfg.get("labels", "negative_outcomes")))


def labelled_frame(cfg: Config, months: list[str], outcomes: Outcomes, features_for: FeaturesFor) -> pd.DataFrame:
    frames = []
    for month in months:
        labelled = labels_for(cfg, outcomes, month)
        # only the labelled people's rows: a few thousand of a million
        frames.append(features_for(month, labelled["pid"]).merge(labelled, on="pid", how="inner"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=MODEL_FEATURES + ["label"])


def _xy(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return frame[MODEL_FEATURES].to_numpy(dtype="float64"), frame["label"].to_numpy(dtype=int)


def fit_months(cfg: Config, name: str, frame: pd.DataFrame, calibrate: list[str]) -> tuple[object, str]:
    """Fit candidate `name` on the frame's rows outside `calibrate`, calibrate on the rows inside."""
    in_cal = frame["as_of_month"].isin(calibrate).to_numpy()
    X, y = _xy(frame)
    return fit_candidate(name, cfg.settings["training"], X[~in_cal], y[~in_cal], X[in_cal], y[in_cal])


def score_model(model, features: pd.DataFrame) -> np.ndarray:
    with one_thread():
        return model.predict_proba(features[MODEL_FEATURES].to_numpy(dtype="float64"))[:, 1]


def holdout_evaluation(cfg: Config, models: dict[str, object], holdout: pd.DataFrame,
                       holdout_labels: pd.DataFrame) -> tuple[dict, dict, pd.DataFrame, int]:
    """Every model and baseline on the holdout month at that month's capacity (ward and per
    district), with a fairness audit of each at the same k."""
    caps = capacity(holdout, cfg.get("capacity", "share_of_residents"), cfg.get("capacity", "districts"))
    k = sum(caps.values())
    frame = holdout[holdout["age"] >= cfg.get("prioritise", "min_age")].merge(holdout_labels, on="pid", how="left")
    scores = baseline_scores(frame, cfg.settings["baselines"])
    scores |= {name: score_model(model, frame) for name, model in models.items()}
    labels_ = frame["label"].to_numpy(dtype="float64")
    results, fairness = {}, {}
    for name, s in scores.items():
        results[name] = metrics.evaluate(s, frame, k) | {"districts": metrics.by_district(s, frame, caps)}
        if name in models:
            results[name]["calibration"] = metrics.calibration_table(s, labels_)
        else:
            results[name]["brier"] = None      # a rule's score orders people; it is not a probability
        selected = np.zeros(len(frame), dtype=bool)
        selected[metrics.top_k(s, frame["pid"].to_numpy(), k)] = True
        fairness[name] = audit(frame, selected, *cfg.get("fairness", "ratio_bounds"),
                               min_labelled=cfg.get("fairness", "min_labelled"))
    scored = frame[["pid", "age", "sex", "district", "living_alone"]].assign(
        label=frame["label"].astype("float64"), **{f"score_{name}": s for name, s in scores.items()})
    return results, fairness, scored.reset_index(drop=True), k


# ------------------------------------------------------------------ selection and promotion

def criterion(evaluation: dict, rankers: list[str], min_labelled: int) -> str:
    """precision@k when every ranker has enough labelled people in its top k, else average precision."""
    enough = all(evaluation[r][f"labelled_in_top_k_{ties}"] >= min_labelled
                 for r in rankers for ties in ("worst", "best"))
    return "precision_at_k" if enough else "average_precision"


def value(figures: dict, measure: str, ties: str) -> float:
    """A ranker's figure for the criterion; -inf when it cannot be computed."""
    key = f"precision_at_k_{ties}" if measure == "precision_at_k" else measure
    v = figures.get(key)
    return float("-inf") if v is None else float(v)


def flags(rows: list[dict]) -> set[str]:
    """Flagged groups of a fairness audit, as 'attribute=group'."""
    return {f"{r['attribute']}={r['group']}" for r in rows if r.get("flag")}


def _best_baseline(evaluation: dict, measure: str) -> str:
    # baselines are compared on their best tie order: a challenger must beat them however their ties fall
    return max(BASELINES, key=lambda n: (value(evaluation[n], measure, "best"), n == "alone_75", n))


def _fmt(v: float) -> str:
    return "n/a" if v == float("-inf") else f"{v:.3f}"


def decide(evaluation: dict, fairness: dict, has_champion: bool, min_labelled: int) -> dict:
    """Who makes the list: the challenger ("model"), the champion, or the best baseline, and why."""
    rankers = ["model", *BASELINES] + (["champion"] if has_champion else [])
    measure = criterion(evaluation, rankers, min_labelled)
    best = _best_baseline(evaluation, measure)
    challenger = value(evaluation["model"], measure, "worst")
    base_v = value(evaluation[best], measure, "best")
    champion = value(evaluation["champion"], measure, "worst") if has_champion else None
    incumbent_flags = flags(fairness["champion" if has_champion else best])
    new_flags = sorted(flags(fairness["model"]) - incumbent_flags)
    words = {"precision_at_k": "precision@k", "average_precision": "average precision"}[measure]
    out = {"criterion": measure, "baseline": best, "new_flags": new_flags}
    why_not = []
    if not challenger > base_v:
        why_not.append(f"its holdout {words} {_fmt(challenger)} does not beat the best baseline {best} ({_fmt(base_v)})")
    # A tie with the champion promotes the challenger: it is then usually the champion's own
    # model refitted with one more month of labels (the evaluated twin saw the same months).
    if has_champion and not challenger >= champion:
        why_not.append(f"it is worse than the champion ({words} {_fmt(challenger)} vs {_fmt(champion)})")
    if new_flags:
        why_not.append("it adds fairness flags the incumbent does not have: " + ", ".join(new_flags))
    if not why_not:
        vs = f"champion {_fmt(champion)}, " if has_champion else ""
        return out | {"serving": "challenger", "reason": f"the challenger is promoted: holdout {words} "
                      f"{_fmt(challenger)} vs {vs}best baseline {best} {_fmt(base_v)}, no new fairness flag"}
    reason = "the challenger is not promoted: " + "; ".join(why_not)
    if has_champion and champion > base_v:
        return out | {"serving": "champion", "reason": reason + f". The champion keeps the list ({words} "
                      f"{_fmt(champion)} vs best baseline {_fmt(base_v)})"}
    return out | {"serving": best, "reason": reason + f". The list uses the best baseline, {best}"}


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


FEATURE_SET = hashlib.sha256(",".join(MODEL_FEATURES).encode()).hexdigest()[:12]


def _provenance(cfg: Config, month: str, fingerprint: str, key_id: str) -> dict[str, str]:
    return {"month": month, "key_id": key_id, "config_hash": cfg.config_hash,
            "code_version": _code_version(), "lake_fingerprint": fingerprint, "feature_set": FEATURE_SET}


def _client(cfg: Config):
    from models.tracking import connect

    return connect(cfg.mlflow_db, cfg.mlflow_artifacts).MlflowClient()


def _load(version) -> object:
    import mlflow.sklearn

    from models.tracking import REGISTERED_MODEL

    return mlflow.sklearn.load_model(f"models:/{REGISTERED_MODEL}/{version.version}")


def incumbent(cfg: Config, month: str):
    """(model, version) of the champion as it stood before `month`: the newest version promoted
    for an earlier month, on today's features and key. Found by tags, not by the alias, so that
    rerunning a month compares with the same champion as its first run did."""
    from models.tracking import REGISTERED_MODEL

    versions = _client(cfg).search_model_versions(f"name='{REGISTERED_MODEL}' and tag.promoted='true'")
    usable = [v for v in versions if v.tags.get("month", "") < month and v.tags.get("feature_set") == FEATURE_SET
              and v.tags.get("key_retired") != "true"]
    if not usable:
        return None
    version = max(usable, key=lambda v: (v.tags["month"], int(v.version)))
    return _load(version), version


def _reusable(cfg: Config, provenance: dict[str, str]):
    """A model version already trained from exactly these inputs, config and code, if any.

    Rerunning a month then yields the same model version instead of a duplicate, so the
    list (which names its model version) stays byte-identical.
    """
    from models.tracking import REGISTERED_MODEL

    versions = _client(cfg).search_model_versions(f"name='{REGISTERED_MODEL}' and tag.month='{provenance['month']}'")
    for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
        if all(version.tags.get(k) == v for k, v in provenance.items()):
            return _load(version), version
    return None


# Types skops will not load without being told to, reviewed for the models we log: the tree
# predictor is sklearn's own compiled node array; the calibration wrappers are sklearn's Platt
# scaling; numpy.dtype is the imputers' stored dtype (a type descriptor, no code runs). Anything else appearing here (a new sklearn version, another estimator) must be
# reviewed before it is trusted, so training stops instead.
REVIEWED_TRUSTED_TYPES = frozenset({
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "numpy.dtype",
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
    promoted = result.serving == "challenger"
    with mlflow.start_run(run_name=f"train-{month}") as run:
        mlflow.set_tags(provenance | {"promoted": str(promoted).lower(), "candidate": result.challenger or "",
                                      "criterion": result.criterion or "", "serving": result.serving or ""})
        mlflow.log_params({"holdout_month": result.holdout_month,
                           "train_months": ",".join(result.train_months),
                           "calibration_months": ",".join(result.calibration_months),
                           "calibration": result.calibration,
                           "features": ",".join(MODEL_FEATURES), **cfg.settings["training"],
                           "label_timespan_days": cfg.get("labels", "timespan_days")})
        rankers = result.evaluation | {f"candidate_{n}": e for n, e in result.candidates.items()}
        mlflow.log_metrics({f"holdout_{who}_{name}": value for who, figures in rankers.items()
                            for name, value in figures.items() if isinstance(value, (int, float))})
        mlflow.log_metrics({f"labels_{k}": v for k, v in result.label_counts.items()})
        mlflow.log_dict({"evaluation": result.evaluation, "candidates": result.candidates,
                         "fairness": result.fairness, "reason": result.reason}, "holdout_evaluation.json")
        if result.split_plot:
            mlflow.log_image(_png_image(result.split_plot), "splits.png")
        trusted = reviewed_trusted_types(sio.get_untrusted_types(data=sio.dumps(model)))
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(X.head(50), score_model(model, train_frame.head(50))),
            pyfunc_predict_fn="predict_proba", skops_trusted_types=trusted,
            pip_requirements=["scikit-learn==1.9.1", "skops==0.16.0"])
        result.run_id = run.info.run_id
    # The version is created with its tags in one registry transaction: a process killed here
    # leaves either no version (the rerun registers the same number) or a tagged one that
    # `_reusable` finds — never an untagged version that would push the rerun's number up.
    registered = mlflow.register_model(
        info.model_uri, REGISTERED_MODEL,
        tags=provenance | {"candidate": result.challenger or "", "promoted": str(promoted).lower()})
    version = str(registered.version)
    if promoted:
        _promote(mlflow.MlflowClient(), month, version)
    result.challenger_version = version


def _png_image(png: bytes):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png))


def train_month(cfg: Config, month: str, first_month: str, features_for: FeaturesFor,
                lake_fingerprint: str, key_id: str) -> TrainResult:
    """Fit the candidates, compare challenger, champion and baselines on the holdout, promote or not."""
    from reports.plots import splits

    t = cfg.settings["training"]
    timespan = cfg.get("labels", "timespan_days")
    train_months, holdout_month = split_months(month, first_month, timespan, t["max_training_history_months"])
    if not train_months:
        return TrainResult("baseline", f"cold start: no label window of {timespan} days has closed "
                           f"early enough to train and hold out (history starts {first_month}); "
                           "the list uses today's rule", serving="alone_75")
    outcomes = Outcomes.known_at(cfg.lake, month)
    train = labelled_frame(cfg, train_months, outcomes, features_for)
    positives, labelled = int(train["label"].sum()), len(train)
    counts = {"train_labelled": labelled, "train_positive": positives}
    holdout_features = features_for(holdout_month)
    holdout_labels = labels_for(cfg, outcomes, holdout_month)
    cohort = int((holdout_features["age"] >= cfg.get("prioritise", "min_age")).sum())
    # label coverage: how few of the people we rank have a known outcome (selective labels)
    counts |= {"holdout_labelled": len(holdout_labels), "holdout_positive": int(holdout_labels["label"].sum()),
               "holdout_cohort": cohort, "holdout_coverage_pct": round(100 * len(holdout_labels) / max(cohort, 1), 2)}
    if labelled < t["min_labelled"] or positives < t["min_positive"]:
        # Cold start: no model, but the baselines are still compared wherever the holdout has labels.
        evaluation, fairness, scored, k = holdout_evaluation(cfg, {}, holdout_features, holdout_labels)
        measure = criterion(evaluation, list(BASELINES), t["min_labelled_at_k"])
        best = _best_baseline(evaluation, measure)
        return TrainResult("baseline", f"cold start: {labelled} labelled rows ({positives} positive) in "
                           f"the training months; at least {t['min_labelled']} ({t['min_positive']} positive) "
                           f"are needed. The list uses the best baseline on the holdout, {best}",
                           baseline=best, serving=best, criterion=measure, train_months=train_months,
                           holdout_month=holdout_month, label_counts=counts, evaluation=evaluation,
                           fairness=fairness, holdout_frame=scored, holdout_k=k)
    fit, calibrate = fit_and_calibration(train_months, t["calibration_months"])
    fitted = {name: fit_months(cfg, name, train, calibrate) for name in t["candidates"]}
    prior = incumbent(cfg, month)
    models = {f"candidate_{name}": model for name, (model, _) in fitted.items()}
    if prior is not None:
        models["champion"] = prior[0]
    evaluation, fairness, scored, k = holdout_evaluation(cfg, models, holdout_features, holdout_labels)
    measure = criterion(evaluation, list(models) + list(BASELINES), t["min_labelled_at_k"])
    candidates = {name: evaluation.pop(f"candidate_{name}") for name in fitted}
    candidate_fairness = {name: fairness.pop(f"candidate_{name}") for name in fitted}
    challenger = max(fitted, key=lambda n: (value(candidates[n], measure, "worst"),
                                            value(candidates[n], "average_precision", "worst"), n))
    evaluation["model"], fairness["model"] = candidates[challenger], candidate_fairness[challenger]
    scored = scored.rename(columns={f"score_candidate_{challenger}": "score_model"})
    scored = scored.drop(columns=[f"score_candidate_{n}" for n in fitted if n != challenger])
    decision = decide(evaluation, fairness, prior is not None, t["min_labelled_at_k"])
    result = TrainResult(
        "baseline" if decision["serving"] in BASELINES else "model", decision["reason"],
        baseline=decision["baseline"], serving=decision["serving"], criterion=decision["criterion"],
        challenger=challenger, champion_version=str(prior[1].version) if prior else None,
        holdout_month=holdout_month, train_months=train_months, calibration_months=calibrate,
        calibration=fitted[challenger][1], evaluation=evaluation, candidates=candidates, fairness=fairness,
        new_flags=decision["new_flags"], label_counts=counts, holdout_k=k, holdout_frame=scored)
    # The challenger as it would serve: refitted on every usable month, holdout included.
    _, final_cal = fit_and_calibration(train_months + [holdout_month], t["calibration_months"])
    result.split_plot = splits(split_rows(fit, calibrate, holdout_month, timespan), month)
    provenance = _provenance(cfg, month, lake_fingerprint, key_id)
    reused = _reusable(cfg, provenance)
    if reused is not None:
        final, version = reused
        result.challenger_version, result.run_id = str(version.version), version.run_id
        if version.tags.get("promoted") == "true":   # a run killed before it moved the alias
            _promote(_client(cfg), month, result.challenger_version)
    else:
        everything = pd.concat([train, holdout_features.merge(holdout_labels, on="pid")], ignore_index=True)
        final, result.calibration = fit_months(cfg, challenger, everything, final_cal)
        _log_to_mlflow(cfg, final, result, everything, provenance)
    if result.serving == "challenger":
        result.model, result.model_version = final, result.challenger_version
    elif result.serving == "champion":
        result.model, result.model_version = prior[0], str(prior[1].version)
    else:
        result.model_version = result.challenger_version
    return result


def fingerprint_of(records: list[dict]) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()[:16]
