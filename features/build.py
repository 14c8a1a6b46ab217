"""Point-in-time features for one as-of month.

Every input is read through `lake.read_events`/`read_snapshot` with the as-of month, which
opens only deliveries known by its last day; windows are measured back from that day. One
function per feature group, named for what it returns, each a pure function of lake tables.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.catalog import FLAGGED, MODEL_FEATURES
from pipelines import lake
from pipelines.months import month_end, shift

CARE_LEVEL_ORDINAL = {"support_1": 1, "support_2": 2, "care_1": 3, "care_2": 4, "care_3": 5,
                      "care_4": 6, "care_5": 7}


def _months_before(as_of: pd.Timestamp, dates: pd.Series) -> pd.Series:
    return (as_of.year - dates.dt.year) * 12 + (as_of.month - dates.dt.month)


def _known(events: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.DataFrame | None:
    """Rows known by the as-of date (a row may carry a knowledge date later than its delivery)."""
    if events is None:
        return None
    return events[events["known_on"] <= as_of]


def cohort(residents: pd.DataFrame) -> pd.DataFrame:
    """Who can be listed, and the attributes reports and fairness audits group by."""
    return pd.DataFrame({
        "pid": residents["pid"].to_numpy(),
        "district": residents["district"].to_numpy(),
        "sex": residents["sex"].to_numpy(),
        "age": residents["age"].astype("float64").to_numpy(),
        "living_alone": (residents["household_size"] == 1).astype("float64").to_numpy(),
        "months_at_address": residents["months_at_address"].astype("float64").to_numpy(),
    })


def _spread(per_key: pd.Series, people: pd.Index) -> np.ndarray:
    """Values per key (pid or hid) laid out over `people` (one key per row), NaN where absent.

    Same as `per_key.reindex(people)`, but it looks the few keys with events up in `people`'s
    hash table (built once per Index and reused by every feature) instead of hashing all of a
    million people's keys again for each feature.
    """
    out = np.full(len(people), np.nan)
    if len(per_key):
        where = people.get_indexer(per_key.index)   # people's keys are unique (a snapshot's pids, or distinct hids)
        found = where >= 0
        out[where[found]] = per_key.to_numpy(dtype="float64", na_value=np.nan)[found]
    return out


def months_since_last(events: pd.DataFrame | None, date_column: str, pids: pd.Index,
                      as_of: pd.Timestamp, history_months: int) -> tuple[np.ndarray, np.ndarray]:
    """Months since a person's last event; with none on record, the history length, flagged."""
    last = (events.groupby("pid")[date_column].max() if events is not None and len(events)
            else pd.Series(dtype="datetime64[us]"))
    months = _spread(_months_before(as_of, last), pids)
    imputed = np.isnan(months)
    return np.where(imputed, float(history_months), months), imputed.astype("float64")


def arrears_months(bills: pd.DataFrame | None, key: str, ids: pd.Index, as_of_month: str) -> tuple[np.ndarray, np.ndarray]:
    """Bills of the last 12 billing months not fully paid (as known at as-of); unbilled flagged."""
    if bills is None or not len(bills):
        return np.zeros(len(ids)), np.ones(len(ids))
    first = shift(as_of_month, -11)
    window = bills[(bills["billing_month"] >= first) & (bills["billing_month"] <= as_of_month)]
    unpaid = (window["amount_paid"] < window["amount_due"]).astype("float64")
    values = _spread(unpaid.groupby(window[key]).sum(), ids)
    imputed = np.isnan(values)
    return np.where(imputed, 0.0, values), imputed.astype("float64")


def care_level(certs: pd.DataFrame | None, pids: pd.Index, as_of: pd.Timestamp) -> np.ndarray:
    if certs is None or not len(certs):
        return np.zeros(len(pids))
    valid = certs[(certs["valid_from"] <= as_of) & (certs["valid_to"].isna() | (certs["valid_to"] >= as_of))]
    level = valid["care_level"].map(CARE_LEVEL_ORDINAL).groupby(valid["pid"]).max()
    return np.nan_to_num(_spread(level, pids), nan=0.0)


