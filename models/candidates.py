"""Candidate models: declared imputation, the estimators, and probability calibration.

Every candidate is a plain scikit-learn pipeline, so it is saved with skops and explained
exactly:

    declared imputer (per feature, from the catalogue; fitted on the training split only)
    → [StandardScaler for the logistic regression]
    → estimator (HistGradientBoosting or LogisticRegression, fixed seed)

and is then calibrated on the newest training months with `CalibratedClassifierCV(FrozenEstimator(pipe),
method="sigmoid")`. Platt scaling is a monotone map of the pipeline's log-odds, so the ranking and
the SHAP reasons (which explain those log-odds) are the calibrated model's too; a fitted sigmoid
that would reverse the ranking is refused and the pipeline serves uncalibrated.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from features.catalog import CATALOG, MODEL_FEATURES
from models.estimator import make_model, one_thread

CANDIDATES: dict[str, tuple[str, str]] = {
    "hgb": ("勾配ブースティング木", "gradient-boosted trees (HistGradientBoosting)"),
    "logit": ("ロジスティック回帰", "logistic regression (scaled, with missingness flags)"),
}
# A calibration set smaller than this (or with fewer than MIN_CLASS of either label) is not used.
MIN_CALIBRATION = 40
MIN_CLASS = 5


def declared_imputer() -> ColumnTransformer:
    """One imputer per model feature, in MODEL_FEATURES order, as the catalogue declares it.

    Most features are complete by definition (features/build.py fills "never on record" with a
    meaningful value and sets the `_imp` flag); what is still missing gets the catalogue's `fill`.
    Fitting happens on the training split only, and the fitted medians travel with the model.
    """
    steps = []
    for i, name in enumerate(MODEL_FEATURES):
        feature = CATALOG.get(name)
        if feature is not None and feature.fill == "median":
            imputer = SimpleImputer(strategy="median", keep_empty_features=True)
        else:
            imputer = SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True)
        steps.append((name, imputer, [i]))
    return ColumnTransformer(steps, remainder="drop")


def make_candidate(name: str, training: dict) -> Pipeline:
    """An unfitted candidate pipeline; `training` is the config's `[training]` section."""
    if name == "hgb":
        estimator: object = make_model(training["seed"], training["max_iter"], training["learning_rate"],
                                       training["max_leaf_nodes"], training["min_samples_leaf"])
        return Pipeline([("impute", declared_imputer()), ("model", estimator)])
    if name == "logit":
        # lbfgs is deterministic; C from config. Missingness is in the `_imp` flag columns.
        estimator = LogisticRegression(C=training["logit_c"], max_iter=5000, random_state=training["seed"])
        return Pipeline([("impute", declared_imputer()), ("scale", StandardScaler()), ("model", estimator)])
    raise ValueError(f"unknown candidate {name!r}; known: {', '.join(CANDIDATES)}")


def _calibration_problem(y: np.ndarray) -> str | None:
    positives = int(y.sum())
    if len(y) < MIN_CALIBRATION or positives < MIN_CLASS or len(y) - positives < MIN_CLASS:
        return (f"not calibrated: the calibration months hold {len(y)} labelled rows ({positives} positive); "
                f"at least {MIN_CALIBRATION} with {MIN_CLASS} of each label are needed")
    return None


