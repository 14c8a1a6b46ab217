"""Run the suites with GX and apply mimamori's severity policy (expectations/policy.py).

One GX run per table: each source's pseudonymised table of a delivery (before it is committed)
and each month's feature table. COMPLETE results with `exclude_unexpected_values` give the
failing rows as index labels (positions) only, which is all quarantine needs and fast on a
million rows; they are removed again before results are written (docs.py).

Entry points:
    validate_delivery(cfg, month, tables, contract_quarantine)  -> DeliveryCheck   (ingest uses it)
    validate_month(cfg, month, key=None)                         -> summary         (dry run of a delivery)
    validate_features(cfg, month, frame)                          -> summary         (after features)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from contract import telemetry  # noqa: F401  (telemetry off before GX is imported)
from expectations import checks, docs
from expectations.policy import Outcome, ValidationFailed, Verdict, failure_message, judge, outcome, summarise
from expectations.suite_spec import FEATURE_MEANS, FEATURES, SUITES_DIR
from pipelines.catalog import lake
from pipelines.config import Config
from contract.sources import SOURCES
from contract.months import month_end
from contract.storage import read_json

RESULT_FORMAT = {"result_format": "COMPLETE", "exclude_unexpected_values": True,
                 "return_unexpected_index_query": False, "partial_unexpected_count": 0}


@lru_cache(maxsize=1)
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def suite_spec(name: str) -> dict:
    return read_json(SUITES_DIR / f"{name}.json")


@lru_cache(maxsize=None)
def _definition(name: str):
    import great_expectations as gx

    context = _context()
    try:
        datasource = context.data_sources.get("lake")
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas(name="lake")
    batch = datasource.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(name="whole")
    suite = context.suites.add(gx.ExpectationSuite(**suite_spec(name)))
    return context.validation_definitions.add(gx.ValidationDefinition(name=f"{name}_vd", data=batch, suite=suite))


def _forget_batches() -> None:
    """Drop the frames GX's execution engine keeps after a run.

    The engine caches each asset's last batch (and the batches' data) for interactive reuse;
    in a long `run --all` that kept a million-row feature table or delivery per suite alive
    for the life of the process, and the main process grew by about 250 MB a month at a
    million residents.
    """
    manager = _context().data_sources.get("lake").get_execution_engine().batch_manager
    manager.batch_data_cache.clear()
    manager.reset_batch_cache()


@lru_cache(maxsize=None)
def _order(name: str) -> list[str]:
    return [e["meta"]["check"] for e in suite_spec(name)["expectations"]]


def gx_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as GX's fast paths want it, same values and types.

    GX 1.24 compares ranges vectorised only for NumPy int/float and datetime64[ns] columns; a
    nullable Int64 or a datetime64[us] column goes through Series.map with a Python function
    (about 1 s per million rows and check). Int64 columns without missing values become int64,
    dates become datetime64[ns] unless one lies outside 1677–2262 (an open end written as
    9999-12-31); both still pass the same type checks.
    """
    changed = {}
    for column, values in frame.items():
        if pd.api.types.is_datetime64_dtype(values.dtype) and values.dtype != "datetime64[ns]":
            try:
                changed[column] = values.astype("datetime64[ns]")
            except pd.errors.OutOfBoundsDatetime:
                pass
        elif isinstance(values.dtype, pd.Int64Dtype) and not values.hasnans:
            changed[column] = values.astype("int64")
    return frame.assign(**changed) if changed else frame


def run_suite(name: str, frame: pd.DataFrame, month: str, parameters: dict,
              history: bool = True) -> tuple[list[Outcome], dict]:
    """One GX run: (outcomes in suite order, the sanitised results as JSON)."""
    from great_expectations.core.run_identifier import RunIdentifier

    frame = gx_frame(frame.reset_index(drop=True))
    result = _definition(name).run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters,
                                   result_format=RESULT_FORMAT,
                                   run_id=RunIdentifier(run_name=month, run_time=docs.run_time(month)))
    store = _context().validation_results_store
    for key in store.list_keys():  # the in-memory store would keep every result of the process
        store.remove_key(key)
    _forget_batches()
    outcomes = {}
    for r in result.results:
        config = r.expectation_config
        index = r.result.pop("unexpected_index_list", None)  # positions, dropped before writing
        o = outcome(config.type, config.kwargs, config.meta, r.success, r.result,
                    bool(r.exception_info.get("raised_exception")), index, history)
        outcomes[o.check] = o
    order = _order(name)
    ranked = [outcomes[c] for c in order if c in outcomes] + [o for c, o in outcomes.items() if c not in order]
    return ranked, docs.sanitise(result.to_json_dict(), order)


# ------------------------------------------------------------------------------ deliveries


@dataclass
class DeliveryCheck:
    """The policy's decision on a delivery: summary for the record, rows to move per source."""

    summary: dict
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.summary["critical_failures"])

    def moved(self, source: str) -> pd.DataFrame:
        """Rows of `source` to quarantine: position in the table, failed checks, plain reason."""
        return self.verdicts[source].moved


