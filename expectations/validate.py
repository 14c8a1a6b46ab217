"""Run the suites with GX and apply mimamori's severity policy (expectations/policy.py).

One GX run per table: each source's pseudonymised table of a delivery (before it is committed)
and each month's feature table. COMPLETE results with `exclude_unexpected_values` give the
failing rows as index labels (positions) only, which is all quarantine needs and fast on a
million rows; they are removed again before the results are returned (results.sanitise).

Pure stages: tables and the [validation] settings in, decisions and sanitised results out. What
the lake knew before a delivery comes in as `EarlierDeliveries`; the catalogue
(pipelines/catalog/validation.py) loads it, saves the results and builds the Data Docs.

    delivery_check(month, tables, contract_quarantine, settings, earlier)  -> DeliveryCheck
    feature_check(month, frame, settings, residents_accepted)             -> FeatureCheck
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from contract import telemetry  # noqa: F401  (telemetry off before GX is imported)
from contract.months import month_end
from contract.sources import SOURCES
from expectations import checks
from expectations.checks import EarlierDeliveries
from expectations.policy import Outcome, Verdict, judge, outcome, summarise
from expectations.results import run_time, sanitise
from expectations.suite_spec import FEATURE_MEANS, FEATURES, suite_of

# GX imports pyspark, when the [spark] extra is installed, as it builds its context and data
# sources, and pyspark warns on each import that it does not yet fully support pandas 3: noise on
# the stderr of every command (whose errors are one line), about a library the local engine never
# calls. Only that warning, for the whole process (the imports happen at several GX calls).
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

RESULT_FORMAT = {"result_format": "COMPLETE", "exclude_unexpected_values": True,
                 "return_unexpected_index_query": False, "partial_unexpected_count": 0}


@lru_cache(maxsize=1)
def _context():
    # GX takes seconds to import: only when a table is first validated, not with this module.
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


@lru_cache(maxsize=None)
def _definition(name: str):
    import great_expectations as gx   # heavy: see _context

    context = _context()
    try:
        datasource = context.data_sources.get("lake")
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas(name="lake")
    batch = datasource.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(name="whole")
    suite = context.suites.add(gx.ExpectationSuite(**suite_of(name)))
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
    return [e["meta"]["check"] for e in suite_of(name)["expectations"]]


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
    from great_expectations.core.run_identifier import RunIdentifier   # heavy: see _context

    frame = gx_frame(frame.reset_index(drop=True))
    result = _definition(name).run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters,
                                   result_format=RESULT_FORMAT,
                                   run_id=RunIdentifier(run_name=month, run_time=run_time(month)))
    store = _context().validation_results_store
    for key in store.list_keys():  # the in-memory store would keep every result of the process
        store.remove_key(key)
    _forget_batches()
    outcomes = {}
    for r in result.results:
        config = r.expectation_config
        index = r.result.pop("unexpected_index_list", None)  # positions, never returned
        o = outcome(config.type, config.kwargs, config.meta, r.success, r.result,
                    bool(r.exception_info.get("raised_exception")), index, history)
        outcomes[o.check] = o
    order = _order(name)
    ranked = [outcomes[c] for c in order if c in outcomes] + [o for c, o in outcomes.items() if c not in order]
    return ranked, sanitise(result.to_json_dict(), order)


# ------------------------------------------------------------------------------ deliveries


@dataclass(frozen=True)
class DeliveryCheck:
    """The policy's decision on a delivery: summary for the record, rows to move per source,
    and each source's sanitised GX results (for <work>/validation/<month>/<source>.json).

    `summary["data_docs"]` is None here: where the Data Docs are is the catalogue's to say.
    """

    summary: dict
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.summary["critical_failures"])

    def moved(self, source: str) -> pd.DataFrame:
        """Rows of `source` to quarantine: position in the table, failed checks, plain reason."""
        return self.verdicts[source].moved


def delivery_parameters(month: str, source: str, settings: dict, previous_rows: int | None) -> dict:
    """Suite parameters of one source's delivery: the month's end and the row-count band."""
    band = checks.band_for(source, settings.get("row_count_band", {"default": 0.5}))
    return {"month_end": month_end(month),
            **checks.row_band(previous_rows, band, int(settings.get("row_count_slack", 0)))}


def delivery_check(month: str, tables: dict[str, pd.DataFrame],
                   contract_quarantine: dict[str, pd.DataFrame] | None, settings: dict,
                   earlier: EarlierDeliveries = EarlierDeliveries()) -> DeliveryCheck:
    """A delivery's pseudonymised tables (in memory, before commit) judged under the policy.

    `contract_quarantine` holds the rows pipelines/reading.py already quarantined per source
    (they count toward the quarantine share; quarantined residents still count as known people);
    `settings` is the [validation] section; `earlier` what the lake held before the month. The
    caller saves `results`, moves `moved(source)` rows to quarantine and refuses the month if `failed`.
    """
    contract_quarantine = contract_quarantine or {}
    history = earlier.has_history
    registry = None
    if "residents" in tables:
        registry = checks.registry(tables["residents"], contract_quarantine.get("residents"),
                                   earlier.snapshot_ids, history)
    tolerance = float(settings.get("paid_tolerance", 1.0))
    verdicts: dict[str, Verdict] = {}
    results: dict[str, dict] = {}
    for source in [s for s in SOURCES if s in tables]:
        table = tables[source]
        frame = checks.derive(source, table.reset_index(drop=True), month, registry, tolerance)
        parameters = delivery_parameters(month, source, settings, earlier.rows_before(source))
        outcomes, results[source] = run_suite(source, frame, month, parameters, history)
        verdicts[source] = judge(source, outcomes, len(table), len(contract_quarantine.get(source, ())),
                                 float(settings.get("quarantine_limit", 0.02)),
                                 int(settings.get("quarantine_min_rows", 0)))
    summary = summarise(list(verdicts.values()), None)
    summary["first_delivery"] = not history
    return DeliveryCheck(summary, verdicts, results)


# ------------------------------------------------------------------------------- features


@dataclass(frozen=True)
class FeatureCheck:
    """The policy's decision on a month's feature table and its sanitised GX results."""

    summary: dict      # same shape as a delivery's, under source "features"; data_docs None
    result: dict       # for <work>/validation/<month>/features.json

    @property
    def failed(self) -> bool:
        return bool(self.summary["critical_failures"])


def feature_parameters(month: str, settings: dict, residents_accepted: int | None) -> dict:
    """Suite parameters of a month's feature table: the month, its residents, the distribution bounds."""
    bounds = settings.get("features", {})
    parameters: dict = {"months": [month], "residents": residents_accepted}
    for stem, *_ in FEATURE_MEANS.values():
        low, high = bounds.get(stem, [None, None])
        parameters[f"{stem}_min"], parameters[f"{stem}_max"] = low, high
    return parameters


def feature_check(month: str, frame: pd.DataFrame, settings: dict, residents_accepted: int | None) -> FeatureCheck:
    """A month's feature table judged under the policy. `settings` is the [validation] section;
    `residents_accepted` the residents the month's delivery record accepted (one row each)."""
    outcomes, result = run_suite(FEATURES, frame, month, feature_parameters(month, settings, residents_accepted))
    verdict = judge(FEATURES, outcomes, len(frame))
    return FeatureCheck(summarise([verdict], None), result)
