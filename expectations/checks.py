"""What the suites need besides the table: derived check columns and suite parameters.

Pure functions of the month's tables and of what the lake held before the delivery
(`EarlierDeliveries`, loaded by pipelines/catalog/validation.py); no GX and no I/O here.

- Referential integrity: an event's pseudonym must belong to a resident of this month's
  snapshot or of an earlier delivered one (people who died or moved out during the month are in
  the previous snapshot). A million-pseudonym value set must not go into GX kwargs (it would be
  serialised into every result), so the check is computed here into `_pid_known`/`_hid_known`.
  Earlier snapshots are opened newest first and only while some pseudonym is still unknown
  (`EarlierDeliveries.snapshot_ids` yields them lazily).
- Amounts: `_paid_within_tolerance` (paid ≤ due × tolerance); `_billing_month_not_later`
  (GX compares numbers and dates only, and billing months are "YYYY-MM" strings).
- Row-count band: the previous delivery's row count ± band ± slack, as suite parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from expectations.suite_spec import DERIVED

# column ("pid" | "hid") -> that column of each earlier residents snapshot, newest first, read lazily.
EarlierIds = Callable[[str], Iterator[pd.Series]]


def _no_ids(column: str) -> Iterator[pd.Series]:
    return iter(())


@dataclass(frozen=True)
class EarlierDeliveries:
    """What the lake knew before the month's delivery (pipelines/catalog/validation.earlier_deliveries)."""

    has_history: bool = False                  # the lake holds an earlier residents snapshot
    snapshot_ids: EarlierIds = _no_ids         # earlier residents snapshots' pid/hid, newest first
    previous_rows: Mapping[str, int] = field(default_factory=dict)  # rows per source, latest earlier delivery

    def rows_before(self, source: str) -> int | None:
        """Rows the latest earlier delivery had of `source` (None: no earlier delivery, or it lacked the source)."""
        rows = self.previous_rows.get(source)
        return None if rows is None else int(rows)


def _ids(values: pd.Series | pd.Index) -> pa.Array:
    """Distinct non-missing IDs as an Arrow array (pandas' isin on Arrow strings walks Python lists)."""
    array = pa.array(pd.Series(values, dtype="str").array, type=pa.large_string())
    return pc.unique(array.drop_null())


def _isin(values: pd.Series, ids: pa.Array) -> np.ndarray:
    array = pa.array(pd.Series(values, dtype="str").array, type=pa.large_string())
    return pc.fill_null(pc.is_in(array, value_set=ids), False).to_numpy(zero_copy_only=False)


@dataclass
class Registry:
    """Who the ward knows: this month's residents (accepted or quarantined) and earlier snapshots."""

    own: dict[str, pa.Array]
    earlier: EarlierIds
    history: bool  # the lake holds an earlier residents snapshot
    _seen: dict[str, list[pa.Array]] = field(default_factory=dict)
    _pending: dict[str, Iterator[pd.Series]] = field(default_factory=dict)

    def known(self, column: str, values: pd.Series) -> np.ndarray:
        known = _isin(values, self.own[column])
        missing = _ids(values[~known])
        if not len(missing):
            return known
        found = []
        for ids in self._earlier_ids(column):
            hit = pc.is_in(missing, value_set=ids).to_numpy(zero_copy_only=False)
            found.append(missing.filter(pa.array(hit)))
            missing = missing.filter(pa.array(~hit))
            if not len(missing):
                break
        if not found:
            return known
        return known | _isin(values, pa.concat_arrays(found))

    def _earlier_ids(self, column: str) -> Iterator[pa.Array]:
        """Earlier snapshots' values of `column`, newest first; each file is read at most once."""
        cache = self._seen.setdefault(column, [])
        pending = self._pending.setdefault(column, self.earlier(column))
        i = 0
        while True:
            if i == len(cache):
                ids = next(pending, None)
                if ids is None:
                    return
                cache.append(_ids(ids))
            yield cache[i]
            i += 1


def registry(residents: pd.DataFrame, quarantined_residents: pd.DataFrame | None, earlier: EarlierIds,
             history: bool) -> Registry:
    own = {}
    for column in ("pid", "hid"):
        parts = [residents[column].astype("str")]
        if quarantined_residents is not None and column in quarantined_residents.columns:
            parts.append(quarantined_residents[column].astype("str"))
        own[column] = _ids(pd.concat(parts, ignore_index=True))
    return Registry(own, earlier, history)


def derive(source: str, table: pd.DataFrame, month: str, known: Registry | None, paid_tolerance: float) -> pd.DataFrame:
    """The table plus its derived boolean check columns (a new frame; the table is untouched)."""
    extra: dict[str, np.ndarray] = {}
    for name in DERIVED[source]:
        if name in ("_pid_known", "_hid_known"):
            column = name[1:4]
            extra[name] = known.known(column, table[column]) if known is not None else np.ones(len(table), bool)
        elif name == "_paid_within_tolerance":
            # Coerced: a column of the wrong type is the type check's failure, not a crash here.
            paid = pd.to_numeric(table["amount_paid"], errors="coerce").astype("Float64")
            due = pd.to_numeric(table["amount_due"], errors="coerce").astype("Float64")
            extra[name] = ~(paid > due * paid_tolerance).fillna(False).to_numpy(dtype=bool)
        elif name == "_billing_month_not_later":
            later = table["billing_month"].astype("str") > month
            extra[name] = ~later.fillna(False).to_numpy(dtype=bool)
        else:  # pragma: no cover - the spec and this function are kept in step by the tests
            raise KeyError(name)
    return table.assign(**extra) if extra else table


def row_band(previous: int | None, band: float, slack: int) -> dict:
    """Suite parameters of the row-count check: no bounds on the first delivery."""
    if previous is None:
        return {"rows_min": 0, "rows_max": None}
    return {"rows_min": max(0, math.floor(previous * (1 - band)) - slack),
            "rows_max": math.ceil(previous * (1 + band)) + slack}


def band_for(source: str, bands: dict) -> float:
    return float(bands.get(source, bands["default"]))
