"""Cut scores into the month's outreach list, district by district, sized to visiting capacity."""
from __future__ import annotations

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
    raw = weights * remaining
    base = np.floor(raw).astype(int)
    order = sorted(range(len(free)), key=lambda i: (-(raw[i] - base[i]), free[i]))
    for i in order[: remaining - base.sum()]:
        base[i] += 1
    out = {d: int(fixed[d]) for d in districts if d in fixed}
    out.update({d: int(n) for d, n in zip(free, base)})
    return dict(sorted(out.items()))


def eligible(cohort: pd.DataFrame, excluded: set[str], recently_visited: set[str], min_age: int = 0) -> pd.Series:
    """Who may be listed: old enough, not excluded (objection, open case, institution), not visited lately."""
    return (cohort["age"] >= min_age) & ~cohort["pid"].isin(excluded | recently_visited)


def make_list(scored: pd.DataFrame, caps: dict[str, int]) -> pd.DataFrame:
    """scored: pid, district, score (eligible people only). Returns the list in ward-wide priority order.

    Within a district the highest scores fill its capacity; the ward-wide rank orders everyone
    listed by score, ties broken by pid so that the same inputs always give the same list.
    """
    ordered = scored.sort_values(["score", "pid"], ascending=[False, True], kind="stable")
    within = ordered.groupby("district", sort=False).cumcount()
    limit = ordered["district"].map(caps).fillna(0)
    listed = ordered[within < limit].reset_index(drop=True)
    listed.insert(1, "rank", np.arange(1, len(listed) + 1))
    return listed
