"""Every count of people the report and the model card publish, registered with the one
disclosure pass (reports/disclosure.py) under its canonical identity, with the relations between
them. The sections then ask the pass how each cell and rate reads; a section cannot show a count
this module did not register (`Disclosed.text` raises), so no table escapes the pass.

Populations (the first part of a cell's key):
- `residents` (everyone scored), `aged 65+`, `aged {min_age}+`, `excluded`, `recently visited`,
  `eligible`, `listed` (this month's list; `listed` ⊆ `eligible` ⊆ `residents`);
- on the holdout month: `holdout` (the ranked cohort), `holdout labelled`, `holdout positive`
  (people in need), and per ranker `top-k:<ranker>` with its `top-k labelled/positive/negative`
  parts (`… worst`/`… best` for the tie orders, `…@<district>` at a district's own capacity);
- `holdout labels` and `training labels` (the label counts training recorded), `calibration`.
- §6: `listed` by `reason` (a person has several: each ≤ listed) and by `wording` (the worded
  reasons, rare ones pooled as `other`, with the exploration picks they partition the list).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.catalog import CATALOG
from features.groups import AGE_BANDS, SEX_JA, age_band
from models.fairness import WHOLE
from reports.disclosure import Cells, Key, total

AUDITED = ("sex", "age_band", "district", "living_alone")   # the attributes of models.fairness.audit_groups


@dataclass(frozen=True)
class AuditKeys:
    """The populations behind one audit table's columns."""
    people: str
    selected: str
    positive: str | None = None       # people in need (recall's denominator)
    true_positive: str | None = None
    selected_labelled: str | None = None
    false_positive: str | None = None

    def key(self, column: str, row: dict) -> Key | None:
        population = getattr(self, column)
        return None if population is None else (population, row["attribute"], str(row["group"]))


def month_audit_keys() -> AuditKeys:
    return AuditKeys("eligible", "listed")


def holdout_audit_keys(who: str) -> AuditKeys:
    return AuditKeys("holdout", f"top-k:{who}", "holdout positive", f"top-k positive:{who}",
                     f"top-k labelled:{who}", f"top-k negative:{who}")


def at_k_keys(who: str, district: str | None = None, ties: str = "") -> dict[str, Key]:
    """The cells of one ranker's figures at k (ties: "", "worst" or "best"; a district: at its own capacity)."""
    cut = "top-k" + (f" {ties}" if ties else "")
    where = f":{who}" + (f"@{district}" if district else "")
    return {"labelled": total(f"{cut} labelled{where}"), "positive": total(f"{cut} positive{where}"),
            "positives_total": ("holdout positive", "district", district) if district else total("holdout positive")}


def candidate_ranker(name: str, challenger: str | None) -> str:
    """A candidate's ranker name: the challenger's candidate row is the model's row (one cell)."""
    return "model" if name == challenger else f"candidate {name}"


def register_at_k(cells: Cells, who: str, m: dict, district: str | None = None) -> None:
    for ties in ("", "worst", "best"):
        suffix = f"_{ties}" if ties else ""
        keys = at_k_keys(who, district, ties)
        # the tie orders' counts and the positives in the holdout appear only inside rates
        cells.count(keys["labelled"], m.get(f"labelled_in_top_k{suffix}") or 0, printed=not ties)
        cells.count(keys["positive"], m.get(f"positives_in_top_k{suffix}") or 0, printed=not ties)
        cells.count(keys["positives_total"], m.get("positives_total") or 0, printed=False)
        cells.rate(keys["positive"], keys["labelled"])
        cells.rate(keys["positive"], keys["positives_total"])