def garbage_no_response(pickups: pd.DataFrame | None, pids: pd.Index, as_of: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Unanswered door-to-door pickups in the last 90 days; people not enrolled are flagged."""
    if pickups is None or not len(pickups):
        return np.zeros(len(pids)), np.ones(len(pids))
    recent = pickups[pickups["pickup_date"] > as_of - pd.Timedelta(days=90)]
    values = _spread((recent["result"] == "no_response").groupby(recent["pid"]).sum(), pids)
    imputed = np.isnan(values)
    return np.where(imputed, 0.0, values), imputed.astype("float64")


def count_in_year(events: pd.DataFrame | None, date_column: str, mask_column: str | None,
                  allowed: set[str] | None, pids: pd.Index, as_of: pd.Timestamp) -> np.ndarray:
    if events is None or not len(events):
        return np.zeros(len(pids))
    recent = events[events[date_column] > as_of - pd.DateOffset(years=1)]
    if mask_column is not None:
        recent = recent[recent[mask_column].isin(allowed)]
    return np.nan_to_num(_spread(recent.groupby("pid").size(), pids), nan=0.0)


def _after(column: str, start: pd.Timestamp) -> Callable[[pa.Table], pa.Array]:
    """Rows whose `column` lies after `start` (null dates fail, as NaT comparisons do in pandas).

    A column of another type than a timestamp keeps every row: the filter only saves work, the
    feature functions apply their windows again.
    """
    def mask(table: pa.Table) -> pa.Array:
        values = table[column]
        if not pa.types.is_timestamp(values.type) or values.type.tz is not None:
            return pa.array(np.ones(table.num_rows, dtype=bool))
        bound = pa.scalar(start.to_datetime64(), pa.timestamp("us")).cast(values.type)
        return pc.fill_null(pc.greater(values, bound), False)
    return mask


def _billing_window(first: str, last: str) -> Callable[[pa.Table], pa.Array]:
    """Rows billed in [first, last] ("YYYY-MM" strings compare like the months they name)."""
    def mask(table: pa.Table) -> pa.Array:
        values = table["billing_month"]
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            return pa.array(np.ones(table.num_rows, dtype=bool))
        return pc.fill_null(pc.and_(pc.greater_equal(values, first), pc.less_equal(values, last)), False)
    return mask


@dataclass(frozen=True)
class People:
    """Partition `index` of `count` of the ward's people: the pseudonyms whose first eight hex
    digits fall in the partition's equal share of [0, 16⁸).

    Pseudonyms are uniformly distributed HMAC outputs, so partitions are about equal in size,
    and they are contiguous ranges in pid order: concatenating partitions 0…count-1 of a
    pid-sorted table gives the whole table in pid order. `People()` is everybody.
    """

    index: int = 0
    count: int = 1

    def bounds(self) -> tuple[str | None, str | None]:
        low = None if self.index == 0 else f"{self.index * 16**8 // self.count:08x}"
        high = None if self.index == self.count - 1 else f"{(self.index + 1) * 16**8 // self.count:08x}"
        return low, high

    def mask(self, pids: pa.ChunkedArray | pa.Array) -> pa.Array:
        """Which of these pseudonyms belong to the partition (all of them for everybody)."""
        low, high = self.bounds()
        keep = pa.array(np.ones(len(pids), dtype=bool))
        if low is not None:   # same-width lowercase hex: string order is numeric order
            keep = pc.and_(keep, pc.greater_equal(pids, low))
        if high is not None:
            keep = pc.and_(keep, pc.less(pids, high))
        return pc.fill_null(keep, False)

    def of(self, frame: pd.DataFrame | None) -> pd.DataFrame | None:
        """The frame's rows of people in the partition."""
        if frame is None or self.count == 1:
            return frame
        keep = self.mask(pa.array(frame["pid"].array)).to_numpy(zero_copy_only=False)
        return frame[keep].reset_index(drop=True)


def _both(first: Callable[[pa.Table], pa.Array], second: Callable[[pa.Table], pa.Array] | None
          ) -> Callable[[pa.Table], pa.Array]:
    return first if second is None else (lambda table: pc.and_(first(table), second(table)))


def _inputs(lake_dir: Path, as_of_month: str, people: People, hids: pd.Series) -> dict[str, pd.DataFrame | None]:
    """The events each feature group reads: only its columns, only rows inside its window, and
    only rows of the partition's people (NHI bills: of their households).

    Each window is on the event's own date, and the partition on the pid or hid; both are part
    of the source's key, so every row a feature function would keep after the newest-delivery-
    wins rule is still read and the functions below compute the same values as on the whole
    history of the whole ward (see lake.read_events).
    """
    as_of = month_end(as_of_month)
    year_ago = as_of - pd.DateOffset(years=1)
    billed = _billing_window(shift(as_of_month, -11), as_of_month)
    wanted = {
        "checkups": (["pid", "exam_date"], None),
        "care_premiums": (["pid", "billing_month", "amount_due", "amount_paid"], billed),
        "nhi_premiums": (["hid", "billing_month", "amount_due", "amount_paid"], billed),
        "garbage_pickups": (["pid", "pickup_date", "result"], _after("pickup_date", as_of - pd.Timedelta(days=90))),
        "welfare_contacts": (["pid", "contact_date"], None),
        "outreach_outcomes": (["pid", "visit_date", "outcome"], _after("visit_date", year_ago)),
        "adverse_events": (["pid", "event_date", "event_type"], _after("event_date", year_ago)),
    }

    def in_partition(key: str) -> Callable[[pa.Table], pa.Array] | None:
        if people.count == 1:
            return None
        if key == "hid":   # the partition's households (only needed when there is more than one partition)
            households = pa.array(pd.Series(hids.unique(), dtype="str").array)
            return lambda table: pc.fill_null(pc.is_in(table["hid"], value_set=households), False)
        return lambda table: people.mask(table["pid"])

    inputs = {}
    for name, (columns, where) in wanted.items():
        ours = in_partition(columns[0])
        where = ours if where is None else where if ours is None else _both(ours, where)
        inputs[name] = _known(lake.read_events(lake_dir, name, as_of_month, columns, where), as_of)
    return inputs


RESIDENT_COLUMNS = ["pid", "hid", "district", "sex", "age", "household_size", "months_at_address"]


def build_features(lake_dir: Path, as_of_month: str, people: People = People()) -> pd.DataFrame:
    """One row per resident of the as-of month's snapshot (of the partition's people, pid
    order): cohort attributes + model features. Reads the partition's tables, then
    `features_of` computes."""
    residents = people.of(lake.read_snapshot(lake_dir, "residents", as_of_month, columns=RESIDENT_COLUMNS))
    if residents is None:
        raise FileNotFoundError(f"the lake has no residents snapshot for {as_of_month}")
    first_month = min(lake.ingested_months(lake_dir))
    history = (pd.Period(as_of_month, "M") - pd.Period(first_month, "M")).n + 1
    tables = _inputs(lake_dir, as_of_month, people, residents["hid"])
    tables["residents"] = residents
    tables["care_certifications"] = people.of(lake.read_snapshot(
        lake_dir, "care_certifications", as_of_month, columns=["pid", "care_level", "valid_from", "valid_to"]))
    return features_of(tables, as_of_month, history)


def features_of(tables: dict[str, pd.DataFrame | None], as_of_month: str, history: int) -> pd.DataFrame:
    """The feature table of one partition of people from that partition's tables (pandas in,
    pandas out; no I/O): `residents` (the as-of snapshot), `care_certifications`, and the
    events of `_inputs` as known at the as-of date. `history` is the months the lake covers,
    the value "months since" takes when nothing is on record. The unit a distributed engine
    would run per partition (e.g. Spark's mapInPandas)."""
    residents = tables["residents"]
    as_of = month_end(as_of_month)
    household_of, hids = pd.factorize(residents["hid"])   # NHI bills are per household
    out = cohort(residents)
    pids = pd.Index(out["pid"])   # one hash table of the people, shared by every feature
    out["months_at_address_imp"] = out["months_at_address"].isna().astype("float64")
    out["months_since_checkup"], out["months_since_checkup_imp"] = months_since_last(
        tables["checkups"], "exam_date", pids, as_of, history)
    out["care_arrears_months"], out["care_arrears_months_imp"] = arrears_months(
        tables["care_premiums"], "pid", pids, as_of_month)
    nhi, nhi_imp = arrears_months(tables["nhi_premiums"], "hid", pd.Index(hids), as_of_month)
    out["nhi_arrears_months"], out["nhi_arrears_months_imp"] = nhi[household_of], nhi_imp[household_of]
    out["care_level"] = care_level(tables["care_certifications"], pids, as_of)
    out["garbage_no_response_90d"], out["garbage_no_response_90d_imp"] = garbage_no_response(
        tables["garbage_pickups"], pids, as_of)
    out["months_since_contact"], out["months_since_contact_imp"] = months_since_last(
        tables["welfare_contacts"], "contact_date", pids, as_of, history)
    out["missed_visits_12m"] = count_in_year(tables["outreach_outcomes"], "visit_date", "outcome",
                                             {"not_home", "declined"}, pids, as_of)
    out["emergencies_12m"] = count_in_year(tables["adverse_events"], "event_date", "event_type",
                                           {"emergency"}, pids, as_of)
    out["as_of_month"] = as_of_month
    ordered = ["pid", "as_of_month", "district", "sex"] + MODEL_FEATURES
    assert set(FLAGGED) <= set(out.columns)
    return out[ordered].sort_values("pid", kind="stable").reset_index(drop=True)
