"""The MLflow registry as a dataset of the catalogue: look-ups, logging, promotion, model cards.

MLflow runs on the embedded default: a SQLite store and artifacts under the analyst zone
(<work>/mlflow/). Every call into MLflow is here; the models package never sees it.
"""
from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pandas as pd

from contract import telemetry  # noqa: F401  (telemetry off before mlflow is imported)
from features.catalog import MODEL_FEATURES
from models.train import FEATURE_SET, TrainResult, score_model
from pipelines.config import Config

EXPERIMENT = "mimamori"
REGISTERED_MODEL = "mimamori-risk"   # a one-ward installation's; a ward's is registered_model(cfg)
CHAMPION = "champion"
CARD_TAG = "model_card_sha256"   # the version's card as written at registration (pipelines/training.py)
MODEL_DESCRIPTION = (
    "mimamori（見守り）: 社会的孤立のリスクで、地区ごとの訪問優先リストを作るモデル / isolation-risk scores that order "
    "each district's outreach list. Each version is refitted monthly from pseudonymised ward records and "
    "serves only when promoted (alias `champion`); each version's model card is an artifact of its run "
    "under model_card/ and its SHA-256 is the version's tag model_card_sha256.")

# Types skops will not load without being told to, reviewed for the models we log: the tree
# predictor is sklearn's own compiled node array; the calibration wrappers are sklearn's Platt
# scaling; numpy.dtype is the imputers' stored dtype (a type descriptor, no code runs). Anything
# else appearing here (a new sklearn version, another estimator) must be reviewed before it is
# trusted, so training stops instead.
REVIEWED_TRUSTED_TYPES = frozenset({
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "numpy.dtype",
})


def registered_model(cfg: Config) -> str:
    """The registered model of the config's ward: `mimamori-risk-<ward>` (`mimamori-risk` without
    `--ward`). Each ward's zones hold their own MLflow store already; the name says whose model
    a version is wherever it is seen (an exported model, a shared tracking server)."""
    return REGISTERED_MODEL if cfg.ward is None else f"{REGISTERED_MODEL}-{cfg.ward}"


def tracking_uri(db: Path) -> str:
    return f"sqlite:///{db.resolve()}"


def connect(cfg: Config):
    """Point MLflow at the work dir's store (never at ./mlruns or the cwd) and return the module.

    mlflow is imported here, on first use: its import takes seconds, and most commands
    (ingest, release, audit) never need it."""
    import mlflow  # heavy: seconds to import, and most commands never need it

    db, artifacts = cfg.mlflow_db, cfg.mlflow_artifacts
    db.parent.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri(db)
    mlflow.set_tracking_uri(tracking_uri(db))
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts.resolve().as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return mlflow


def client(cfg: Config):
    return connect(cfg).MlflowClient()


def load_version(cfg: Config, version) -> object:
    connect(cfg)
    import mlflow.sklearn   # a submodule of the heavy import above

    return mlflow.sklearn.load_model(f"models:/{registered_model(cfg)}/{version.version if hasattr(version, 'version') else version}")


def code_version() -> str:
    """The git commit the code runs from ("unknown" outside a checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(cfg: Config, month: str, fingerprint: str, key_id: str) -> dict[str, str]:
    """The tags that identify a version's inputs, config and code."""
    tags = {"month": month, "key_id": key_id, "config_hash": cfg.config_hash,
            "code_version": code_version(), "lake_fingerprint": fingerprint, "feature_set": FEATURE_SET}
    # a ward's runs and versions say whose they are (a one-ward installation's carry no ward tag)
    return tags if cfg.ward is None else tags | {"ward": cfg.ward, "registered_model": registered_model(cfg)}


def promote(cfg: Config, month: str, version: str) -> None:
    """Alias the version `champion` unless the champion already serves a later month
    (rerunning an old month must not roll the ward's model back)."""
    mlflow_client = client(cfg)
    try:
        current = mlflow_client.get_model_version_by_alias(registered_model(cfg), CHAMPION)
        if current.tags.get("month", "") > month:
            return
    except Exception:  # no champion yet
        pass
    mlflow_client.set_registered_model_alias(registered_model(cfg), CHAMPION, version)


