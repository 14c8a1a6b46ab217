"""Point-in-time features for one as-of month.

Every input is read through `lake.read_events`/`read_snapshot` with the as-of month, which
opens only deliveries known by its last day; windows are measured back from that day. One
function per feature group, named for what it returns, each a pure function of lake tables.
"""
from __future__ import annotations

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


def months_since_last(events: pd.DataFrame | None, date_column: str, pids: pd.Series,
                      as_of: pd.Timestamp, history_months: int) -> tuple[np.ndarray, np.ndarray]:
    """Months since a person's last event; with none on record, the history length, flagged."""
    last = (events.groupby("pid")[date_column].max() if events is not None and len(events)
            else pd.Series(dtype="datetime64[us]"))
    months = _months_before(as_of, last).reindex(pids).astype("float64").to_numpy()
    imputed = np.isnan(months)
    return np.where(imputed, float(history_months), months), imputed.astype("float64")


def arrears_months(bills: pd.DataFrame | None, key: str, ids: pd.Series, as_of_month: str) -> tuple[np.ndarray, np.ndarray]:
    """Bills of the last 12 billing months not fully paid (as known at as-of); unbilled flagged."""
    if bills is None or not len(bills):
        return np.zeros(len(ids)), np.ones(len(ids))
    first = shift(as_of_month, -11)
    window = bills[(bills["billing_month"] >= first) & (bills["billing_month"] <= as_of_month)]
    unpaid = (window["amount_paid"] < window["amount_due"]).astype("float64")
    per_id = unpaid.groupby(window[key]).sum()
    values = per_id.reindex(ids).to_numpy(dtype="float64")
    imputed = np.isnan(values)
    return np.where(imputed, 0.0, values), imputed.astype("float64")


def care_level(certs: pd.DataFrame | None, pids: pd.Series, as_of: pd.Timestamp) -> np.ndarray:
    if certs is None or not len(certs):
        return np.zeros(len(pids))
    valid = certs[(certs["valid_from"] <= as_of) & (certs["valid_to"].isna() | (certs["valid_to"] >= as_of))]
    level = valid["care_level"].map(CARE_LEVEL_ORDINAL).groupby(valid["pid"]).max()
    return level.reindex(pids).fillna(0).to_numpy(dtype="float64")


def garbage_no_response(pickups: pd.DataFrame | None, pids: pd.Series, as_of: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Unanswered door-to-door pickups in the last 90 days; people not enrolled are flagged."""
    if pickups is None or not len(pickups):
        return np.zeros(len(pids)), np.ones(len(pids))
    recent = pickups[pickups["pickup_date"] > as_of - pd.Timedelta(days=90)]
    counts = (recent["result"] == "no_response").groupby(recent["pid"]).sum().astype("float64")
    values = counts.reindex(pids).to_numpy(dtype="float64")
    imputed = np.isnan(values)
    return np.where(imputed, 0.0, values), imputed.astype("float64")


def count_in_year(events: pd.DataFrame | None, date_column: str, mask_column: str | None,
                  allowed: set[str] | None, pids: pd.Series, as_of: pd.Timestamp) -> np.ndarray:
    if events is None or not len(events):
        return np.zeros(len(pids))
    recent = events[events[date_column] > as_of - pd.DateOffset(years=1)]
    if mask_column is not None:
        recent = recent[recent[mask_column].isin(allowed)]
    return recent.groupby("pid").size().reindex(pids).fillna(0).to_numpy(dtype="float64")


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


def _inputs(lake_dir: Path, as_of_month: str) -> dict[str, pd.DataFrame | None]:
    """The events each feature group reads: only its columns, and only rows inside its window.

    Each window is on the event's own date, which is part of the source's key, so every row a
    feature function would keep after the newest-delivery-wins rule is still read and the
    functions below compute the same values as on the whole history (see lake.read_events).
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
    return {name: _known(lake.read_events(lake_dir, name, as_of_month, columns, where), as_of)
            for name, (columns, where) in wanted.items()}


RESIDENT_COLUMNS = ["pid", "hid", "district", "sex", "age", "household_size", "months_at_address"]


def build_features(lake_dir: Path, as_of_month: str) -> pd.DataFrame:
    """One row per resident of the as-of month's snapshot: cohort attributes + model features."""
    residents = lake.read_snapshot(lake_dir, "residents", as_of_month, columns=RESIDENT_COLUMNS)
    if residents is None:
        raise FileNotFoundError(f"the lake has no residents snapshot for {as_of_month}")
    as_of = month_end(as_of_month)
    first_month = min(lake.ingested_months(lake_dir))
    history = (pd.Period(as_of_month, "M") - pd.Period(first_month, "M")).n + 1
    events = _inputs(lake_dir, as_of_month)
    out = cohort(residents)
    pids = out["pid"]
    hids = residents["hid"]
    out["months_at_address_imp"] = out["months_at_address"].isna().astype("float64")
    out["months_since_checkup"], out["months_since_checkup_imp"] = months_since_last(
        events["checkups"], "exam_date", pids, as_of, history)
    out["care_arrears_months"], out["care_arrears_months_imp"] = arrears_months(
        events["care_premiums"], "pid", pids, as_of_month)
    nhi, nhi_imp = arrears_months(events["nhi_premiums"], "hid", hids, as_of_month)
    out["nhi_arrears_months"], out["nhi_arrears_months_imp"] = nhi, nhi_imp
    certs = lake.read_snapshot(lake_dir, "care_certifications", as_of_month,
                               columns=["pid", "care_level", "valid_from", "valid_to"])
    out["care_level"] = care_level(certs, pids, as_of)
    out["garbage_no_response_90d"], out["garbage_no_response_90d_imp"] = garbage_no_response(
        events["garbage_pickups"], pids, as_of)
    out["months_since_contact"], out["months_since_contact_imp"] = months_since_last(
        events["welfare_contacts"], "contact_date", pids, as_of, history)
    out["missed_visits_12m"] = count_in_year(events["outreach_outcomes"], "visit_date", "outcome",
                                             {"not_home", "declined"}, pids, as_of)
    out["emergencies_12m"] = count_in_year(events["adverse_events"], "event_date", "event_type",
                                           {"emergency"}, pids, as_of)
    out["as_of_month"] = as_of_month
    ordered = ["pid", "as_of_month", "district", "sex"] + MODEL_FEATURES
    assert set(FLAGGED) <= set(out.columns)
    return out[ordered].sort_values("pid", kind="stable").reset_index(drop=True)
