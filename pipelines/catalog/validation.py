"""Validation's datasets: what the lake knew before a delivery, the GX results of a month and its
Data Docs site. The checks themselves are pure (expectations/validate.py); this module loads their
inputs and saves their outputs.

    <work>/validation/<month>/<suite>.json     GX results of the latest validation of the month's
                                               delivery (committed or refused) and of its features
    <work>/runs/<month>/data_docs/index.html   Data Docs built from those files, naming every suite
    <work>/runs/<month>/data_docs/validations/<suite>.html   one page per validated table

The results are sanitised before they get here (expectations/results.py): counts and observed
aggregates only, no row labels, no random ids, so neither the JSON nor the HTML holds personal
data, and the same delivery gives the same bytes.

The HTML is our own static site (reports/data_docs.py), not GX's site builder: GX's pages load 17
resources from public CDNs and draw the index with JavaScript, so on an offline PC they are blank.
Ours hold one inline style sheet and no script, and load nothing: an index of every suite and one
page per validated table (expectations, observed values, unexpected counts, rows quarantined and
why).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pandas as pd

from contract import telemetry  # noqa: F401  (telemetry off before GX is imported)
from contract.storage import read_json, write_json
from expectations.checks import EarlierDeliveries, EarlierIds
from expectations.policy import REASON_PREFIX, ValidationFailed, failure_message
from expectations.suite_spec import FEATURES, suites_by_name
from expectations.validate import DeliveryCheck, delivery_check, feature_check
from pipelines.catalog import lake
from contract.messages import bilingual
from pipelines.config import Config
from reports.data_docs import INDEX, data_docs_pages

# ------------------------------------------------------------------------------------ paths


def results_dir(work: Path, month: str) -> Path:
    return work / "validation" / month


def result_file(work: Path, month: str, suite: str) -> Path:
    return results_dir(work, month) / f"{suite}.json"


def docs_dir(work: Path, month: str) -> Path:
    return work / "runs" / month / "data_docs"


def data_docs_path(work: Path, month: str) -> Path:
    return docs_dir(work, month) / "index.html"


def data_docs_link(work: Path, month: str) -> str | None:
    """The Data Docs index relative to the work dir, as the summaries name it (None: not built)."""
    index = data_docs_path(work, month)
    return index.relative_to(work).as_posix() if index.exists() else None


# ----------------------------------------------------------------------------------- inputs


def earlier_months(lake_dir: Path, month: str) -> list[str]:
    """Delivered months before `month`, newest first (only deliveries whose record landed)."""
    return sorted((m for m in lake.ingested_months(lake_dir) if m < month), reverse=True)


def earlier_snapshot_ids(lake_dir: Path, month: str) -> EarlierIds:
    """column -> that column of each earlier residents snapshot, newest first, read lazily."""
    def ids(column: str) -> Iterator[pd.Series]:
        for m in earlier_months(lake_dir, month):
            snapshot = lake.read_snapshot(lake_dir, "residents", m, columns=[column])   # checked against its record
            if snapshot is not None:
                yield snapshot[column]
    return ids


def earlier_deliveries(lake_dir: Path, month: str) -> EarlierDeliveries:
    """What the lake knew before `month`: whether it holds an earlier residents snapshot, those
    snapshots' pseudonyms (read only when asked), and the latest earlier delivery's row counts."""
    earlier = earlier_months(lake_dir, month)
    history = any(lake.source_file(lake_dir, "residents", m).exists() for m in earlier)
    previous: dict[str, int] = {}
    if earlier:
        record = lake.delivery_record(lake_dir, earlier[0])
        previous = {source: int(info["rows"]) for source, info in (record or {}).get("sources", {}).items()}
    return EarlierDeliveries(history, earlier_snapshot_ids(lake_dir, month), previous)


def residents_accepted(lake_dir: Path, month: str) -> int | None:
    """Residents the month's delivery record accepted: the feature table's expected rows (None: no record)."""
    record = lake.delivery_record(lake_dir, month)
    return None if record is None else int(record["sources"]["residents"]["accepted"])


# ---------------------------------------------------------------------------------- outputs


def save_results(work: Path, month: str, results: dict[str, dict]) -> None:
    """Write each suite's sanitised results to <work>/validation/<month>/<suite>.json."""
    for suite, raw in results.items():
        write_json(raw, result_file(work, month, suite))


def remove_results(work: Path, month: str, keep: set[str]) -> None:
    """Drop result files of suites not in `keep` (a source no longer delivered, stale features)."""
    folder = results_dir(work, month)
    if folder.is_dir():
        for path in folder.glob("*.json"):
            if path.stem not in keep:
                path.unlink()


