"""Features of change: what became different for a person in the last year, from the lake's history.

The snapshots say how a person lives now; the literature on isolation points first at what
changed. One such feature earned its place in the five-ward ablation (docs/model-quality.md)
and is kept: a checkup habit that broke.
Built, measured and dropped (removing each kept or raised the list's precision on the latent
truth): a rise in unanswered door-to-door pickups (dropped in a second run, once the others
were gone), a household that shrank in 12 months, a move in 12 months, arrears that began after a
paying history, welfare contact that stopped and a return home from hospital or a facility. Our
reading: most of what each says is already in a snapshot feature (living alone, months at the
address, arrears months, months since contact, emergencies, unanswered pickups in 90 days). A
care certification that lapses was not built: the synthetic ward renews every certification, so
its effect cannot be measured here. Each function returns one value per person, aligned with
`pids`, from events already cut at the as-of date by features/build.py.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


LOOKBACK = 12          # months a change is looked for (the 12 of 「12か月以内」 in every phrase)
EARLIER = (13, 36)     # months before as-of that count as "before" for a habit that broke


def _months_before(as_of: pd.Timestamp, dates: pd.Series) -> pd.Series:
    return (as_of.year - dates.dt.year) * 12 + (as_of.month - dates.dt.month)


def _on(per_pid: pd.Series, pids: pd.Index) -> np.ndarray:
    """A per-pid boolean laid out over `pids` (False where absent)."""
    if not len(per_pid):
        return np.zeros(len(pids))
    return pids.isin(per_pid.index[per_pid.to_numpy(dtype=bool)]).astype("float64")


def checkup_lapsed(checkups: pd.DataFrame | None, pids: pd.Index, as_of: pd.Timestamp) -> np.ndarray:
    """1 when the person had a checkup 13–36 months ago and none in the last 12 months."""
    if checkups is None or not len(checkups):
        return np.zeros(len(pids))
    ago = _months_before(as_of, checkups["exam_date"])
    recent = (ago < LOOKBACK).groupby(checkups["pid"]).any()
    before = ((ago >= EARLIER[0]) & (ago <= EARLIER[1])).groupby(checkups["pid"]).any()
    return _on(before & ~recent.reindex(before.index, fill_value=False), pids)
