"""Cut scores into the month's outreach list, district by district, sized to visiting capacity."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def capacity(cohort: pd.DataFrame, share_of_residents: float, fixed: dict[str, int] | None = None) -> dict[str, int]:
    """Visits per district: `share_of_residents` of the ward, split by residents aged 65+.

    Largest-remainder rounding keeps the ward total exact; districts given in `fixed` get
    exactly that many and the rest is shared among the others.
    """
    fixed = dict(fixed or {})
    districts = sorted(cohort["district"].unique())
    total = int(round(share_of_residents * len(cohort)))
    remaining = max(total - sum(v for d, v in fixed.items() if d in districts), 0)
    free = [d for d in districts if d not in fixed]
    elderly = (cohort["age"] >= 65).groupby(cohort["district"]).sum().reindex(free).fillna(0).to_numpy(dtype=float)
    weights = elderly / elderly.sum() if elderly.sum() else np.full(len(free), 1 / max(len(free), 1))
    out = {d: int(fixed[d]) for d in districts if d in fixed}
    out.update(_largest_remainder(dict(zip(free, weights * remaining)), remaining))
    return dict(sorted(out.items()))


def eligible(cohort: pd.DataFrame, excluded: set[str], recently_visited: set[str], min_age: int = 0) -> pd.Series:
    """Who may be listed: old enough, not excluded (objection, open case, institution), not visited lately."""
    return (cohort["age"] >= min_age) & ~cohort["pid"].isin(excluded | recently_visited)


def excluded_at(exclusions: pd.DataFrame | None, as_of: pd.Timestamp) -> set[str]:
    """People who must not be listed at the as-of date (an exclusion valid on that day)."""
    if exclusions is None or not len(exclusions):
        return set()
    valid = ((exclusions["valid_from"].isna() | (exclusions["valid_from"] <= as_of))
             & (exclusions["valid_to"].isna() | (exclusions["valid_to"] >= as_of)))
    return set(exclusions.loc[valid, "pid"])


def visited_since(visits: pd.DataFrame | None, cutoff: pd.Timestamp) -> set[str]:
    """People visited after the cutoff date."""
    if visits is None or not len(visits):
        return set()
    return set(visits.loc[visits["visit_date"] > cutoff, "pid"])


@dataclass(frozen=True)
class Eligibility:
    """Who may be listed this month, and the counts the report shows (computed once)."""
    mask: np.ndarray          # per feature row: may be listed
    excluded: int             # residents excluded (objection, open case, institution)
    recently_visited: int     # residents visited within the recent-visit window
    eligible: int
    min_age_cohort: int       # residents at or above the minimum age


def eligibility(features: pd.DataFrame, excluded: set[str], visited: set[str], min_age: int) -> Eligibility:
    ok = eligible(features, excluded, visited, min_age)
    return Eligibility(ok.to_numpy(), int(features["pid"].isin(excluded).sum()),
                       int(features["pid"].isin(visited).sum()), int(ok.sum()), int((features["age"] >= min_age).sum()))


def _largest_remainder(raw: dict[str, float], total: int) -> dict[str, int]:
    base = {d: int(np.floor(v)) for d, v in raw.items()}
    order = sorted(raw, key=lambda d: (-(raw[d] - base[d]), d))
    for d in order[: max(total - sum(base.values()), 0)]:
        base[d] += 1
    return base


def exploration_slots(caps: dict[str, int], share: float) -> dict[str, int]:
    """How many of each district's visits go to random picks: `share` of the ward's visits."""
    return _largest_remainder({d: c * share for d, c in caps.items()}, int(round(share * sum(caps.values()))))


def make_list(scored: pd.DataFrame, caps: dict[str, int], explore: dict[str, int] | None = None,
              seed: int = 0) -> pd.DataFrame:
    """scored: pid, district, score (eligible people only). Returns the list in ward-wide priority order.

    Within a district the highest scores fill its capacity less its exploration slots; those
    slots go to people drawn at random from the district's eligible rest (marked `exploration`),
    so that later labels are not only about people the model already ranks high. The ward-wide
    rank orders everyone listed by score, ties broken by pid: the same inputs and seed always
    give the same list. `top_percent`, `band` and `band_en` place each listed person among the
    scored (eligible) people: the rank band shown instead of the score.
    """
    explore = explore or {}
    ordered = scored.sort_values(["score", "pid"], ascending=[False, True], kind="stable")
    within = ordered.groupby("district", sort=False).cumcount().to_numpy()
    # as an int array: on an empty frame a mapped Series keeps the districts' str dtype and cannot be compared
    limits = {d: caps.get(d, 0) - explore.get(d, 0) for d in ordered["district"].unique()}
    limit = ordered["district"].map(limits).to_numpy(dtype="int64") if len(ordered) else np.zeros(0, dtype="int64")
    chosen = ordered[within < limit].assign(exploration=False)
    rest = ordered[within >= limit]
    rng = np.random.default_rng(seed)
    picks = [group.sort_values("pid").iloc[np.sort(rng.choice(len(group), min(explore.get(d, 0), len(group)),
                                                              replace=False))]
             for d, group in rest.groupby("district", sort=True) if explore.get(d, 0) > 0]
    listed = pd.concat([chosen] + [p.assign(exploration=True) for p in picks], ignore_index=True)
    listed["exploration"] = listed["exploration"].astype(bool)
    listed = listed.sort_values(["score", "pid"], ascending=[False, True], kind="stable").reset_index(drop=True)
    listed.insert(1, "rank", np.arange(1, len(listed) + 1))
    listed["top_percent"] = top_percent(listed["score"].to_numpy(dtype="float64"), scored["score"].to_numpy(dtype="float64"))
    texts = [band_text(p) for p in listed["top_percent"]]
    listed["band"] = pd.Series([t[0] for t in texts], index=listed.index, dtype="object")
    listed["band_en"] = pd.Series([t[1] for t in texts], index=listed.index, dtype="object")
    return listed


def top_percent(scores: np.ndarray, cohort: np.ndarray) -> np.ndarray:
    """Each score's rank band among the cohort's scores: the share of the cohort scoring at least
    as high, in per cent, rounded up to 0.1 (so "top 0.5%" is true of everyone tied with them).

    This, not the score, is what people are shown: an uncalibrated model's score and a rule's
    points look like probabilities and are not; a band says only where the person stands among
    the people the list was chosen from (the month's eligible cohort)."""
    if not len(scores):
        return np.zeros(0)
    ordered = np.sort(cohort)
    at_least = len(ordered) - np.searchsorted(ordered, scores, side="left")
    return -(-1000 * at_least // len(ordered)) / 10   # integer ceiling: no float rounding at the edges


def band_text(percent: float) -> tuple[str, str]:
    """(ja, en) of a rank band: 「上位0.5%」, "top 0.5%" (of the month's eligible cohort)."""
    figure = f"{percent:.1f}".rstrip("0").rstrip(".")
    return f"上位{figure}%", f"top {figure}%"