def register_audit(cells: Cells, rows: list[dict], keys: AuditKeys) -> None:
    """One audit's rows (models.fairness.audit): each attribute's groups partition the whole."""
    if not rows:
        return
    whole = next(r for r in rows if (r["attribute"], r["group"]) == WHOLE)

    def value(row: dict, column: str) -> int | None:
        if column == "false_positive":
            sl, tp = row.get("selected_labelled"), row.get("true_positives")
            return None if sl is None or tp is None else sl - tp
        return row.get({"people": "people", "selected": "selected", "positive": "positives",
                        "true_positive": "true_positives", "selected_labelled": "selected_labelled"}[column])

    columns = [c for c in ("people", "selected", "positive", "true_positive", "selected_labelled", "false_positive")
               if getattr(keys, c) is not None]
    for column in columns:
        population = getattr(keys, column)
        for attribute in dict.fromkeys(r["attribute"] for r in rows if r["attribute"] != WHOLE[0]):
            mine = {str(r["group"]): value(r, column) for r in rows if r["attribute"] == attribute}
            # people and selected are columns; the outcome counts appear only inside recall and FDR
            cells.partition(population, attribute, mine, value(whole, column),
                            printed=column in ("people", "selected"))
    for r in rows:
        k = {c: keys.key(c, r) for c in columns}
        cells.subset(k["selected"], k["people"])
        cells.rate(k["selected"], k["people"])
        if keys.positive is not None:
            cells.subset(k["positive"], k["people"])
            cells.subset(k["selected_labelled"], k["selected"])
            cells.relation(k["selected_labelled"], (k["true_positive"], k["false_positive"]))
            cells.rate(k["true_positive"], k["positive"])
            cells.rate(k["false_positive"], k["selected_labelled"])


def register_holdout(cells: Cells, evaluation: dict, candidates: dict, challenger: str | None,
                     fairness: dict, calibration: list[dict] = ()) -> None:
    """§4 (every ranker at k, per district, the candidates), the holdout audits and calibration."""
    for who, m in evaluation.items():
        register_at_k(cells, who, m)
        for district, dm in sorted((m.get("districts") or {}).items()):
            register_at_k(cells, who, dm, district)
    for name, m in candidates.items():
        register_at_k(cells, candidate_ranker(name, challenger), m)
    for who, rows in fairness.items():
        register_audit(cells, rows, holdout_audit_keys(who))
        if rows:
            whole = rows[0]
            cells.count(total("holdout labelled"), whole.get("labelled"), printed=False)
            cells.subset(total("holdout positive"), total("holdout labelled"))
    if calibration:
        # the calibration bins partition the labelled holdout people (and their positives)
        n = {str(i): b["n"] for i, b in enumerate(calibration)}
        positive = {str(i): round(b["observed"] * b["n"]) for i, b in enumerate(calibration)}
        cells.partition("holdout labelled", "calibration bin", n, sum(n.values()))
        cells.printed.discard(total("holdout labelled"))     # the bins are shown, their sum is not
        cells.partition("holdout positive", "calibration bin", positive, sum(positive.values()), printed=False)
        for i in n:
            cells.rate(("holdout positive", "calibration bin", i), ("holdout labelled", "calibration bin", i))


def register_labels(cells: Cells, counts: dict) -> None:
    """The label counts training recorded (every labelled row of the training and holdout months)."""
    for name, population in (("train", "training labels"), ("holdout", "holdout labels")):
        if f"{name}_labelled" in counts:
            cells.count(total(population), counts[f"{name}_labelled"])
            cells.count((population, "label", "positive"), counts.get(f"{name}_positive", 0))
            cells.subset((population, "label", "positive"), total(population))
    if "train_labelled" in counts and "holdout_labelled" in counts:
        # the registered version is refitted on both: its label counts are the sums
        for part, key in (("labelled", WHOLE), ("positive", ("label", "positive"))):
            whole = cells.count(("refit labels", *key), counts[f"train_{part}"] + counts.get(f"holdout_{part}", 0))
            cells.relation(whole, (("training labels", *key), ("holdout labels", *key)))
    if "holdout_cohort" in counts:
        cells.count(total("holdout"), counts["holdout_cohort"])
        cells.rate(total("holdout labels"), total("holdout"))
        cells.subset(total("holdout labelled"), total("holdout labels"))
        cells.subset(total("holdout positive"), ("holdout labels", "label", "positive"))


