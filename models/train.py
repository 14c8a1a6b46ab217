"""Time-honest training for one batch month: the plan, the candidates, the holdout comparison,
the promotion decision and the refit, as pure functions of tables and settings.

For the current month T: as-of months whose label window has closed by T are usable; the
newest of them is the holdout; training uses only as-of months whose window closed by the
holdout's as-of date (so nothing after the holdout's planning day informs the model that is
scored on it). The challenger is then refitted on every usable month and registered; it
serves only if promoted.

Nothing here touches the lake, the MLflow registry or git: the runner (pipelines/training.py)
loads the tables and the champion, calls these, and logs what they return.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from contract.months import month_end, shift
from features.catalog import MODEL_FEATURES
from models import metrics
from models.baselines import BASELINES, baseline_scores
from models.candidates import fit_candidate
from models.estimator import one_thread
from models.fairness import audit
from models.labels import LabelPolicy, Outcomes, labels, window_closed
from models.prioritise import capacity

# Which features a model version was trained on: versions of another feature set are never champions.
FEATURE_SET = hashlib.sha256(",".join(MODEL_FEATURES).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class TrainResult:
    """What the train stage decided and everything the report and the registry need from it."""
    mode: str                         # "model" or "baseline": what makes this month's list
    reason: str                       # why, in plain words (shown in the report)
    baseline: str = "alone_75"        # the best baseline (serves when mode == "baseline")
    model: object | None = None       # the serving model when mode == "model"
    model_version: str | None = None  # the version the report is about: serving, else this month's challenger
    run_id: str | None = None
    challenger: str | None = None     # candidate kind of this month's challenger ("hgb" | "logit")
    challenger_version: str | None = None
    challenger_model: object | None = field(default=None, repr=False)   # the registered challenger, refitted
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

    def record(self) -> dict:
        """The one serialisation of a training result: runs/<month>/training.json."""
        return {"mode": self.mode, "serving": self.serving, "reason": self.reason, "baseline": self.baseline,
                "model_version": self.model_version, "challenger": self.challenger,
                "challenger_version": self.challenger_version, "champion_version": self.champion_version,
                "mlflow_run_id": self.run_id, "criterion": self.criterion, "new_fairness_flags": self.new_flags,
                "holdout_month": self.holdout_month, "train_months": self.train_months,
                "calibration_months": self.calibration_months, "calibration": self.calibration,
                "evaluation": self.evaluation, "candidates": self.candidates, "fairness": self.fairness,
                "label_counts": self.label_counts}

    def stage_summary(self) -> dict:
        """What the manifest's train stage says of the result (the record has the rest)."""
        return {"mode": self.mode, "serving": self.serving, "reason": self.reason,
                "model_version": self.model_version, "run_id": self.run_id, "holdout_month": self.holdout_month}


@dataclass(frozen=True)
class EvaluationSettings:
    """The settings the holdout comparison reads, from their sections of the configuration."""
    share_of_residents: float          # [capacity]
    fixed_capacity: dict               # [capacity] districts
    min_age: int                       # [prioritise]
    baselines: dict                    # [baselines]
    ratio_bounds: tuple[float, float]  # [fairness]
    min_labelled_fairness: int         # [fairness]

    @classmethod
    def of(cls, settings: dict) -> "EvaluationSettings":
        return cls(settings["capacity"]["share_of_residents"], settings["capacity"]["districts"],
                   settings["prioritise"]["min_age"], settings["baselines"],
                   tuple(settings["fairness"]["ratio_bounds"]), settings["fairness"]["min_labelled"])


@dataclass(frozen=True)
class TrainingPlan:
    """Which as-of months train, calibrate and hold out, for the batch month."""
    month: str
    train_months: list[str]
    holdout_month: str
    fit_months: list[str]
    calibration_months: list[str]
    final_calibration_months: list[str]   # of the refit on every usable month


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


def training_plan(month: str, first_month: str, timespan_days: int, training: dict) -> TrainingPlan | None:
    """The month's plan, or None when no label window has closed early enough (cold start)."""
    train, holdout = split_months(month, first_month, timespan_days, training["max_training_history_months"])
    if not train:
        return None
    fit, calibrate = fit_and_calibration(train, training["calibration_months"])
    _, final_cal = fit_and_calibration(train + [holdout], training["calibration_months"])
    return TrainingPlan(month, train, holdout, fit, calibrate, final_cal)


