"""Labels: what happened in the label timespan after an as-of date, under the ward's label policy.

Visits are chosen by today's rule, so labels from visits alone describe people like those already
visited (in the synthetic ward: aged 90 on average, nearly all living alone), and a model trained
on them extrapolates to everyone else. The policy (`[labels] sources`) names which honest signals
make labels:

- `visits`: a visit in the window found `needs_support` (1) or `no_concern` (0); other outcomes
  (`not_home`, `declined`, `hospitalised`, `moved`, …) leave the person unlabelled.
- `adverse_events`: an isolated death or an emergency in the window is a positive for anyone,
  visited or not, and everyone else in the as-of cohort (aged `min_age`+) who has no positive is a
  negative. Adverse events happen whether or not a rule sends a visitor, so these labels cover
  the whole cohort without the rule's selection. People whose only visit outcome is ambiguous
  (not_home, declined, …) stay unlabelled. When the cohort's negatives exceed
  `max_negatives_per_month`, a deterministic share of them is kept (by pseudonym) and weighted
  by the inverse of that share, so the fit sees the cohort's true proportions.
- `not_home`: `not_home_repeated` or more unanswered visits in the window are a positive (a door
  that is never answered), among the visited.

Outcomes are read as known at the *current* month: a window is usable only once it has closed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from contract.months import month_end

SOURCES = ("visits", "adverse_events", "not_home")


def window_closed(as_of_month: str, current_month: str, timespan_days: int) -> bool:
    return month_end(as_of_month) + pd.Timedelta(days=timespan_days) <= month_end(current_month)


@dataclass(frozen=True)
class Outcomes:
    """Visit outcomes and adverse events as known at the end of one month (loaded by the
    catalogue: pipelines/catalog/lake.outcomes_known_at)."""
    visits: pd.DataFrame     # pid, visit_date, outcome
    adverse: pd.DataFrame    # pid, event_date, event_type


@dataclass(frozen=True)
class LabelPolicy:
    """The `[labels]` section, checked."""
    timespan_days: int
    sources: tuple[str, ...] = ("visits",)
    positive_outcomes: tuple[str, ...] = ("needs_support",)
    negative_outcomes: tuple[str, ...] = ("no_concern",)
    not_home_repeated: int = 2
    max_negatives_per_month: int = 20000

    @classmethod
    def of(cls, section: dict) -> "LabelPolicy":
        unknown = sorted(set(section["sources"]) - set(SOURCES))
        if unknown or not section["sources"]:
            raise ValueError(f"[labels] sources must name some of {', '.join(SOURCES)}; got {section['sources']!r}")
        return cls(int(section["timespan_days"]), tuple(section["sources"]), tuple(section["positive_outcomes"]),
                   tuple(section["negative_outcomes"]), int(section["not_home_repeated"]),
                   int(section["max_negatives_per_month"]))

    @property
    def population(self) -> bool:
        """Whether unvisited people of the cohort get labels (then `labels` needs the cohort)."""
        return "adverse_events" in self.sources


def _kept_share(pids: np.ndarray, month: str, share: float) -> np.ndarray:
    """A deterministic sample of `share` of `pids` (by a hash of pseudonym and month)."""
    if share >= 1:
        return np.ones(len(pids), dtype=bool)
    # pandas' hash is SipHash with a fixed key: the same sample on every machine and run
    keys = pd.Series(pids, dtype="str").radd(f"{month}:")
    draw = pd.util.hash_pandas_object(keys, index=False).to_numpy(dtype="uint64") / 2.0**64
    return draw < share


def labels(outcomes: Outcomes, as_of_month: str, policy: LabelPolicy, cohort: pd.Series | None = None) -> pd.DataFrame:
    """pid, label (1/0), weight for the people labelled in the window after `as_of_month`.

    `cohort`: the pids of the as-of month's people aged `min_age`+, needed when the policy
    labels the unvisited (`adverse_events`)."""
    start = month_end(as_of_month)
    end = start + pd.Timedelta(days=policy.timespan_days)
    v, a = outcomes.visits, outcomes.adverse
    visits = v[(v["visit_date"] > start) & (v["visit_date"] <= end)]
    adverse = set(a.loc[(a["event_date"] > start) & (a["event_date"] <= end), "pid"])
    visited = set(visits["pid"])
    positive: set[str] = set()
    negative: set[str] = set()
    if "visits" in policy.sources:
        positive |= set(visits.loc[visits["outcome"].isin(policy.positive_outcomes), "pid"]) | (adverse & visited)
        negative |= set(visits.loc[visits["outcome"].isin(policy.negative_outcomes), "pid"])
    if "not_home" in policy.sources:
        unanswered = visits.loc[visits["outcome"] == "not_home", "pid"].value_counts()
        positive |= set(unanswered.index[unanswered >= policy.not_home_repeated])
    population = pd.Series(dtype="str")
    if policy.population:
        if cohort is None:
            raise ValueError("the adverse_events label source needs the as-of cohort")
        positive |= adverse
        # ambiguous visit outcomes say nothing either way: those people stay unlabelled
        answered = set(visits.loc[visits["outcome"].isin(policy.negative_outcomes), "pid"])
        unclear = visited - answered - positive
        rest = pd.Series(sorted(set(cohort) - positive - negative - unclear), dtype="str")
        share = min(1.0, policy.max_negatives_per_month / len(rest)) if len(rest) else 1.0
        population = rest[_kept_share(rest.to_numpy(), as_of_month, share)]
        population_weight = 1.0 / share
    negative -= positive
    # `visit`: the label is what a visit found (or an event of someone visited); `population`:
    # what happened to someone nobody was sent to. The two are measured differently (a visit
    # finds most isolated people it reaches, an adverse event befalls few of them), which the
    # linear candidate absorbs in a term of its own (models/candidates.py).
    found = visited & (positive | negative)
    frames = [pd.DataFrame({"pid": sorted(positive), "label": 1, "weight": 1.0}),
              pd.DataFrame({"pid": sorted(negative), "label": 0, "weight": 1.0})]
    if len(population):
        frames.append(pd.DataFrame({"pid": population.to_numpy(), "label": 0, "weight": population_weight}))
    out = pd.concat(frames, ignore_index=True).astype({"pid": "str", "label": "int64", "weight": "float64"})
    out["visit_label"] = out["pid"].isin(found).astype("float64")
    return out.sort_values("pid", kind="stable").reset_index(drop=True)
