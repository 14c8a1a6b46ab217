"""The monthly DAG: ingest (+ validate) → features → validate features → train → score → prioritise → explain → report.

Each stage is load → call a pure stage function → save: the catalogue (pipelines/catalog/)
loads and saves, the stage packages compute. The manifest records inputs' fingerprints,
config hash, versions, per-stage status and timings; a stage never reads a half-written
file, and a rerun recomputes from the lake.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Callable, Protocol

import pandas as pd

from contract.months import month_end, shift
from models.explain import explained_list
from features.groups import age_band
from models.prioritise import (Eligibility, Remedy, capacity, eligibility, excluded_at, exploration_slots, make_list,
                               visited_since)
from models.train import TrainResult, month_scores
from pipelines.catalog import lake, runs, validation
from pipelines.catalog.features import Partitions, lake_fingerprint, local_partitions, month_features
from pipelines.catalog.registry import code_version, registered_model, tracking_uri
from pipelines.config import Config
from pipelines.ahead import IngestAhead
from pipelines.ingest import FileReader, ingest_month, is_ingested, read_files_here
from pipelines.locks import work_lock
from pipelines.pseudonymise import key_id, load_key
from pipelines.training import trained_month
from reports.report import ReportInputs, report_context, report_html

Progress = Callable[[str], None]


class Engine(Protocol):
    """Where the per-file, per-partition and row-wise stages run. Every engine calls the same
    stage functions (ingest.read_file per delivered file, features_from_lake per pid range,
    month_scores, explained_list); only where they run differs, so the outputs are the same bytes."""

    partitions: Partitions
    read_files: FileReader

    def scores(self, trained: TrainResult, features: pd.DataFrame, baseline_settings: dict) -> pd.DataFrame: ...

    def explained(self, listed: pd.DataFrame, features: pd.DataFrame, reference: pd.DataFrame,
                  trained: TrainResult, key_id: str) -> tuple[pd.DataFrame, pd.DataFrame | None, float | None]: ...


@dataclass(frozen=True)
class LocalEngine:
    """This process: pid ranges one after another, scores and reasons on the whole table."""

    partitions: Partitions = local_partitions
    read_files = staticmethod(read_files_here)
    scores = staticmethod(month_scores)
    explained = staticmethod(explained_list)


ENGINES = ("local", "spark")


def engine_for(cfg: Config) -> Engine:
    """The engine `[engine]` names (`mimamori run --engine/--master` override it)."""
    settings = cfg.settings.get("engine", {})
    name = settings.get("name", "local")
    if name not in ENGINES:
        raise ValueError(f"[engine] name は {' / '.join(ENGINES)} のどれかです（{name!r} は使えません） / "
                         f"[engine] name must be one of {', '.join(ENGINES)}, not {name!r}")
    if name == "local":
        return LocalEngine()
    try:
        # imported only for the Spark engine: pyspark is an optional extra the local engine never needs
        from pipelines.spark import SparkEngine
    except ImportError as exc:
        raise ValueError("Spark エンジンには pyspark が要ります: pip install '.[spark]'（Java 17 も必要です） / "
                         "the Spark engine needs pyspark: pip install '.[spark]' (and Java 17)") from exc
    return SparkEngine.for_master(settings.get("master") or "local[2]")


def excluded_pids(cfg: Config, month: str) -> set[str]:
    """People who must not be listed at the month's as-of date (snapshot valid on that day)."""
    return excluded_at(lake.read_snapshot(cfg.lake, "exclusions", month), month_end(month))


def recently_visited(cfg: Config, month: str) -> set[str]:
    cutoff = month_end(month) - pd.Timedelta(days=cfg.get("prioritise", "recent_visit_days"))
    return visited_since(lake.read_events(cfg.lake, "outreach_outcomes", month), cutoff)


def prioritise_month(cfg: Config, month: str, feats: pd.DataFrame, scored: pd.DataFrame
                     ) -> tuple[pd.DataFrame, Eligibility, dict[str, int]]:
    """(the month's list, who was eligible, capacity per district): eligibility, the exploration
    slots and the cut (with the `[fairness]` remedy when one is configured). Total over the ward
    space: capacity 0, a district with nobody eligible or an exploration share of 0 or 1 give a
    (possibly empty) list, never an error."""
    caps = capacity(feats, cfg.get("capacity", "share_of_residents"), cfg.get("capacity", "districts"))
    ok = eligibility(feats, excluded_pids(cfg, month), recently_visited(cfg, month), cfg.get("prioritise", "min_age"))
    explore = exploration_slots(caps, cfg.get("prioritise", "exploration_share"))
    seed = cfg.get("training", "seed") + int(month.replace("-", ""))
    remedy = Remedy.of(cfg.settings["fairness"])
    eligible = scored[ok.mask]
    # scores and features are row-aligned (the mask above already relies on it)
    bands = pd.Series(age_band(feats["age"]).to_numpy()[ok.mask], index=eligible.index) if remedy.active else None
    return make_list(eligible, caps, explore, seed, remedy, bands), ok, caps


