"""MLflow on the embedded default: a SQLite store and artifacts under the analyst zone."""
from __future__ import annotations

import os
from pathlib import Path

from contract import telemetry  # noqa: F401  (switches telemetry off before mlflow is imported)

EXPERIMENT = "mimamori"
REGISTERED_MODEL = "mimamori-risk"
CHAMPION = "champion"


def tracking_uri(db: Path) -> str:
    return f"sqlite:///{db.resolve()}"


def connect(db: Path, artifacts: Path):
    """Point MLflow at the work dir's store (never at ./mlruns or the cwd) and return the module."""
    import mlflow

    db.parent.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri(db)
    mlflow.set_tracking_uri(tracking_uri(db))
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts.resolve().as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return mlflow
