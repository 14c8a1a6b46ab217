"""Validation's datasets: what the lake knew before a delivery, the GX results of a month and its
Data Docs site. The checks themselves are pure (expectations/validate.py); this module loads their
inputs and saves their outputs.

    <work>/validation/<month>/<suite>.json     GX results of the latest validation of the month's
                                               delivery (committed or refused) and of its features
    <work>/runs/<month>/data_docs/index.html   Data Docs built from those files, naming every suite

The results are sanitised before they get here (expectations/results.py): counts and observed
aggregates only, no row labels, no random ids, so neither the JSON nor the HTML holds personal
data, and the same delivery gives the same bytes.

The HTML is GX's static site: it loads Bootstrap, jQuery, Font Awesome and Vega from public CDNs,
so offline it renders unstyled but readable. The GX logos, which GX loads from its S3 bucket (the
navbar one with a timestamp and the context id in the URL), point at the site's own copy instead.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from contract import telemetry  # noqa: F401  (telemetry off before GX is imported)
from contract.storage import read_json, write_json
from expectations.checks import EarlierDeliveries, EarlierIds
from expectations.policy import ValidationFailed, failure_message
from expectations.results import run_time
from expectations.suite_spec import FEATURES, suites_by_name
from expectations.validate import DeliveryCheck, delivery_check, feature_check
from pipelines.catalog import lake
from contract.messages import bilingual
from pipelines.config import Config

SITE = "mimamori"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# GX's logos (navbar image with a timestamp and the context id in its query; a dark-mode CSS
# background) come from its S3 bucket; the site ships its own logo-long.png.
_REMOTE_LOGO = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/"
                          r"[A-Za-z0-9_.-]+\.(?:png|svg)(?:\?[^\"'\s)]*)?")


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


def _postprocess(site: Path) -> None:
    """Make the HTML deterministic and local: numbered element ids, the logo from static/."""
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        depth = len(page.relative_to(site).parts) - 1
        text = _REMOTE_LOGO.sub("../" * depth + "static/images/logo-long.png", text)
        seen: dict[str, str] = {}
        text = _UUID.sub(lambda m: seen.setdefault(m.group(0), f"n{len(seen) + 1:05d}"), text)
        page.write_text(text, encoding="utf-8")
    used = "\n".join(p.read_text(encoding="utf-8") for p in site.rglob("*") if p.suffix in (".html", ".css"))
    images = site / "static" / "images"
    for image in sorted(images.glob("*")) if images.is_dir() else []:
        if image.name not in used:  # GX ships multi-megabyte tutorial GIFs no page shows
            image.unlink()


class _DiskFullLogged(logging.Filter):
    """GX's site builder logs a failed page write (a 30-line traceback on stderr) and goes on."""
    seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "No space left on device" in record.getMessage():
            self.seen = True
            return False
        return True


@contextmanager
def _disk_full_raised() -> Iterator[None]:
    """A full disk while GX writes pages: no traceback printed, an ENOSPC raised (the CLI says it in one line)."""
    catch = _DiskFullLogged()
    loggers = [logging.getLogger(name) for name in ("great_expectations.render.renderer.site_builder",
                                                    "great_expectations.data_context.store.html_site_store")]
    for logger in loggers:
        logger.addFilter(catch)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(catch)
    if catch.seen:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "Data Docs")


def build_data_docs(work: Path, month: str) -> Path:
    """(Re)build <work>/runs/<month>/data_docs from the month's result files; returns index.html.

    A fresh ephemeral context each time, so pages of other months never mix in.
    """
    # GX takes seconds to import: only when a site is built, not with the catalogue.
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    target = docs_dir(work, month)
    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".data_docs.", dir=target.parent))
    try:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        for name in list(context.get_config().data_docs_sites or {}):
            context.delete_data_docs_site(name)
        context.add_data_docs_site(site_name=SITE, site_config={
            "class_name": "SiteBuilder", "show_how_to_buttons": False,
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(build)}})
        for spec in suites_by_name().values():
            context.suites.add(gx.ExpectationSuite(**spec))
        run_id = RunIdentifier(run_name=month, run_time=run_time(month))
        folder = results_dir(work, month)
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            result = expectationSuiteValidationResultSchema.load(read_json(path))
            key = ValidationResultIdentifier(expectation_suite_identifier=ExpectationSuiteIdentifier(name=path.stem),
                                             run_id=run_id, batch_identifier=f"{month}-{path.stem}")
            context.validation_results_store.set(key, result)
        with _disk_full_raised():
            context.build_data_docs(site_names=[SITE])
        _postprocess(build)
        os.chmod(build, 0o755)
        old = target.with_name(f".data_docs.old.{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        os.replace(build, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return target / "index.html"


# ------------------------------------------------------------------ the stages, loaded and saved


def _settings(cfg: Config) -> dict:
    return cfg.settings.get("validation", {})


def _with_link(summary: dict, work: Path, month: str) -> dict:
    return {**summary, "data_docs": data_docs_link(work, month)}


def checked_delivery(cfg: Config, month: str, tables: dict[str, pd.DataFrame],
                     contract_quarantine: dict[str, pd.DataFrame] | None = None,
                     build_docs: bool = True) -> DeliveryCheck:
    """The delivery check of a month's pseudonymised tables (in memory, before commit) against
    what the lake held before it; its results saved to <work>/validation/<month>/ (results of
    suites it did not run removed) and, with `build_docs`, the month's Data Docs rebuilt. The
    summary names the Data Docs if they exist. The caller moves `moved(source)` rows to
    quarantine and refuses the month if `failed`."""
    check = delivery_check(month, tables, contract_quarantine, _settings(cfg), earlier_deliveries(cfg.lake, month))
    save_results(cfg.work, month, check.results)
    remove_results(cfg.work, month, keep=set(check.verdicts))
    if build_docs:
        build_data_docs(cfg.work, month)
    return DeliveryCheck(_with_link(check.summary, cfg.work, month), check.verdicts, check.results)


def checked_features(cfg: Config, month: str, frame: pd.DataFrame, raise_on_critical: bool = True) -> dict:
    """The feature check of a month's table; its results saved and the month's Data Docs rebuilt.

    Returns the summary (same shape as a delivery's, under source "features"); raises
    ValidationFailed (after the results and docs are written) when a critical expectation fails.
    """
    check = feature_check(month, frame, _settings(cfg), residents_accepted(cfg.lake, month))
    save_results(cfg.work, month, {FEATURES: check.result})
    build_data_docs(cfg.work, month)
    summary = _with_link(check.summary, cfg.work, month)
    if raise_on_critical and summary["critical_failures"]:
        raise ValidationFailed(failure_message(
            f"the feature table of {month}", summary, "no list was made from it", what_ja=f"{month} の特徴量表",
            consequence_ja="リストは作っていません",
            action=bilingual("対処：Data Docs で失敗した検査を確かめ、元の提供に原因があれば提供元に修正と再提供を依頼してください",
                             "What to do: look up the failed checks in the Data Docs; if a delivery is the cause, "
                             "ask the department to correct it and deliver it again")), summary)
    return summary