def _as_saved(data: dict) -> dict:
    """The manifest as its file holds it (keys sorted): what the report shows of the run so far."""
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def run_month(cfg: Config, month: str, progress: Progress = lambda _: None,
              ingested_ahead: dict[str, dict] | None = None, engine: Engine | None = None) -> dict:
    """Run every stage for one month; earlier months missing from the lake are ingested first.

    `ingested_ahead` holds the reports of months a helper process ingested for this month
    (see run_months); they are recorded with the ingest stage. `engine`: where the features,
    scores and reasons are computed (default: the one `[engine]` names).
    """
    engine = engine_for(cfg) if engine is None else engine
    key = load_key(cfg.key_file)
    memory_mb = cfg.get("scale", "features_memory_mb")
    manifest = runs.Manifest(cfg, month)
    months = [m for m in runs.inbox_months(cfg) if m <= month]
    if month not in months:
        raise FileNotFoundError(f"no delivery for {month} in the inbox {cfg.inbox}")
    # From here until the end the folder is in flux: its manifest says "running", so nothing
    # (approve, release, a reader after a crash) trusts a half-rewritten run folder.
    manifest.save()

    with manifest.stage("ingest") as info:
        info["months"] = {}
        for m in months:
            progress(f"ingest {m}")
            info["months"][m] = ingest_month(cfg, m, key, build_docs=False, reader=engine.read_files)["status"]
        if ingested_ahead:
            info["ahead"] = ingested_ahead
        record = lake.delivery_record(cfg.lake, month)
        manifest.data["inputs"] = {n: s["sha256"] for n, s in record["sources"].items()}
        manifest.data["key_id"] = key_id(key)

    with manifest.stage("features") as info:
        progress(f"features {month}")
        feats = month_features(cfg.work, month, memory_mb, partitions=engine.partitions)
        info["rows"] = len(feats)
        manifest.data["lake_fingerprint"] = fingerprint = lake_fingerprint(cfg.lake, month)

    with manifest.stage("validate") as info:
        info["features"] = validation.checked_features(cfg, month, feats)   # raises ValidationFailed on critical

    with manifest.stage("train") as info:
        progress(f"train {month}")
        trained: TrainResult = trained_month(
            cfg, month, min(lake.ingested_months(cfg.lake)), lake.outcomes_known_at(cfg.lake, month),
            lambda m, pids=None: month_features(cfg.work, m, memory_mb, pids, engine.partitions), fingerprint[:16],
            key_id(key))
        info.update(trained.stage_summary())
        runs.save_training(cfg, month, trained)

    with manifest.stage("score") as info:
        scored = engine.scores(trained, feats, cfg.settings["baselines"])
        runs.save_scores(cfg, month, scored)
        info["scored"] = len(scored)

    with manifest.stage("prioritise") as info:
        listed, ok, caps = prioritise_month(cfg, month, feats, scored)
        info.update(capacity=caps, excluded=ok.excluded, recently_visited=ok.recently_visited, listed=len(listed),
                    exploration=int(listed["exploration"].sum()))

    with manifest.stage("explain") as info:
        progress(f"explain {month}")
        # contributions are taken against the eligible cohort: the people the list was chosen from
        listed, explanations, base = engine.explained(listed, feats, feats[ok.mask], trained, key_id(key))
        if base is not None:
            info["base_value"] = base
        runs.save_list(cfg, month, listed)
        stored = runs.save_explanations(cfg, month, explanations)
        info["explained"] = len(listed)

    with manifest.stage("report") as info:
        progress(f"report {month}")
        saved = _as_saved(manifest.data)
        saved["stages"].pop("report")   # running: the report describes the stages before it
        previous = shift(month, -1)
        inputs = ReportInputs(
            month=month, settings=cfg.settings, manifest=saved, record=record,
            feature_checks=saved["stages"]["validate"]["features"], features=feats, listed=listed, trained=trained,
            eligibility=ok, capacity=caps, code_version=code_version(),
            data_docs=runs.link_from_report(cfg, month, saved["stages"]["validate"]["features"].get("data_docs")
                                          or (record.get("validation") or {}).get("data_docs")),
            list_path=str(runs.list_file(cfg, month)), mlflow_uri=tracking_uri(cfg.mlflow_db),
            model_name=registered_model(cfg),
            previous_features=runs.drift_reference(cfg, previous, previous in lake.ingested_months(cfg.lake),
                                                   lambda m: month_features(cfg.work, m, partitions=engine.partitions)),
            previous_scores=runs.previous_scores(cfg, month, previous), scores=scored[["score"]])
        context = report_context(inputs)
        # the serving version's card as written at its registration; a rule's list has none
        has_card = runs.save_serving_card(cfg, month, trained.model_version if trained.mode == "model" else None)
        context = replace(context, explanations=str(stored) if stored else None,
                          model_card="model_card.html" if has_card else None)
        info["path"] = str(runs.save_report(cfg, month, report_html(context)))

    return manifest.done(cfg)


def run_months(cfg: Config, months: list[str], progress: Progress = lambda _: None,
               done: Callable[[dict], None] = lambda _: None) -> list[dict]:
    """Run `months` in order (`done` is told each month's manifest as it lands).

    When more than one month still needs ingesting and `scale.ingest_ahead` is on, a second
    process ingests them in order meanwhile (pipelines/ahead.py); its timings are recorded in
    the ingest stage of the month that first needed them, under "ahead".
    """
    with work_lock(cfg):   # re-entrant: the CLI already holds it; library callers take it here
        key = load_key(cfg.key_file)
        needed = [m for m in runs.inbox_months(cfg) if m <= max(months) and not is_ingested(cfg, m, key)]
        engine = engine_for(cfg)   # one engine (one Spark session) for every month; before the helper starts
        # the helper process reads files one after another; on Spark the executors read them
        overlap = isinstance(engine, LocalEngine) and cfg.get("scale", "ingest_ahead")
        ahead = IngestAhead(cfg, needed) if overlap and len(needed) > 1 else None
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
                manifests.append(run_month(cfg, month, progress, ingested_ahead=reports, engine=engine))
                done(manifests[-1])
        finally:
            if ahead is not None:
                ahead.close()
        return manifests
