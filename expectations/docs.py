"""Validation results for auditors: the GX results JSON of a month and its Data Docs site.

    <work>/validation/<month>/<suite>.json     GX results of the latest validation of the month's
                                               delivery (committed or refused) and of its features
    <work>/runs/<month>/data_docs/index.html   Data Docs built from those files, naming every suite

Results keep counts and observed aggregates only: unexpected values are never requested
(`exclude_unexpected_values`) and the row positions used for quarantine are removed before
anything is written, so neither the JSON nor the HTML holds personal data. Both are made
deterministic (run time = the delivery's knowledge date, no random ids, no build timestamps):
the same delivery gives the same bytes, like every other file of the work dir.

The HTML is GX's static site: it loads Bootstrap, jQuery, Font Awesome and Vega from public CDNs,
so offline it renders unstyled but readable. The GX logos, which GX loads from its S3 bucket (the
navbar one with a timestamp and the context id in the URL), point at the site's own copy instead.
"""
from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from expectations.suite_spec import SUITES_DIR
from pipelines.config import Config
from contract.months import month_end
from contract.storage import read_json, write_json

SITE = "mimamori"
# Result keys that can hold values or row labels; COMPLETE/exclude_unexpected_values leaves only
# the index list, but whatever GX adds in another version is dropped too.
_VALUE_KEYS = {"unexpected_index_list", "unexpected_index_query", "partial_unexpected_list",
               "partial_unexpected_index_list", "partial_unexpected_counts", "unexpected_list",
               "unexpected_rows", "unexpected_index_column_names"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# GX's logos (navbar image with a timestamp and the context id in its query; a dark-mode CSS
# background) come from its S3 bucket; the site ships its own logo-long.png.
_REMOTE_LOGO = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/"
                          r"[A-Za-z0-9_.-]+\.(?:png|svg)(?:\?[^\"'\s)]*)?")


def results_dir(cfg: Config, month: str) -> Path:
    return cfg.work / "validation" / month


def docs_dir(cfg: Config, month: str) -> Path:
    return cfg.runs / month / "data_docs"


def docs_index(cfg: Config, month: str) -> str:
    """The Data Docs index relative to the work dir (as the delivery record names it)."""
    return (docs_dir(cfg, month) / "index.html").relative_to(cfg.work).as_posix()


def run_time(month: str) -> dt.datetime:
    """The run time GX records: the delivery's knowledge date (wall-clock time is in the audit log)."""
    return month_end(month).to_pydatetime().replace(tzinfo=dt.timezone.utc)


def sanitise(raw: dict, order: list[str]) -> dict:
    """A GX results dict without row labels, random ids or load times, in suite order."""
    out = json.loads(json.dumps(raw, default=str))
    meta = out.get("meta", {})
    for key in ("validation_id", "checkpoint_id"):
        meta.pop(key, None)
    meta.get("batch_markers", {}).pop("ge_load_time", None)
    rank = {check: i for i, check in enumerate(order)}
    for result in out.get("results", []):
        result["expectation_config"].pop("id", None)
        result["expectation_config"]["kwargs"].pop("batch_id", None)
        for key in _VALUE_KEYS:
            result.get("result", {}).pop(key, None)
        if result.get("exception_info", {}).get("exception_traceback"):
            result["exception_info"]["exception_traceback"] = None  # frames may quote values
    out["results"] = sorted(out.get("results", []),
                            key=lambda r: rank.get(r["expectation_config"].get("meta", {}).get("check"), len(rank)))
    out.pop("id", None)
    return out


def write_result(cfg: Config, month: str, suite: str, raw: dict) -> Path:
    path = results_dir(cfg, month) / f"{suite}.json"
    write_json(raw, path)
    return path


def remove_results(cfg: Config, month: str, keep: set[str]) -> None:
    """Drop result files of suites not in `keep` (a source no longer delivered, stale features)."""
    folder = results_dir(cfg, month)
    if folder.is_dir():
        for path in folder.glob("*.json"):
            if path.stem not in keep:
                path.unlink()


def _suite_specs() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(SUITES_DIR.glob("*.json"))}


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


def build_data_docs(cfg: Config, month: str) -> Path:
    """(Re)build <work>/runs/<month>/data_docs from the month's result files; returns index.html.

    A fresh ephemeral context each time, so pages of other months never mix in.
    """
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    target = docs_dir(cfg, month)
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
        for spec in _suite_specs().values():
            context.suites.add(gx.ExpectationSuite(**spec))
        run_id = RunIdentifier(run_name=month, run_time=run_time(month))
        folder = results_dir(cfg, month)
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