def incumbent(cfg: Config, month: str) -> tuple[object, str] | None:
    """(model, version) of the champion as it stood before `month`: the newest version promoted
    for an earlier month, on today's features and key. Found by tags, not by the alias, so that
    rerunning a month compares with the same champion as its first run did."""
    versions = client(cfg).search_model_versions(f"name='{registered_model(cfg)}' and tag.promoted='true'")
    usable = [v for v in versions if v.tags.get("month", "") < month and v.tags.get("feature_set") == FEATURE_SET
              and v.tags.get("key_retired") != "true"]
    if not usable:
        return None
    version = max(usable, key=lambda v: (v.tags["month"], int(v.version)))
    return load_version(cfg, version), str(version.version)


def champion(cfg: Config) -> tuple[object, str] | None:
    """(model, version) under the `champion` alias, or None."""
    try:
        version = client(cfg).get_model_version_by_alias(registered_model(cfg), CHAMPION)
    except Exception:  # no champion yet
        return None
    return load_version(cfg, version), str(version.version)


def reusable(cfg: Config, tags: dict[str, str]) -> tuple[object, object] | None:
    """(model, version) already trained from exactly these inputs, config and code, if any.

    Rerunning a month then yields the same model version instead of a duplicate, so the
    list (which names its model version) stays byte-identical.
    """
    versions = client(cfg).search_model_versions(f"name='{registered_model(cfg)}' and tag.month='{tags['month']}'")
    for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
        if all(version.tags.get(k) == v for k, v in tags.items()):
            return load_version(cfg, version), version
    return None


def reviewed_trusted_types(untrusted: list[str]) -> list[str]:
    unreviewed = sorted(set(untrusted) - REVIEWED_TRUSTED_TYPES)
    if unreviewed:
        raise RuntimeError("skops would need to trust types nobody has reviewed: " + ", ".join(unreviewed)
                           + " — review them and add them to pipelines/catalog/registry.py REVIEWED_TRUSTED_TYPES")
    return sorted(untrusted)


def _png_image(png: bytes):
    from PIL import Image   # only to hand MLflow an image object

    return Image.open(io.BytesIO(png))


def log_training(cfg: Config, model, result: TrainResult, train_frame: pd.DataFrame,
                 tags: dict[str, str]) -> tuple[str, str]:
    """Log the refitted challenger's run and register it: (run id, version)."""
    mlflow = connect(cfg)
    # submodules of the heavy import above, loaded only when a model is logged
    import mlflow.sklearn
    import skops.io as sio
    from mlflow.models import infer_signature

    month = tags["month"]
    X = train_frame[MODEL_FEATURES].astype("float64")
    promoted = result.serving == "challenger"
    with mlflow.start_run(run_name=f"train-{month}") as run:
        mlflow.set_tags(tags | {"promoted": str(promoted).lower(), "candidate": result.challenger or "",
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
        run_id = run.info.run_id
    # The version is created with its tags in one registry transaction: a process killed here
    # leaves either no version (the rerun registers the same number) or a tagged one that
    # `reusable` finds — never an untagged version that would push the rerun's number up.
    registered = mlflow.register_model(
        info.model_uri, registered_model(cfg),
        tags=tags | {"candidate": result.challenger or "", "promoted": str(promoted).lower()})
    version = str(registered.version)
    if promoted:
        promote(cfg, month, version)
    return run_id, version


def card_hash(cfg: Config, version: str) -> str | None:
    """The SHA-256 of the version's card recorded when it was attached, or None (not yet attached)."""
    return client(cfg).get_model_version(registered_model(cfg), version).tags.get(CARD_TAG)


def attach_model_card(cfg: Config, version: str, run_id: str, paths: list[Path], sha256: str,
                      description: str) -> None:
    """Attach a version's card to its run (model_card/), describe the version and the registered
    model, and tag the version with the card's SHA-256 last: the tag says the card is complete."""
    mlflow_client = client(cfg)
    for path in paths:
        mlflow_client.log_artifact(run_id, str(path), "model_card")
    mlflow_client.update_registered_model(registered_model(cfg), description=MODEL_DESCRIPTION)
    mlflow_client.update_model_version(registered_model(cfg), version, description=description)
    mlflow_client.set_model_version_tag(registered_model(cfg), version, CARD_TAG, sha256)
