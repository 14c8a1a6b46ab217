"""Features of change: what became different for a person in the last year, from the lake's history.

The snapshots say how a person lives now; the literature on isolation points first at what
changed: a household that lost a member (bereavement or a child moving away), a checkup habit
that broke, bills that started to go unpaid after years of paying, a welfare contact that
stopped, a return home from hospital or a care facility. (A care certification that is not renewed is
not among them: the synthetic ward renews every certification, so its effect cannot be measured
here; see docs/model-quality.md.)
Each function returns one value per person of the as-of snapshot (numpy, aligned with `pids`)
and reads only what was delivered up to the as-of month (the catalogue passes earlier snapshots
by month; events are already cut at the as-of date by features/build.py).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from contract.months import month_end, shift

LOOKBACK = 12          # months a change is looked for (the 12 of 「12か月以内」 in every phrase)
EARLIER = (13, 36)     # months before as-of that count as "before" for a habit that broke


def _months_before(as_of: pd.Timestamp, dates: pd.Series) -> pd.Series:
    return (as_of.year - dates.dt.year) * 12 + (as_of.month - dates.dt.month)


def _on(per_pid: pd.Series, pids: pd.Index) -> np.ndarray:
    """A per-pid boolean laid out over `pids` (False where absent)."""
    if not len(per_pid):
        return np.zeros(len(pids))
    return pids.isin(per_pid.index[per_pid.to_numpy(dtype=bool)]).astype("float64")


def household_shrank(residents: pd.DataFrame, earlier: dict[str, pd.DataFrame]) -> np.ndarray:
    """1 when the person's household had more members at some month end of the last 12 months
    than now (a member died or moved out, or the person left a larger household); people with
    no earlier snapshot (newcomers) have 0."""
    pids = pd.Index(residents["pid"])
    if not earlier:
        return np.zeros(len(pids))
    frames = [frame[["pid", "household_size"]] for frame in earlier.values() if frame is not None]
    if not frames:
        return np.zeros(len(pids))
    sizes = pd.concat(frames, ignore_index=True)
    largest = sizes.groupby("pid")["household_size"].max()
    before = largest.reindex(pids).to_numpy(dtype="float64")
    now = residents["household_size"].to_numpy(dtype="float64")
    return np.where(np.isnan(before), 0.0, (before > now).astype("float64"))


def moved_recently(months_at_address: np.ndarray) -> np.ndarray:
    """1 when the person moved to their address within the last 12 months (unknown: 0)."""
    return np.where(np.isnan(months_at_address), 0.0, (months_at_address < LOOKBACK).astype("float64"))


def checkup_lapsed(checkups: pd.DataFrame | None, pids: pd.Index, as_of: pd.Timestamp) -> np.ndarray:
    """1 when the person had a checkup 13–36 months ago and none in the last 12 months."""
    if checkups is None or not len(checkups):
        return np.zeros(len(pids))
    ago = _months_before(as_of, checkups["exam_date"])
    recent = (ago < LOOKBACK).groupby(checkups["pid"]).any()
    before = ((ago >= EARLIER[0]) & (ago <= EARLIER[1])).groupby(checkups["pid"]).any()
    return _on(before & ~recent.reindex(before.index, fill_value=False), pids)


def contact_lapsed(contacts: pd.DataFrame | None, pids: pd.Index, as_of: pd.Timestamp) -> np.ndarray:
    """1 when the person had at least two welfare contacts 13–36 months ago and none in the
    last 12 months (someone used to look in, and stopped)."""
    if contacts is None or not len(contacts):
        return np.zeros(len(pids))
    ago = _months_before(as_of, contacts["contact_date"])
    recent = (ago < LOOKBACK).groupby(contacts["pid"]).any()
    before = ((ago >= EARLIER[0]) & (ago <= EARLIER[1])).groupby(contacts["pid"]).sum() >= 2
    return _on(before & ~recent.reindex(before.index, fill_value=False), pids)


def arrears_onset(bills: pd.DataFrame | None, key: str, ids: pd.Index, as_of_month: str) -> np.ndarray:
    """1 when a bill of the last 6 billing months is unpaid after the 12 billing months before
    them were each billed and fully paid (as known at as-of): arrears that started after a
    paying history, not arrears that were always there."""
    if bills is None or not len(bills):
        return np.zeros(len(ids))
    months = bills["billing_month"]
    unpaid = bills["amount_paid"] < bills["amount_due"]
    recent = months >= shift(as_of_month, -5)
    history = (months >= shift(as_of_month, -17)) & (months <= shift(as_of_month, -6))
    new_unpaid = (unpaid & recent & (months <= as_of_month)).groupby(bills[key]).any()
    paid_months = bills.loc[history & ~unpaid, [key, "billing_month"]].drop_duplicates()
    paying = paid_months.groupby(key).size() >= 12
    old_unpaid = (unpaid & history).groupby(bills[key]).any()
    onset = new_unpaid & paying.reindex(new_unpaid.index, fill_value=False) \
        & ~old_unpaid.reindex(new_unpaid.index, fill_value=False)
    return _on(onset, ids)


def garbage_trend(pickups: pd.DataFrame | None, pids: pd.Index, as_of: pd.Timestamp) -> np.ndarray:
    """Unanswered door-to-door pickups in the last 90 days minus those in the 90 days before
    (positive: answering less than before). 0 for people not enrolled."""
    if pickups is None or not len(pickups):
        return np.zeros(len(pids))
    missed = pickups[pickups["result"] == "no_response"]
    days = (as_of - missed["pickup_date"]).dt.days
    now = (days < 90).groupby(missed["pid"]).sum()
    before = ((days >= 90) & (days < 180)).groupby(missed["pid"]).sum()
    change = now.sub(before, fill_value=0)
    return np.nan_to_num(change.reindex(pids).to_numpy(dtype="float64"), nan=0.0)


def returned_home(exclusions_now: pd.DataFrame | None, earlier: dict[str, pd.DataFrame | None],
                  pids: pd.Index, as_of: pd.Timestamp) -> np.ndarray:
    """1 when the person was away in hospital or a care facility (an `institution` exclusion
    valid at some month end of the last 12 months) and is not away now."""
    def away(frame: pd.DataFrame | None, day: pd.Timestamp) -> pd.Series:
        if frame is None or not len(frame):
            return pd.Series(dtype=bool)
        stay = frame[frame["reason"] == "institution"]
        valid = ((stay["valid_from"].isna() | (stay["valid_from"] <= day))
                 & (stay["valid_to"].isna() | (stay["valid_to"] >= day)))
        return valid.groupby(stay["pid"]).any()
    was = np.zeros(len(pids))
    for month, frame in earlier.items():
        was = np.maximum(was, _on(away(frame, month_end(month)), pids))
    return was * (1.0 - _on(away(exclusions_now, as_of), pids))