def fit_candidate(name: str, training: dict, X_fit: np.ndarray, y_fit: np.ndarray,
                  X_cal: np.ndarray, y_cal: np.ndarray, w_fit: np.ndarray | None = None,
                  w_cal: np.ndarray | None = None, visit_fit: np.ndarray | None = None) -> tuple[object, str]:
    """(fitted model, calibration note): the pipeline fitted on (X_fit, y_fit), calibrated on
    (X_cal, y_cal); `w_*` are the labels' weights (sampled negatives count for those left out);
    `visit_fit` marks the rows whose label a visit found (models/labels.py)."""
    with one_thread():
        pipe = make_candidate(name, training)
        if name == "logit" and visit_fit is not None and 0 < visit_fit.sum() < len(visit_fit):
            pipe = _with_measurement_term(pipe, X_fit, y_fit, w_fit, visit_fit)
        else:
            pipe = pipe.fit(X_fit, y_fit, model__sample_weight=w_fit)
        problem = _calibration_problem(y_cal)
        if problem:
            return pipe, problem
        with warnings.catch_warnings():
            # the frozen pipeline is fitted already: the weights are meant for the sigmoid only,
            # which is exactly what sklearn warns it will do
            warnings.filterwarnings("ignore", message="Since FrozenEstimator does not appear to accept sample_weight")
            calibrated = CalibratedClassifierCV(FrozenEstimator(pipe), method="sigmoid").fit(
                X_cal, y_cal, sample_weight=w_cal)
    # sklearn's sigmoid is expit(-(a·f + b)): increasing in the log-odds f only when a < 0
    slope = float(calibrated.calibrated_classifiers_[0].calibrators[0].a_)
    if not slope < 0:
        return pipe, "not calibrated: the sigmoid fitted on the calibration months would reverse the ranking"
    return calibrated, f"sigmoid (Platt) calibration on {len(y_cal)} labelled rows of the newest training months"


def _with_measurement_term(pipe: Pipeline, X: np.ndarray, y: np.ndarray, w: np.ndarray | None,
                           visit: np.ndarray) -> Pipeline:
    """The logistic pipeline fitted with one more column, 1 where a visit found the label.

    A visit finds most of the isolated people it reaches; an adverse event befalls only a few of
    them. Mixed in one fit, the gap between the two would be learnt as "looks like the people
    today's rule visits"; the extra column takes it instead, the features' weights are shared,
    and the column is dropped afterwards: every person is then scored on the same footing (a
    constant left out of the log-odds changes no ranking and no reason)."""
    prepare = pipe[:-1].fit(X)
    Z = np.column_stack([prepare.transform(X), visit])
    model = pipe[-1].fit(Z, y, sample_weight=w)
    model.coef_ = model.coef_[:, :-1].copy()
    model.n_features_in_ = Z.shape[1] - 1
    return pipe


def base_pipeline(model: object) -> object:
    """The fitted pipeline inside a calibrated model (or the model itself)."""
    if isinstance(model, CalibratedClassifierCV):
        model = model.calibrated_classifiers_[0].estimator
    if isinstance(model, FrozenEstimator):
        model = model.estimator
    return model


def split_estimator(model: object, X: np.ndarray) -> tuple[object, np.ndarray]:
    """(final estimator, the matrix it sees): the pipeline's steps before it applied to X."""
    pipe = base_pipeline(model)
    if isinstance(pipe, Pipeline):
        return pipe[-1], pipe[:-1].transform(X)
    return pipe, X


def log_odds(model: object, X: np.ndarray) -> np.ndarray:
    """The uncalibrated log-odds the SHAP reasons add up to.

    For the logistic regression, each row's dot product is summed on its own: BLAS's matrix-vector
    product may sum a row in another order depending on how many rows come with it, so a list
    explained in Spark's batches differed from the same list explained whole in the last bit."""
    with one_thread():
        final, Z = split_estimator(model, X)
        if isinstance(final, LogisticRegression):
            return (Z * np.ravel(final.coef_)).sum(axis=1) + float(final.intercept_[0])
        return np.asarray(base_pipeline(model).decision_function(X), dtype="float64")


def kind(model: object) -> str:
    """'hgb', 'logit' or the class name, for reports and MLflow tags."""
    final = base_pipeline(model)
    final = final[-1] if isinstance(final, Pipeline) else final
    if isinstance(final, HistGradientBoostingClassifier):
        return "hgb"
    if isinstance(final, LogisticRegression):
        return "logit"
    return type(final).__name__