def _delivered(delivery: dict | None) -> dict[str, dict]:
    """source -> what a delivery's summary (or committed record) says of its table for the Data Docs:
    file, rows delivered, rows quarantined by the contract and by validation, the contract's reasons.
    Validation's own reasons are left out: the pages read them from the failed checks, so a site
    built before the commit (ingest, validate) and one built after (run) say the same."""
    counts = ((delivery or {}).get("validation") or {}).get("sources", {})
    return {name: {"file": info.get("file"), "rows": counts.get(name, {}).get("rows", info.get("rows")),
                   "contract": counts.get(name, {}).get("quarantined_contract"),
                   "validation": counts.get(name, {}).get("quarantined_validation"),
                   "reasons": {r: int(n) for r, n in info.get("quarantine_reasons", {}).items()
                               if not r.startswith(REASON_PREFIX)}}
            for name, info in (delivery or {}).get("sources", {}).items()}


def build_data_docs(work: Path, month: str, delivery: dict | None = None) -> Path:
    """(Re)build <work>/runs/<month>/data_docs from the month's result files; returns index.html.

    `delivery` is the month's delivery summary or record (its sources and validation summary), for
    the quarantine counts and reasons; None for none. Built in a hidden sibling and swapped in
    whole, so a reader never sees half a site and pages of other months never mix in.
    """
    folder = results_dir(work, month)
    results = {path.stem: read_json(path) for path in sorted(folder.glob("*.json"))} if folder.is_dir() else {}
    defined = {name: len(spec.get("expectations", [])) for name, spec in suites_by_name().items()}
    pages = data_docs_pages(month, results, defined, _delivered(delivery))
    target = docs_dir(work, month)
    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".data_docs.", dir=target.parent))
    try:
        for name, text in sorted(pages.items()):
            page = build / name
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(text, encoding="utf-8")
        os.chmod(build, 0o755)
        old = target.with_name(f".data_docs.old.{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        os.replace(build, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return target / INDEX


# ------------------------------------------------------------------ the stages, loaded and saved


def _settings(cfg: Config) -> dict:
    return cfg.settings.get("validation", {})


def _with_link(summary: dict, work: Path, month: str) -> dict:
    return {**summary, "data_docs": data_docs_link(work, month)}


def checked_delivery(cfg: Config, month: str, tables: dict[str, pd.DataFrame],
                     contract_quarantine: dict[str, pd.DataFrame] | None = None,
                     build_docs: bool = True, sources: dict[str, dict] | None = None) -> DeliveryCheck:
    """The delivery check of a month's pseudonymised tables (in memory, before commit) against
    what the lake held before it; its results saved to <work>/validation/<month>/ (results of
    suites it did not run removed) and, with `build_docs`, the month's Data Docs rebuilt. The
    summary names the Data Docs if they exist; `sources` (the delivery summary's, as read) gives
    them each file's name and contract quarantine. The caller moves `moved(source)` rows to
    quarantine and refuses the month if `failed`."""
    check = delivery_check(month, tables, contract_quarantine, _settings(cfg), earlier_deliveries(cfg.lake, month))
    save_results(cfg.work, month, check.results)
    remove_results(cfg.work, month, keep=set(check.verdicts))
    if build_docs:
        build_data_docs(cfg.work, month, {"sources": sources or {}, "validation": check.summary})
    return DeliveryCheck(_with_link(check.summary, cfg.work, month), check.verdicts, check.results)


def checked_features(cfg: Config, month: str, frame: pd.DataFrame, raise_on_critical: bool = True) -> dict:
    """The feature check of a month's table; its results saved and the month's Data Docs rebuilt.

    Returns the summary (same shape as a delivery's, under source "features"); raises
    ValidationFailed (after the results and docs are written) when a critical expectation fails.
    """
    check = feature_check(month, frame, _settings(cfg), residents_accepted(cfg.lake, month))
    save_results(cfg.work, month, {FEATURES: check.result})
    build_data_docs(cfg.work, month, lake.delivery_record(cfg.lake, month))
    summary = _with_link(check.summary, cfg.work, month)
    if raise_on_critical and summary["critical_failures"]:
        raise ValidationFailed(failure_message(
            f"the feature table of {month}", summary, "no list was made from it", what_ja=f"{month} の特徴量表",
            consequence_ja="リストは作っていません",
            action=bilingual("対処：Data Docs で失敗した検査を確かめ、元の提供に原因があれば提供元に修正と再提供を依頼してください",
                             "What to do: look up the failed checks in the Data Docs; if a delivery is the cause, "
                             "ask the department to correct it and deliver it again")), summary)
    return summary
