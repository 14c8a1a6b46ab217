"""The run folders and what the monthly run writes into them.

    <inbox>/<YYYY-MM>/                   a delivery (the residents extract marks it complete)
    <work>/runs/<YYYY-MM>/manifest.json  inputs' fingerprints, config hash, versions, per-stage status and timings
        training.json                    the train stage's result (TrainResult.record)
        scores.parquet                   every resident's score (pid, district, score)
        list.parquet                     the month's pseudonymous list with reasons
        explanations.parquet             the listed people's SHAP contributions (a model's list only)
        report/index.html                the monthly report; report/model_card.html beside it
        explain/<pid>.png                an auditor's waterfall chart of one person
    <work>/model_cards/v<N>/             the card of each registered version (md, html), written once
                                         at registration; report/model_card.html is the serving version's

Every write is atomic (contract/storage.py). A manifest says "running" from the run's start
until every output is written and fingerprinted in its `outputs`, so nothing trusts a
half-rewritten folder.
"""
from __future__ import annotations

import platform
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from contract import faults
from contract.storage import file_sha256, read_json, read_parquet, write_bytes, write_json, write_parquet, write_text
from features.catalog import MODEL_FEATURES
from models.train import TrainResult
from pipelines import __version__
from pipelines.config import Config
from pipelines.reading import delivery_file
from pipelines.resources import peak_rss, release_memory

EXPLANATIONS = "explanations.parquet"
# The run folder's data outputs the manifest vouches for once the run is done.
RUN_OUTPUTS = ("training.json", "scores.parquet", "list.parquet", EXPLANATIONS, "report/index.html")


def inbox_months(cfg: Config, pending: bool = False) -> list[str]:
    """Delivery months in the inbox. A month folder without a residents extract is still being
    delivered (e.g. it holds only outcomes imported from returned sheets): it is listed only
    with `pending=True`."""
    if not cfg.inbox.is_dir():
        return []
    folders = sorted(p for p in cfg.inbox.iterdir() if p.is_dir() and len(p.name) == 7 and p.name[4] == "-")
    return [p.name for p in folders if pending != (delivery_file(p, "residents") is not None)]


def inbox_dir(cfg: Config, month: str) -> Path:
    """The delivery folder of a month: <inbox>/<YYYY-MM>/."""
    return cfg.inbox / month


def run_dir(cfg: Config, month: str) -> Path:
    return cfg.runs / month


def list_file(cfg: Config, month: str) -> Path:
    return run_dir(cfg, month) / "list.parquet"


def report_dir(cfg: Config, month: str) -> Path:
    return run_dir(cfg, month) / "report"


def report_file(cfg: Config, month: str) -> Path:
    return report_dir(cfg, month) / "index.html"


def features_file(cfg: Config, month: str) -> Path:
    """The cached feature table of an as-of month (pipelines/catalog/features.py keeps it)."""
    return cfg.features_dir / f"{month}.parquet"


class Manifest:
    """The run's manifest, saved after every stage (its timings and peak memory recorded)."""

    def __init__(self, cfg: Config, month: str):
        self.path = run_dir(cfg, month) / "manifest.json"
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

    def done(self, cfg: Config) -> dict:
        """Fingerprint the outputs and mark the run complete."""
        self.data["outputs"] = run_outputs(run_dir(cfg, self.data["month"]))
        self.data["status"] = "done"
        self.save()
        return self.data


def run_outputs(folder: Path) -> dict[str, str]:
    """SHA-256 of each data output present in the run folder (relative path -> digest)."""
    return {name: file_sha256(folder / name) for name in RUN_OUTPUTS if (folder / name).exists()}


def months_run(cfg: Config) -> list[str]:
    """The months with a run folder (complete or not), oldest first."""
    if not cfg.runs.is_dir():
        return []
    return sorted(p.name for p in cfg.runs.iterdir() if p.is_dir() and (p / "manifest.json").exists())


def read_manifest(cfg: Config, month: str) -> dict | None:
    path = run_dir(cfg, month) / "manifest.json"
    return read_json(path) if path.exists() else None


def completed_run(cfg: Config, month: str) -> dict | None:
    """The month's manifest if its run completed and every output it names still has the bytes
    it had then; None for a run that is missing, running, failed, killed midway or altered since."""
    manifest = read_manifest(cfg, month)
    if manifest is None or manifest.get("status") != "done" or "outputs" not in manifest:
        return None
    folder = run_dir(cfg, month)
    for name, digest in manifest["outputs"].items():
        if not (folder / name).exists() or file_sha256(folder / name) != digest:
            return None
    return manifest


