"""The monthly DAG: ingest (+ validate) → features → validate features → train → score → prioritise → explain → report.

Stages are called in order; each writes its outputs atomically into runs/<month>/ and the
manifest records inputs' fingerprints, config hash, versions, per-stage status and timings.
A stage never reads a half-written file, and a rerun recomputes from the lake.
"""
from __future__ import annotations

import platform
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from features.catalog import EXPLORATION
from pipelines.catalog.features import lake_fingerprint, month_features
from models.train import TrainResult, score_model, train_month
from contract import faults
from pipelines import __version__
from pipelines.catalog import lake, validation
from pipelines.config import Config
from pipelines.ingest import ingest_month
from contract.months import month_end
from pipelines.prioritise import capacity, eligible, exploration_slots, make_list
from pipelines.pseudonymise import key_id, load_key
from pipelines.reading import delivery_file
from pipelines.resources import peak_rss, release_memory
from contract.storage import file_sha256, read_json, write_json, write_parquet

Progress = Callable[[str], None]


def inbox_months(cfg: Config, pending: bool = False) -> list[str]:
    """Delivery months in the inbox. A month folder without a residents extract is still being
    delivered (e.g. it holds only outcomes imported from returned sheets): it is listed only
    with `pending=True`."""
    if not cfg.inbox.is_dir():
        return []
    folders = sorted(p for p in cfg.inbox.iterdir() if p.is_dir() and len(p.name) == 7 and p.name[4] == "-")
    return [p.name for p in folders if pending != (delivery_file(p, "residents") is not None)]


class Manifest:
    def __init__(self, path: Path, month: str, cfg: Config):
        self.path = path
        self.data = {"month": month, "config_hash": cfg.config_hash, "code_version": __version__,
                     "python": platform.python_version(), "stages": {}, "status": "running"}

    @contextmanager
    def stage(self, name: str) -> Iterator[dict]:
        faults.checkpoint(f"stage:{name}")
        info: dict = {"status": "running"}
        self.data["stages"][name] = info
        start, cpu = time.perf_counter(), time.process_time()
        memory: dict = {"peak_mb": None}
        try:
            with peak_rss() as memory:
                yield info
            info["status"] = "done"
        except BaseException as exc:
            info["status"] = "failed"
            info["error"] = type(exc).__name__
            self.data["status"] = "failed"
            raise
        finally:
            info["seconds"] = round(time.perf_counter() - start, 3)
            info["cpu_seconds"] = round(time.process_time() - cpu, 3)
            info["peak_rss_mb"] = memory["peak_mb"]
            self.save()
            release_memory()

    def save(self) -> None:
        write_json(self.data, self.path)


def excluded_pids(cfg: Config, month: str) -> set[str]:
    """People who must not be listed at the month's as-of date (snapshot valid on that day)."""
    ex = lake.read_snapshot(cfg.lake, "exclusions", month)
    if ex is None or not len(ex):
        return set()
    as_of = month_end(month)
    valid = (ex["valid_from"].isna() | (ex["valid_from"] <= as_of)) & (ex["valid_to"].isna() | (ex["valid_to"] >= as_of))
    return set(ex.loc[valid, "pid"])


def recently_visited(cfg: Config, month: str) -> set[str]:
    visits = lake.read_events(cfg.lake, "outreach_outcomes", month)
    if visits is None or not len(visits):
        return set()
    cutoff = month_end(month) - pd.Timedelta(days=cfg.get("prioritise", "recent_visit_days"))
    return set(visits.loc[visits["visit_date"] > cutoff, "pid"])