def split_rows(plan: TrainingPlan, timespan_days: int) -> list[dict]:
    """Bars of the split plot: each as-of month's label window and its role."""
    rows = ([(m, "fit") for m in plan.fit_months] + [(m, "calibrate") for m in plan.calibration_months]
            + [(plan.holdout_month, "holdout")])
    return [{"month": m, "role": role, "start": month_end(m), "end": month_end(m) + pd.Timedelta(days=timespan_days)}
            for m, role in rows]


def labels_for(label_settings: dict, outcomes: Outcomes, month: str, cohort: pd.Series | None = None) -> pd.DataFrame:
    """pid, label, weight of the people labelled in the window after `month`, under the `[labels]`
    policy; `cohort` (the month's pids aged min_age+) when the policy labels the unvisited."""
    return labels(outcomes, month, LabelPolicy.of(label_settings), cohort)


def training_frame(labelled_rows: list[pd.DataFrame]) -> pd.DataFrame:
    """The labelled people's feature rows of every training month, one frame."""
    return (pd.concat(labelled_rows, ignore_index=True) if labelled_rows
            else pd.DataFrame(columns=MODEL_FEATURES + ["label", "weight"]))


def label_counts(train: pd.DataFrame, holdout_features: pd.DataFrame, holdout_labels: pd.DataFrame,
                 min_age: int) -> dict:
    """Labelled and positive rows of training and holdout, and the holdout's label coverage
    (how few of the people we rank have a known outcome: selective labels)."""
    cohort = int((holdout_features["age"] >= min_age).sum())
    return {"train_labelled": len(train), "train_positive": int(train["label"].sum()),
            "train_weighted": round(float(train["weight"].sum()), 1) if "weight" in train else len(train),
            "holdout_labelled": len(holdout_labels), "holdout_positive": int(holdout_labels["label"].sum()),
            "holdout_cohort": cohort, "holdout_coverage_pct": round(100 * len(holdout_labels) / max(cohort, 1), 2)}


def _column(frame: pd.DataFrame, name: str, default: float) -> np.ndarray:
    return frame[name].to_numpy(dtype="float64") if name in frame else np.full(len(frame), default)


def fit_months(training: dict, name: str, frame: pd.DataFrame, calibrate: list[str]) -> tuple[object, str]:
    """Fit candidate `name` on the frame's rows outside `calibrate`, calibrate on the rows inside."""
    fit = ~frame["as_of_month"].isin(calibrate).to_numpy()
    X, y = frame[MODEL_FEATURES].to_numpy(dtype="float64"), frame["label"].to_numpy(dtype=int)
    w, visit = _column(frame, "weight", 1.0), _column(frame, "visit_label", 0.0)
    return fit_candidate(name, training, X[fit], y[fit], X[~fit], y[~fit], w[fit], w[~fit], visit[fit])


def score_model(model, features: pd.DataFrame) -> np.ndarray:
    with one_thread():
        return model.predict_proba(features[MODEL_FEATURES].to_numpy(dtype="float64"))[:, 1]


def month_scores(trained: TrainResult, features: pd.DataFrame, baseline_settings: dict) -> pd.DataFrame:
    """pid, district, score of every resident, by whatever makes this month's list."""
    if trained.mode == "model":
        scores = score_model(trained.model, features)
    else:
        scores = BASELINES[trained.baseline].score(features, baseline_settings)
    return features[["pid", "district"]].assign(score=np.round(scores, 6))


def holdout_evaluation(settings: EvaluationSettings, models: dict[str, object], holdout: pd.DataFrame,
                       holdout_labels: pd.DataFrame) -> tuple[dict, dict, pd.DataFrame, int]:
    """Every model and baseline on the holdout month at that month's capacity (ward and per
    district), with a fairness audit of each at the same k."""
    caps = capacity(holdout, settings.share_of_residents, settings.fixed_capacity)
    k = sum(caps.values())
    frame = holdout[holdout["age"] >= settings.min_age].merge(holdout_labels, on="pid", how="left")
    scores = baseline_scores(frame, settings.baselines)
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
        fairness[name] = audit(frame, selected, *settings.ratio_bounds, min_labelled=settings.min_labelled_fairness)
    scored = frame[["pid", "age", "sex", "district", "living_alone"]].assign(
        label=frame["label"].astype("float64"), **{f"score_{name}": s for name, s in scores.items()})
    return results, fairness, scored.reset_index(drop=True), k


# ------------------------------------------------------------------ selection and promotion