def save_training(cfg: Config, month: str, trained: TrainResult) -> None:
    write_json(trained.record(), run_dir(cfg, month) / "training.json")


def save_scores(cfg: Config, month: str, scored: pd.DataFrame) -> None:
    write_parquet(scored, run_dir(cfg, month) / "scores.parquet")


# `score` ranks (internal); `top_percent`/`band`/`band_en` are what people are shown instead
LIST_COLUMNS = ["pid", "rank", "district", "score", "top_percent", "band", "band_en", "reasons", "reasons_en",
                "reason_features", "reason_contributions", "exploration", "source", "model_version", "key_id"]


def save_list(cfg: Config, month: str, listed: pd.DataFrame) -> None:
    write_parquet(listed[LIST_COLUMNS], list_file(cfg, month))


def save_explanations(cfg: Config, month: str, table: pd.DataFrame | None) -> Path | None:
    """Store the listed people's contributions; None (and no stale file) when a rule made the list."""
    path = run_dir(cfg, month) / EXPLANATIONS
    if table is None:
        path.unlink(missing_ok=True)
        return None
    write_parquet(table, path)
    return path


def previous_scores(cfg: Config, month: str, previous: str) -> pd.DataFrame | None:
    """Last month's score column, if that month was run."""
    path = run_dir(cfg, previous) / "scores.parquet"
    return read_parquet(path, columns=["score"]) if path.exists() else None


def link_from_report(cfg: Config, month: str, docs: str | None) -> str | None:
    """The month's Data Docs (a work-relative path) as a link from the report folder."""
    if not docs:
        return None
    work = cfg.work.resolve()
    target = (cfg.work / docs).resolve()
    folder = report_dir(cfg, month).resolve()
    if not target.is_relative_to(work):
        return str(target)
    return Path(*([".."] * len(folder.relative_to(work).parts)), target.relative_to(work)).as_posix()


def card_dir(cfg: Config, version: str) -> Path:
    return cfg.work / "model_cards" / f"v{version}"


def card_versions(cfg: Config) -> list[str]:
    """The registered versions whose card is whole (its HTML written last), lowest first."""
    folder = cfg.work / "model_cards"
    if not folder.is_dir():
        return []
    found = [p.name[1:] for p in folder.iterdir() if p.name[:1] == "v" and p.name[1:].isdigit()
             and (p / "model_card.html").exists()]
    return sorted(found, key=int)


def card_paths(cfg: Config, version: str) -> list[Path]:
    """The version's card: [model_card.md, model_card.html] under <work>/model_cards/v<N>/."""
    folder = card_dir(cfg, version)
    return [folder / "model_card.md", folder / "model_card.html"]


def model_card_sha256(cfg: Config, version: str) -> str | None:
    """SHA-256 of the version's HTML card as it is on disk; None when the version has no card."""
    html = card_paths(cfg, version)[1]
    return file_sha256(html) if html.exists() else None


def write_model_card(cfg: Config, version: str, markdown: str, html: str) -> list[Path]:
    """Write a version's card (md first, html last: the html's presence says the card is whole).
    Called once per version, at registration; an existing card is never rewritten."""
    paths = card_paths(cfg, version)
    write_text(markdown, paths[0])
    write_text(html, paths[1])
    return paths


def save_serving_card(cfg: Config, month: str, version: str | None) -> bool:
    """Copy the serving version's card, unchanged, beside the month's report; when a rule serves
    (or the version has no card), no card stays beside the report."""
    beside = report_dir(cfg, month) / "model_card.html"
    card = card_paths(cfg, version)[1] if version else None
    if card is None or not card.exists():
        beside.unlink(missing_ok=True)
        return False
    write_bytes(card.read_bytes(), beside)
    return True


def save_report(cfg: Config, month: str, html: str) -> Path:
    path = report_file(cfg, month)
    write_text(html, path)
    return path


def save_waterfall(cfg: Config, month: str, pid: str, png: bytes) -> Path:
    return write_bytes(png, run_dir(cfg, month) / "explain" / f"{pid}.png")


def drift_reference(cfg: Config, previous: str, ingested: bool, month_features) -> pd.DataFrame | None:
    """Last month's features (the drift columns), from the cache, or computed when only its
    delivery is in the lake; None before the first month."""
    path = features_file(cfg, previous)
    if path.exists():   # only the drift columns: a million pids cost more to convert than the rest
        return read_parquet(path, columns=MODEL_FEATURES)
    return month_features(previous) if ingested else None