def prioritise_month(cfg: Config, month: str, feats: pd.DataFrame, scored: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """(the month's list, what the manifest records): capacity per district, eligibility, the
    exploration slots and the cut. Total over the ward space: capacity 0, a district with nobody
    eligible or an exploration share of 0 or 1 give a (possibly empty) list, never an error."""
    caps = capacity(feats, cfg.get("capacity", "share_of_residents"), cfg.get("capacity", "districts"))
    excluded, visited = excluded_pids(cfg, month), recently_visited(cfg, month)
    ok = eligible(feats, excluded, visited, cfg.get("prioritise", "min_age"))
    explore = exploration_slots(caps, cfg.get("prioritise", "exploration_share"))
    seed = cfg.get("training", "seed") + int(month.replace("-", ""))
    listed = make_list(scored[ok.to_numpy()], caps, explore, seed)
    return listed, {"capacity": caps, "excluded": int(feats["pid"].isin(excluded).sum()),
                    "recently_visited": int(feats["pid"].isin(visited).sum()), "listed": len(listed),
                    "exploration": int(listed["exploration"].sum())}


def run_month(cfg: Config, month: str, progress: Progress = lambda _: None,
              ingested_ahead: dict[str, dict] | None = None) -> dict:
    """Run every stage for one month; earlier months missing from the lake are ingested first.

    `ingested_ahead` holds the reports of months a helper process ingested for this month
    (see run_months); they are recorded with the ingest stage.
    """
    from models.baselines import BASELINES
    from models.explain import reasons, rule_reasons, shap_values
    from reports.report import write_report

    key = load_key(cfg.key_file)
    run_dir = cfg.runs / month
    manifest = Manifest(run_dir / "manifest.json", month, cfg)
    months = [m for m in inbox_months(cfg) if m <= month]
    if month not in months:
        raise FileNotFoundError(f"no delivery for {month} in the inbox {cfg.inbox}")
    # From here until the end the folder is in flux: its manifest says "running", so nothing
    # (approve, release, a reader after a crash) trusts a half-rewritten run folder.
    manifest.save()

    with manifest.stage("ingest") as info:
        results = {}
        for m in months:
            progress(f"ingest {m}")
            results[m] = ingest_month(cfg, m, key, build_docs=False)["status"]
        info["months"] = results
        if ingested_ahead:
            info["ahead"] = ingested_ahead
        delivery = lake.delivery_record(cfg.lake, month)
        manifest.data["inputs"] = {n: s["sha256"] for n, s in delivery["sources"].items()}
        manifest.data["key_id"] = key_id(key)

    with manifest.stage("features") as info:
        progress(f"features {month}")
        feats = month_features(cfg.work, month, cfg.get("scale", "features_memory_mb"))
        info["rows"] = len(feats)
        fingerprint = lake_fingerprint(cfg.lake, month)
        manifest.data["lake_fingerprint"] = fingerprint

    with manifest.stage("validate") as info:
        info["features"] = validation.checked_features(cfg, month, feats)   # raises ValidationFailed on critical

    with manifest.stage("train") as info:
        progress(f"train {month}")
        first = min(lake.ingested_months(cfg.lake))
        trained: TrainResult = train_month(cfg, month, first, lambda m, pids=None: month_features(cfg.work, m, cfg.get("scale", "features_memory_mb"), pids),
                                           fingerprint[:16], key_id(key))
        info.update(mode=trained.mode, serving=trained.serving, reason=trained.reason,
                    model_version=trained.model_version, run_id=trained.run_id, holdout_month=trained.holdout_month)
        write_json({"mode": trained.mode, "serving": trained.serving, "reason": trained.reason,
                    "baseline": trained.baseline, "model_version": trained.model_version,
                    "challenger": trained.challenger, "challenger_version": trained.challenger_version,
                    "champion_version": trained.champion_version, "mlflow_run_id": trained.run_id,
                    "criterion": trained.criterion, "new_fairness_flags": trained.new_flags,
                    "holdout_month": trained.holdout_month, "train_months": trained.train_months,
                    "calibration_months": trained.calibration_months, "calibration": trained.calibration,
                    "evaluation": trained.evaluation, "candidates": trained.candidates,
                    "fairness": trained.fairness, "label_counts": trained.label_counts},
                   run_dir / "training.json")

    with manifest.stage("score") as info:
        if trained.mode == "model":
            scores = score_model(trained.model, feats)
        else:
            scores = BASELINES[trained.baseline][2](feats, cfg.settings["baselines"])
        scored = feats[["pid", "district"]].assign(score=np.round(scores, 6))
        write_parquet(scored, run_dir / "scores.parquet")
        info["scored"] = len(scored)

    with manifest.stage("prioritise") as info:
        listed, figures = prioritise_month(cfg, month, feats, scored)
        info.update(figures)

    with manifest.stage("explain") as info:
        progress(f"explain {month}")
        chosen = feats.set_index("pid").loc[listed["pid"]].reset_index()
        if trained.mode == "model" and len(chosen):
            values, base = shap_values(trained.model, chosen)
            why = reasons(chosen, values)
            info["base_value"] = base
        elif trained.mode == "model":   # nobody listed (capacity 0 or nobody eligible): nothing to explain
            why = reasons(chosen, np.zeros((0, 0)))
        else:
            why = rule_reasons(chosen, trained.baseline)
        listed = listed.merge(why, on="pid", how="left", validate="one_to_one")
        picked = listed["exploration"]
        listed.loc[picked, "reasons"] = EXPLORATION[0] + "、" + listed.loc[picked, "reasons"]
        listed.loc[picked, "reasons_en"] = EXPLORATION[1] + "; " + listed.loc[picked, "reasons_en"]
        listed["source"] = "model" if trained.mode == "model" else f"baseline:{trained.baseline}"
        listed["model_version"] = trained.model_version or ""
        listed["key_id"] = key_id(key)
        write_parquet(listed[["pid", "rank", "district", "score", "reasons", "reasons_en", "reason_features",
                              "reason_contributions", "exploration", "source", "model_version", "key_id"]],
                      run_dir / "list.parquet")
        info["explained"] = len(listed)

    with manifest.stage("report") as info:
        progress(f"report {month}")
        info["path"] = str(write_report(cfg, month, feats, listed, trained))

    manifest.data["outputs"] = run_outputs(run_dir)
    manifest.data["status"] = "done"
    manifest.save()
    return manifest.data


# The run folder's data outputs the manifest vouches for once the run is done.
RUN_OUTPUTS = ("training.json", "scores.parquet", "list.parquet", "explanations.parquet", "report/index.html")


def run_outputs(run_dir: Path) -> dict[str, str]:
    """SHA-256 of each data output present in the run folder (relative path -> digest)."""
    return {name: file_sha256(run_dir / name) for name in RUN_OUTPUTS if (run_dir / name).exists()}


def completed_run(cfg: Config, month: str) -> dict | None:
    """The month's manifest if its run completed and every output it names still has the bytes
    it had then; None for a run that is missing, running, failed, killed midway or altered since."""
    manifest = read_manifest(cfg, month)
    if manifest is None or manifest.get("status") != "done" or "outputs" not in manifest:
        return None
    run_dir = cfg.runs / month
    for name, digest in manifest["outputs"].items():
        if not (run_dir / name).exists() or file_sha256(run_dir / name) != digest:
            return None
    return manifest


def run_months(cfg: Config, months: list[str], progress: Progress = lambda _: None,
               done: Callable[[dict], None] = lambda _: None) -> list[dict]:
    """Run `months` in order (`done` is told each month's manifest as it lands).

    When more than one month still needs ingesting and `scale.ingest_ahead` is on, a second
    process ingests them in order meanwhile (pipelines/ahead.py); its timings are recorded in
    the ingest stage of the month that first needed them, under "ahead".
    """
    from pipelines.ahead import IngestAhead
    from pipelines.ingest import is_ingested
    from pipelines.locks import work_lock

    with work_lock(cfg):   # re-entrant: the CLI already holds it; library callers take it here
        key = load_key(cfg.key_file)
        needed = [m for m in inbox_months(cfg) if m <= max(months) and not is_ingested(cfg, m, key)]
        ahead = IngestAhead(cfg, needed) if cfg.get("scale", "ingest_ahead") and len(needed) > 1 else None
        manifests = []
        try:
            for month in months:
                reports = {}
                if ahead is not None:
                    for m in [m for m in needed if m <= month]:
                        report = ahead.wait_for(m)
                        if report is not None:
                            reports[m] = report
                    needed = [m for m in needed if m > month]
                manifests.append(run_month(cfg, month, progress, ingested_ahead=reports))
                done(manifests[-1])
        finally:
            if ahead is not None:
                ahead.close()
        return manifests


def read_manifest(cfg: Config, month: str) -> dict | None:
    path = cfg.runs / month / "manifest.json"
    return read_json(path) if path.exists() else None