def criterion(evaluation: dict, rankers: list[str], min_labelled: int) -> str:
    """precision@k when every ranker has enough labelled people in its top k and some ranker finds
    enough positives there to tell rankers apart, else average precision (over every labelled
    person: with labels for the whole cohort, a top k holds too few adverse events to compare)."""
    enough = all(evaluation[r][f"labelled_in_top_k_{ties}"] >= min_labelled
                 for r in rankers for ties in ("worst", "best"))
    found = max((evaluation[r].get("positives_in_top_k_best", min_labelled) or 0) for r in rankers)
    return "precision_at_k" if enough and found >= min_labelled else "average_precision"


def value(figures: dict, measure: str, ties: str) -> float:
    """A ranker's figure for the criterion; -inf when it cannot be computed."""
    key = f"precision_at_k_{ties}" if measure == "precision_at_k" else measure
    v = figures.get(key)
    return float("-inf") if v is None else float(v)


def flags(rows: list[dict]) -> set[str]:
    """Flagged groups of a fairness audit, as 'attribute=group'."""
    return {f"{r['attribute']}={r['group']}" for r in rows if r.get("flag")}


def best_baseline(evaluation: dict, measure: str) -> str:
    # baselines are compared on their best tie order: a challenger must beat them however their ties fall
    return max(BASELINES, key=lambda n: (value(evaluation[n], measure, "best"), n == "alone_75", n))


def _figure(v: float) -> str:
    return "n/a" if v == float("-inf") else f"{v:.3f}"


def decide(evaluation: dict, fairness: dict, has_champion: bool, min_labelled: int) -> dict:
    """Who makes the list: the challenger ("model"), the champion, or the best baseline, and why."""
    rankers = ["model", *BASELINES] + (["champion"] if has_champion else [])
    measure = criterion(evaluation, rankers, min_labelled)
    best = best_baseline(evaluation, measure)
    challenger = value(evaluation["model"], measure, "worst")
    base_v = value(evaluation[best], measure, "best")
    champion = value(evaluation["champion"], measure, "worst") if has_champion else None
    incumbent_flags = flags(fairness["champion" if has_champion else best])
    new_flags = sorted(flags(fairness["model"]) - incumbent_flags)
    words = {"precision_at_k": "precision@k", "average_precision": "average precision"}[measure]
    out = {"criterion": measure, "baseline": best, "new_flags": new_flags}
    why_not = []
    if not challenger > base_v:
        why_not.append(f"its holdout {words} {_figure(challenger)} does not beat the best baseline {best} "
                       f"({_figure(base_v)})")
    # A tie with the champion promotes the challenger: it is then usually the champion's own
    # model refitted with one more month of labels (the evaluated twin saw the same months).
    if has_champion and not challenger >= champion:
        why_not.append(f"it is worse than the champion ({words} {_figure(challenger)} vs {_figure(champion)})")
    if new_flags:
        # say which rate is out of bounds, so the reason reads without the audit table beside it
        what = {f"{r['attribute']}={r['group']}": r.get("flagged", []) for r in fairness["model"] if r.get("flag")}
        rates = {"tpr": "recall too low", "fdr": "false-discovery rate too high"}
        named = [f + (f" ({', '.join(rates[m] for m in what[f])} against the whole cohort)" if what.get(f) else "")
                 for f in new_flags]
        why_not.append("it adds fairness flags the incumbent does not have: " + ", ".join(named))
    if not why_not:
        vs = f"champion {_figure(champion)}, " if has_champion else ""
        return out | {"serving": "challenger", "reason": f"the challenger is promoted: holdout {words} "
                      f"{_figure(challenger)} vs {vs}best baseline {best} {_figure(base_v)}, no new fairness flag"}
    reason = "the challenger is not promoted: " + "; ".join(why_not)
    if has_champion and champion > base_v:
        return out | {"serving": "champion", "reason": reason + f". The champion keeps the list ({words} "
                      f"{_figure(champion)} vs best baseline {_figure(base_v)})"}
    return out | {"serving": best, "reason": reason + f". The list uses the best baseline, {best}"}


# ------------------------------------------------------------------ the stage's results

def no_window_result(month: str, first_month: str, timespan_days: int) -> TrainResult:
    """Cold start before any label window has closed: today's rule makes the list."""
    return TrainResult("baseline", f"cold start: no label window of {timespan_days} days has closed "
                       f"early enough to train and hold out (history starts {first_month}); "
                       "the list uses today's rule", serving="alone_75")


def enough_labels(counts: dict, training: dict) -> bool:
    return counts["train_labelled"] >= training["min_labelled"] and counts["train_positive"] >= training["min_positive"]