def _docs_link(cfg: Config, month: str) -> str | None:
    return docs.docs_index(cfg, month) if (docs.docs_dir(cfg, month) / "index.html").exists() else None


def _settings(cfg: Config) -> dict:
    return cfg.settings.get("validation", {})


def delivery_parameters(cfg: Config, month: str, source: str) -> dict:
    settings = _settings(cfg)
    band = checks.band_for(source, settings.get("row_count_band", {"default": 0.5}))
    previous = checks.previous_rows(cfg.lake, month, source)
    return {"month_end": month_end(month), **checks.row_band(previous, band, int(settings.get("row_count_slack", 0)))}


def validate_delivery(cfg: Config, month: str, tables: dict[str, pd.DataFrame],
                      contract_quarantine: dict[str, pd.DataFrame] | None = None,
                      build_docs: bool = True) -> DeliveryCheck:
    """Validate a delivery's pseudonymised tables (in memory, before commit) under the policy.

    `contract_quarantine` holds the rows pipelines/reading.py already quarantined per source
    (they count toward the quarantine share; quarantined residents still count as known people).
    Writes the results to <work>/validation/<month>/ and rebuilds the month's Data Docs; the
    caller moves `moved(source)` rows to quarantine and refuses the month if `failed`.
    """
    contract_quarantine = contract_quarantine or {}
    settings = _settings(cfg)
    earlier = checks.earlier_months(cfg.lake, month)
    history = any(lake.source_file(cfg.lake, "residents", m).exists() for m in earlier)
    registry = None
    if "residents" in tables:
        registry = checks.registry(tables["residents"], contract_quarantine.get("residents"),
                                   checks.earlier_snapshot_ids(cfg.lake, month), history)
    tolerance = float(settings.get("paid_tolerance", 1.0))
    verdicts: dict[str, Verdict] = {}
    for source in [s for s in SOURCES if s in tables]:
        table = tables[source]
        frame = checks.derive(source, table.reset_index(drop=True), month, registry, tolerance)
        outcomes, raw = run_suite(source, frame, month, delivery_parameters(cfg, month, source), history)
        docs.write_result(cfg, month, source, raw)
        verdicts[source] = judge(source, outcomes, len(table), len(contract_quarantine.get(source, ())),
                                 float(settings.get("quarantine_limit", 0.02)),
                                 int(settings.get("quarantine_min_rows", 0)))
    docs.remove_results(cfg, month, keep=set(verdicts))
    if build_docs:
        docs.build_data_docs(cfg, month)
    summary = summarise(list(verdicts.values()), _docs_link(cfg, month))
    summary["first_delivery"] = not history
    return DeliveryCheck(summary, verdicts)


def validate_month(cfg: Config, month: str, key: bytes | None = None) -> dict:
    """`mimamori validate --month M`: validate the month's delivery in the inbox without committing it.

    Reads, pseudonymises and validates in memory exactly as ingest would, writes the results and
    the Data Docs (which describe the latest validation of the month), and returns the summary
    with what ingest would quarantine; the lake is not touched. Raises ContractError when a
    file is refused. The caller decides on an exit status from `summary["critical_failures"]`.
    """
    from pipelines.ingest import read_delivery
    from pipelines.pseudonymise import load_key

    delivery = read_delivery(cfg, month, key if key is not None else load_key(cfg.key_file))
    check = validate_delivery(cfg, month, delivery.tables, delivery.quarantine)
    return {"month": month, **check.summary}


# ------------------------------------------------------------------------------- features


def feature_parameters(cfg: Config, month: str) -> dict:
    settings = _settings(cfg).get("features", {})
    record = lake.delivery_record(cfg.lake, month)
    residents = None if record is None else int(record["sources"]["residents"]["accepted"])
    parameters: dict = {"months": [month], "residents": residents}
    for stem, *_ in FEATURE_MEANS.values():
        low, high = settings.get(stem, [None, None])
        parameters[f"{stem}_min"], parameters[f"{stem}_max"] = low, high
    return parameters


def validate_features(cfg: Config, month: str, frame: pd.DataFrame, raise_on_critical: bool = True) -> dict:
    """Validate a month's feature table; write its results and rebuild the month's Data Docs.

    Returns the summary (same shape as a delivery's, under source "features"); raises
    ValidationFailed (after writing results and docs) when a critical expectation fails.
    """
    outcomes, raw = run_suite(FEATURES, frame, month, feature_parameters(cfg, month))
    docs.write_result(cfg, month, FEATURES, raw)
    verdict = judge(FEATURES, outcomes, len(frame))
    docs.build_data_docs(cfg, month)
    summary = summarise([verdict], _docs_link(cfg, month))
    if raise_on_critical and summary["critical_failures"]:
        raise ValidationFailed(failure_message(f"the feature table of {month}", summary,
                                               "no list was made from it"), summary)
    return summary


def data_docs_path(cfg: Config, month: str) -> Path:
    return docs.docs_dir(cfg, month) / "index.html"
