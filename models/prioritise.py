"""Cut scores into the month's outreach list, district by district, sized to visiting capacity."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.groups import AGE_BANDS


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


REMEDIES = ("none", "age_band_min_share")


@dataclass(frozen=True)
class Remedy:
    """`[fairness] remedy` with `[fairness.min_share]`: what the list does about a group the
    fairness audit finds under-served. "none" cuts each district's ranked slots by score alone;
    "age_band_min_share" gives each configured age band at least its share of every district's
    ranked (non-exploration) slots, as far as eligible people of the band exist."""
    kind: str = "none"
    min_share: tuple[tuple[str, float], ...] = ()     # (age band of features.groups.AGE_BANDS, share), band order

    @property
    def active(self) -> bool:
        return self.kind == "age_band_min_share" and any(share > 0 for _, share in self.min_share)

    @classmethod
    def of(cls, fairness: dict, offered: bool = False) -> "Remedy":
        """The configured remedy (ValueError, in both languages, for an unknown kind or band, a share
        outside [0, 1] or shares summing past 1). `offered`: the min-share remedy with the configured
        shares even when `remedy = "none"`, the one the report measures so its cost is known first."""
        kind = fairness.get("remedy", "none")
        if kind not in REMEDIES:
            raise ValueError(f"[fairness] remedy は {' / '.join(REMEDIES)} のどれかです（{kind!r} は使えません） / "
                             f"[fairness] remedy must be one of {', '.join(REMEDIES)}, not {kind!r}")
        given = dict(fairness.get("min_share") or {})
        bands = [label for _, _, label in AGE_BANDS]
        unknown = sorted(set(given) - set(bands))
        if unknown:
            raise ValueError(f"[fairness.min_share] の年齢区分 {', '.join(unknown)} はありません（使える区分: "
                             f"{', '.join(bands)}） / [fairness.min_share]: no age band {', '.join(unknown)} "
                             f"(the bands are {', '.join(bands)})")
        if any(not 0 <= float(v) <= 1 for v in given.values()) or sum(float(v) for v in given.values()) > 1 + 1e-9:
            raise ValueError("[fairness.min_share] の割合は0〜1で、合計1以下にしてください / [fairness.min_share]: "
                             "each share is between 0 and 1 and together they are at most 1")
        shares = tuple((b, float(given[b])) for b in bands if b in given)
        return cls("age_band_min_share" if offered else kind, shares)


NO_REMEDY = Remedy()


def minimum_counts(slots: int, shares: tuple[tuple[str, float], ...]) -> dict[str, int]:
    """The fewest people of each band among `slots` ranked slots: share × slots rounded up, as
    far as the slots allow (when the rounded-up counts would not fit, the bands with the largest
    remainders are rounded up first, ties by band)."""
    raw = {band: share * slots for band, share in shares}
    out = {band: math.floor(v + 1e-9) for band, v in raw.items()}
    for band in sorted(raw, key=lambda b: (-(raw[b] - out[b]), b)):
        if raw[band] - out[band] > 1e-9 and sum(out.values()) < slots:
            out[band] += 1
    return out


def _honour(bands: np.ndarray, chosen: np.ndarray, minimum: dict[str, int]) -> np.ndarray:
    """One district's ranked slots (rows in priority order) with every band's minimum met as far
    as its eligible people allow: the highest-ranked person left out of a short band replaces the
    lowest-ranked chosen person of a band above its minimum, one at a time. Each band's chosen
    people stay the top of that band, and the number chosen never changes."""
    chosen = chosen.copy()
    count = {band: int((bands[chosen] == band).sum()) for band in set(bands)}
    while True:
        short = [b for b, n in minimum.items() if count.get(b, 0) < n]
        waiting = np.flatnonzero(~chosen & np.isin(bands, short)) if short else np.zeros(0, dtype=int)
        above = np.array([count[b] > minimum.get(b, 0) for b in bands], dtype=bool)
        spare = np.flatnonzero(chosen & above)
        if not len(waiting) or not len(spare):
            return chosen
        add, drop = waiting[0], spare[-1]
        chosen[add], chosen[drop] = True, False
        count[bands[add]] += 1
        count[bands[drop]] -= 1


def ranked_slots(districts: np.ndarray, bands: np.ndarray | None, limits: dict[str, int],
                 remedy: Remedy = NO_REMEDY) -> np.ndarray:
    """Which rows (in priority order: score descending, pid ascending) fill their district's
    ranked slots (`limits`: capacity less exploration). Without a remedy, each district's first
    `limit` rows; with one, those rows adjusted by `_honour` so each band holds its minimum
    share. The one cut of the list (`make_list`) and of the holdout comparison of the remedy
    (models/fairness.py `remedy_comparison`)."""
    districts = np.asarray(districts).astype(str)
    within = pd.Series(districts).groupby(districts, sort=False).cumcount().to_numpy()
    # as an int array: on an empty frame a mapped Series keeps the districts' str dtype and cannot be compared
    limits = {str(d): int(n) for d, n in limits.items()}
    limit = np.array([limits.get(d, 0) for d in districts], dtype="int64")
    chosen = within < limit
    if not remedy.active or not len(districts):
        return chosen
    if bands is None:
        raise ValueError("the age-band remedy needs each ranked person's age band")
    bands = np.asarray(bands).astype(str)
    for district in dict.fromkeys(districts):
        rows = np.flatnonzero(districts == district)
        minimum = minimum_counts(int(chosen[rows].sum()), remedy.min_share)
        chosen[rows] = _honour(bands[rows], chosen[rows], minimum)
    return chosen


def make_list(scored: pd.DataFrame, caps: dict[str, int], explore: dict[str, int] | None = None,
              seed: int = 0, remedy: Remedy = NO_REMEDY, bands: pd.Series | None = None) -> pd.DataFrame:
    """scored: pid, district, score (eligible people only). Returns the list in ward-wide priority order.

    Within a district the highest scores fill its capacity less its exploration slots (with a
    remedy, as `ranked_slots` adjusts them; `bands`: each scored row's age band, by index); those
    slots go to people drawn at random from the district's eligible rest (marked `exploration`),
    so that later labels are not only about people the model already ranks high. The ward-wide
    rank orders everyone listed by score, ties broken by pid: the same inputs and seed always
    give the same list. `top_percent`, `band` and `band_en` place each listed person among the
    scored (eligible) people: the rank band shown instead of the score.
    """
    explore = explore or {}
    ordered = scored.sort_values(["score", "pid"], ascending=[False, True], kind="stable")
    limits = {d: caps.get(d, 0) - explore.get(d, 0) for d in ordered["district"].unique()}
    in_slots = ranked_slots(ordered["district"].to_numpy(), None if bands is None else
                            bands.reindex(ordered.index).to_numpy(), limits, remedy)
    chosen = ordered[in_slots].assign(exploration=False)
    rest = ordered[~in_slots]
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