def few_labels_result(plan: TrainingPlan, counts: dict, training: dict, settings: EvaluationSettings,
                      holdout_features: pd.DataFrame, holdout_labels: pd.DataFrame) -> TrainResult:
    """Cold start with too few labels to train: no model, but the baselines are still compared
    wherever the holdout has labels, and the best of them makes the list."""
    evaluation, fairness, scored, k = holdout_evaluation(settings, {}, holdout_features, holdout_labels)
    measure = criterion(evaluation, list(BASELINES), training["min_labelled_at_k"])
    best = best_baseline(evaluation, measure)
    labelled, positives = counts["train_labelled"], counts["train_positive"]
    return TrainResult("baseline", f"cold start: {labelled} labelled rows ({positives} positive) in "
                       f"the training months; at least {training['min_labelled']} ({training['min_positive']} positive) "
                       f"are needed. The list uses the best baseline on the holdout, {best}",
                       baseline=best, serving=best, criterion=measure, train_months=plan.train_months,
                       holdout_month=plan.holdout_month, label_counts=counts, evaluation=evaluation,
                       fairness=fairness, holdout_frame=scored, holdout_k=k)


def fitted_candidates(plan: TrainingPlan, training: dict, train: pd.DataFrame) -> dict[str, tuple[object, str]]:
    """candidate kind -> (fitted on the fit months and calibrated on the calibration months, calibration note)."""
    return {name: fit_months(training, name, train, plan.calibration_months) for name in training["candidates"]}


def comparison(plan: TrainingPlan, training: dict, settings: EvaluationSettings, counts: dict,
               fitted: dict[str, tuple[object, str]], champion: tuple[object, str] | None,
               holdout_features: pd.DataFrame, holdout_labels: pd.DataFrame) -> TrainResult:
    """Candidates, champion (model, version) and baselines on the holdout; the best candidate is
    the challenger, and `decide` says who serves. The result has no refitted model yet."""
    models = {f"candidate_{name}": model for name, (model, _) in fitted.items()}
    if champion is not None:
        models["champion"] = champion[0]
    evaluation, fairness, scored, k = holdout_evaluation(settings, models, holdout_features, holdout_labels)
    measure = criterion(evaluation, list(models) + list(BASELINES), training["min_labelled_at_k"])
    candidates = {name: evaluation.pop(f"candidate_{name}") for name in fitted}
    candidate_fairness = {name: fairness.pop(f"candidate_{name}") for name in fitted}
    challenger = max(fitted, key=lambda n: (value(candidates[n], measure, "worst"),
                                            value(candidates[n], "average_precision", "worst"), n))
    evaluation["model"], fairness["model"] = candidates[challenger], candidate_fairness[challenger]
    scored = scored.rename(columns={f"score_candidate_{challenger}": "score_model"})
    scored = scored.drop(columns=[f"score_candidate_{n}" for n in fitted if n != challenger])
    decision = decide(evaluation, fairness, champion is not None, training["min_labelled_at_k"])
    return TrainResult(
        "baseline" if decision["serving"] in BASELINES else "model", decision["reason"],
        baseline=decision["baseline"], serving=decision["serving"], criterion=decision["criterion"],
        challenger=challenger, champion_version=champion[1] if champion else None,
        holdout_month=plan.holdout_month, train_months=plan.train_months, calibration_months=plan.calibration_months,
        calibration=fitted[challenger][1], evaluation=evaluation, candidates=candidates, fairness=fairness,
        new_flags=decision["new_flags"], label_counts=counts, holdout_k=k, holdout_frame=scored)


def refit_frame(train: pd.DataFrame, holdout_features: pd.DataFrame, holdout_labels: pd.DataFrame) -> pd.DataFrame:
    """Every usable month's labelled rows: the training months and the holdout's."""
    return pd.concat([train, holdout_features.merge(holdout_labels, on="pid")], ignore_index=True)


def with_registered(result: TrainResult, challenger_model: object, version: str, run_id: str,
                    champion: tuple[object, str] | None, calibration: str | None = None) -> TrainResult:
    """The result once the refitted challenger is registered as `version`: the serving model chosen."""
    result = replace(result, challenger_model=challenger_model, challenger_version=version, run_id=run_id,
                     calibration=calibration if calibration is not None else result.calibration)
    if result.serving == "challenger":
        return replace(result, model=challenger_model, model_version=version)
    if result.serving == "champion":
        return replace(result, model=champion[0], model_version=champion[1])
    return replace(result, model_version=version)