def register_month(cells: Cells, features: pd.DataFrame, listed: pd.DataFrame, counts, caps: dict[str, int],
                   min_age: int, month_rows: list[dict]) -> None:
    """§3 (cohort counts), §5 (this month's list audited among eligible people) and §8 (make-up).

    `listed` holds the listed people's feature rows. A district's listed count equals its
    capacity when the list is filled, and capacity is public; otherwise it is an ordinary cell."""
    bands = [b[2] for b in AGE_BANDS]
    attrs = {"district": (features["district"].astype(str), listed["district"].astype(str), sorted(caps)),
             "age_band": (age_band(features["age"]), age_band(listed["age"]), bands),
             "sex": (features["sex"].astype(str), listed["sex"].astype(str), list(SEX_JA))}
    for attribute, (everyone, chosen, order) in attrs.items():
        cells.partition("residents", attribute, everyone.value_counts().reindex(order, fill_value=0).to_dict(),
                        len(features))
        shown = chosen.value_counts().reindex(order, fill_value=0).to_dict()
        for group, n in shown.items():
            cells.count(("listed", attribute, group), n,
                        public=attribute == "district" and n == caps.get(group))
        cells.partition("listed", attribute, shown, len(listed))
    cells.count(total("listed"), len(listed), public=True)
    aged = features.loc[features["age"] >= 65, "district"].astype(str).value_counts()
    cells.partition("aged 65+", "district", aged.reindex(sorted(caps), fill_value=0).to_dict(),
                    int((features["age"] >= 65).sum()))
    cells.relation(total("aged 65+"), tuple(("residents", "age_band", b[2]) for b in AGE_BANDS if b[0] >= 65))
    for district in caps:
        cells.subset(("aged 65+", "district", district), ("residents", "district", district))
    cells.count(total(f"aged {min_age}+"), counts.min_age_cohort)
    if min_age in [b[0] for b in AGE_BANDS]:
        # the cohort from min_age (65, or 60 with the 60〜64歳 band) is the sum of its bands: a reader can add them
        cells.relation(total(f"aged {min_age}+"), tuple(("residents", "age_band", b[2]) for b in AGE_BANDS
                                                         if b[0] >= min_age))
    cells.count(total("excluded"), counts.excluded)
    cells.count(total("recently visited"), counts.recently_visited)
    cells.count(total("eligible"), counts.eligible)
    for population in (f"aged {min_age}+", "excluded", "recently visited"):
        cells.subset(total(population), total("residents"))
    cells.subset(total("eligible"), total(f"aged {min_age}+"))
    if "exploration" in listed.columns:
        cells.count(("listed", "exploration", "random"), int(listed["exploration"].fillna(False).astype(bool).sum()))
        cells.subset(("listed", "exploration", "random"), total("listed"))
    register_audit(cells, month_rows, month_audit_keys())
    for r in month_rows:
        if r["attribute"] in ("sex", "age_band", "district"):
            cells.subset(("eligible", r["attribute"], str(r["group"])), ("residents", r["attribute"], str(r["group"])))


def listed_reasons(listed: pd.DataFrame) -> pd.Series:
    """How many listed people have each catalogue feature among their reasons (§6)."""
    counts = pd.Series([f for fs in listed["reason_features"] for f in (fs if fs is not None else [])],
                       dtype="str").value_counts()
    return counts.reindex(list(CATALOG), fill_value=0)


def register_reasons(cells: Cells, listed: pd.DataFrame) -> None:
    """A person has several reasons, so the reason counts do not sum to anything: each ≤ listed."""
    for feature, n in listed_reasons(listed).items():
        cells.subset(cells.count(("listed", "reason", feature), int(n)), total("listed"))


def reason_wording_counts(listed: pd.DataFrame, threshold: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The ranked (not exploration) listed people per worded reason, most frequent first: the wordings
    shared by `threshold` or more people, those shared by fewer (pooled into one row, not worded),
    and the number of exploration picks."""
    picked = (listed["exploration"].fillna(False).astype(bool) if "exploration" in listed
              else pd.Series(False, index=listed.index))
    counts = (listed[~picked].groupby(["reasons", "reasons_en"], sort=False).size().rename("n").reset_index()
              .sort_values(["n", "reasons"], ascending=[False, True], kind="stable"))
    return counts[counts["n"] >= threshold], counts[counts["n"] < threshold], int(picked.sum())


OTHER_WORDINGS = ("listed", "wording", "other")


def wording_key(ja: str) -> Key:
    return ("listed", "wording", ja)


def register_wordings(cells: Cells, listed: pd.DataFrame, threshold: int) -> None:
    """§6's wordings (and the pooled rare ones) with the exploration picks partition the list."""
    if not len(listed):
        return
    common, rare, picked = reason_wording_counts(listed, threshold)
    parts = [cells.count(wording_key(r.reasons), r.n) for r in common.itertuples()]
    if len(rare):
        parts.append(cells.count(OTHER_WORDINGS, int(rare["n"].sum())))
    parts.append(cells.count(("listed", "exploration", "random"), picked))
    cells.relation(total("listed"), tuple(parts))
