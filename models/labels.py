"""Labels: what happened in the label timespan after an as-of date.

positive: a visit found `needs_support`, or an adverse event happened, in (as-of, as-of + timespan];
negative: a visit found `no_concern` (and nothing adverse);
unlabelled: `not_home`/`declined` only, what a visit found instead of the person's state
(`hospitalised`, `moved`, `institution`, `deceased`, `other`), or never visited. Only visited people get negatives, so
by default adverse events of unvisited people are not used either (see defaults.toml).
Outcomes are read as known at the *current* month: a window is usable only once it has closed.
"""
from __future__ import annotations

from dataclasses import dataclass
import pandas as pd

from contract.months import month_end


def window_closed(as_of_month: str, current_month: str, timespan_days: int) -> bool:
    return month_end(as_of_month) + pd.Timedelta(days=timespan_days) <= month_end(current_month)


@dataclass(frozen=True)
class Outcomes:
    """Visit outcomes and adverse events as known at the end of one month (loaded by the
    catalogue: pipelines/catalog/lake.outcomes_known_at)."""
    visits: pd.DataFrame     # pid, visit_date, outcome
    adverse: pd.DataFrame    # pid, event_date, event_type


def labels(outcomes: Outcomes, as_of_month: str, timespan_days: int,
           adverse_events_of_unvisited: bool = False, positive_outcomes: tuple[str, ...] = ("needs_support",),
           negative_outcomes: tuple[str, ...] = ("no_concern",)) -> pd.DataFrame:
    """pid, label (1/0) for people with a label in the window after `as_of_month`.

    Visit outcomes in neither tuple (by default `not_home`, `declined`, `hospitalised`, `moved`,
    `institution`, `deceased`, `other`) leave a person unlabelled."""
    start = month_end(as_of_month)
    end = start + pd.Timedelta(days=timespan_days)
    v, a = outcomes.visits, outcomes.adverse
    visits = v[(v["visit_date"] > start) & (v["visit_date"] <= end)]
    adverse = a[(a["event_date"] > start) & (a["event_date"] <= end)]
    visited = set(visits["pid"])
    positive = set(visits.loc[visits["outcome"].isin(positive_outcomes), "pid"])
    adverse_pids = set(adverse["pid"])
    positive |= adverse_pids if adverse_events_of_unvisited else (adverse_pids & visited)
    negative = set(visits.loc[visits["outcome"].isin(negative_outcomes), "pid"]) - positive
    out = pd.DataFrame({"pid": sorted(positive) + sorted(negative),
                        "label": [1] * len(positive) + [0] * len(negative)})
    return out.sort_values("pid", kind="stable").reset_index(drop=True)
