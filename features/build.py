"""Point-in-time features for one as-of month: a pure function of the lake's tables.

The catalogue (pipelines/catalog/features.py) loads the as-of snapshot and the events of
every delivery up to the as-of month, newest delivery winning per key; rows known only after
the as-of date are dropped here, and windows are measured back from that day. One function
per feature group, named for what it returns.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from contract.months import month_end, shift
from features import change
from features.catalog import FLAGGED, MODEL_FEATURES

CARE_LEVEL_ORDINAL = {"support_1": 1, "support_2": 2, "care_1": 3, "care_2": 4, "care_3": 5,
                      "care_4": 6, "care_5": 7}


def _months_before(as_of: pd.Timestamp, dates: pd.Series) -> pd.Series:
    return (as_of.year - dates.dt.year) * 12 + (as_of.month - dates.dt.month)


# Inputs delivered as snapshots (valid as a whole in their month); every other input is events.
SNAPSHOTS = ("residents", "care_certifications")

# The columns and window of each event input the features read, for the catalogue to load
# only those (and only rows inside the window: the functions below apply it again).
EVENT_INPUTS = {
    "checkups": (["pid", "exam_date"], None),
    "care_premiums": (["pid", "billing_month", "amount_due", "amount_paid"], "billing_12m"),
    "nhi_premiums": (["hid", "billing_month", "amount_due", "amount_paid"], "billing_12m"),
    "garbage_pickups": (["pid", "pickup_date", "result"], "90d"),
    "welfare_contacts": (["pid", "contact_date"], None),
    "outreach_outcomes": (["pid", "visit_date", "outcome"], "1y"),
    "adverse_events": (["pid", "event_date", "event_type"], "1y"),
}
RESIDENT_COLUMNS = ["pid", "hid", "district", "sex", "age", "household_size", "months_at_address"]
CERTIFICATION_COLUMNS = ["pid", "care_level", "valid_from", "valid_to"]


def window_start(window: str, as_of_month: str) -> pd.Timestamp | str:
    """Where an input's window starts: a date (events after it) or, for bills, the first billing month."""
    as_of = month_end(as_of_month)
    return {"billing_12m": shift(as_of_month, -11), "90d": as_of - pd.Timedelta(days=90),
            "1y": as_of - pd.DateOffset(years=1)}[window]


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


def change_features(out: pd.DataFrame, tables: dict, pids: pd.Index, as_of_month: str) -> None:
    """The features of change (features/change.py), added to `out` in place."""
    as_of = month_end(as_of_month)
    out["checkup_lapsed"] = change.checkup_lapsed(tables["checkups"], pids, as_of)


def feature_table(tables: dict[str, pd.DataFrame | None], as_of_month: str, history: int) -> pd.DataFrame:
    """The feature table of one pid range of people from that range's tables (pandas in,
    pandas out; no I/O): `residents` (the as-of snapshot), `care_certifications`, and the
    events the catalogue loads for features (pipelines/catalog/features.py), as delivered by
    the as-of month; rows known later are dropped here. `history` is the months the lake covers,
    the value "months since" takes when nothing is on record. The unit a distributed engine
    would run per partition (e.g. Spark's mapInPandas)."""
    residents = tables["residents"]
    as_of = month_end(as_of_month)
    tables = {name: (frame if name in SNAPSHOTS else _known(frame, as_of)) for name, frame in tables.items()}
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
    change_features(out, tables, pids, as_of_month)
    out["as_of_month"] = as_of_month
    ordered = ["pid", "as_of_month", "district", "sex"] + MODEL_FEATURES
    assert set(FLAGGED) <= set(out.columns)
    return out[ordered].sort_values("pid", kind="stable").reset_index(drop=True)
