"""GX results made safe to keep: no row labels, no values, no random ids, no load times.

Results keep counts and observed aggregates only: unexpected values are never requested
(`exclude_unexpected_values`) and the row positions used for quarantine are removed by
`sanitise` before the results leave this package, so neither the JSON the catalogue saves
(pipelines/catalog/validation.py: <work>/validation/<month>/<suite>.json) nor the Data Docs
built from it hold personal data. Both are deterministic (run time = the delivery's knowledge
date, no random ids): the same delivery gives the same bytes, like every other file of the work dir.
"""
from __future__ import annotations

import datetime as dt
import json

from contract.months import month_end

# Result keys that can hold values or row labels; COMPLETE/exclude_unexpected_values leaves only
# the index list, but whatever GX adds in another version is dropped too.
_VALUE_KEYS = {"unexpected_index_list", "unexpected_index_query", "partial_unexpected_list",
               "partial_unexpected_index_list", "partial_unexpected_counts", "unexpected_list",
               "unexpected_rows", "unexpected_index_column_names"}


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
