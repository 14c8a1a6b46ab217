"""Run the source suites on a delivery's pseudonymised tables and apply our severity policy.

GX records `severity` but does not act on it: here `critical` failures stop the month and
`warning` failures are reported. Results keep counts and row positions, never values
(`exclude_unexpected_values`), and are written under <work>/validation/<month>/ for auditors.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pandas as pd

import pipelines  # noqa: F401  (telemetry off before GX is imported)
from pipelines.config import Config
from pipelines.months import month_end
from pipelines.storage import write_json

SUITES_DIR = Path(__file__).with_name("suites")
RESULT_FORMAT = {"result_format": "COMPLETE", "exclude_unexpected_values": True,
                 "return_unexpected_index_query": False, "partial_unexpected_count": 0}


@lru_cache(maxsize=1)
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


@lru_cache(maxsize=None)
def _definition(source: str):
    import great_expectations as gx

    context = _context()
    try:
        datasource = context.data_sources.get("lake")
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas(name="lake")
    batch = datasource.add_dataframe_asset(name=source).add_batch_definition_whole_dataframe(name="whole")
    spec = json.loads((SUITES_DIR / f"{source}.json").read_text(encoding="utf-8"))
    suite = context.suites.add(gx.ExpectationSuite(**spec))
    return context.validation_definitions.add(gx.ValidationDefinition(name=f"{source}_vd", data=batch, suite=suite))


def _describe(result) -> dict:
    config = result.expectation_config
    severity = getattr(config.severity, "value", str(config.severity)).lower()
    return {
        "expectation": config.type,
        "column": config.kwargs.get("column") or config.kwargs.get("column_list") or config.kwargs.get("column_A"),
        "description": config.meta.get("description", config.type),
        "severity": severity,
        "success": bool(result.success),
        "unexpected": int(result.result.get("unexpected_count") or (0 if result.success else 1)),
        "rows": result.result.get("element_count"),
    }


def validate_table(source: str, table: pd.DataFrame, month: str) -> tuple[list[dict], dict]:
    """(one line per expectation, the GX result as JSON) for one lake table."""
    frame = table.reset_index(drop=True)
    result = _definition(source).run(batch_parameters={"dataframe": frame},
                                     expectation_parameters={"month_end": month_end(month)},
                                     result_format=RESULT_FORMAT)
    return [_describe(r) for r in result.results], result.to_json_dict()


def validate_delivery(cfg: Config, month: str, tables: dict[str, pd.DataFrame]) -> dict:
    summary: dict = {"sources": {}, "critical_failures": [], "warnings": []}
    for source, table in tables.items():
        lines, raw = validate_table(source, table, month)
        write_json(raw, cfg.work / "validation" / month / f"{source}.json")
        summary["sources"][source] = {"expectations": len(lines), "failed": sum(not x["success"] for x in lines)}
        for line in lines:
            if line["success"]:
                continue
            entry = {"source": source, **line}
            (summary["critical_failures"] if line["severity"] == "critical" else summary["warnings"]).append(entry)
    return summary
