"""docs/model-quality.md from the results of `mimamori truth-check --wards` (a string from a dict).

Every figure is a count or a rate copied from the results (pipelines/truthwards.py writes the
same dict as <root>/truth-check.json); nothing here computes a new number beyond formatting.
The notes below NOTES_MARKER are written by people and kept when the tables are rebuilt.
"""
from __future__ import annotations

NOTES_MARKER = "<!-- notes: kept when the tables are rebuilt -->"

RANKERS = [("list", "list (ranked picks)"), ("champion", "champion alone"), ("alone_75", "rule: 75+ alone"),
           ("health_unknown", "rule: health unknown"), ("points", "rule: points"),
           ("ceiling", "ceiling (perfect ranking)"), ("exploration", "list (random picks)")]


def rate(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def signed(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.3f}"


def cell(figures: dict | None) -> str:
    """precision (isolated/listed) of one ranker in one ward."""
    if not figures:
        return "n/a"
    return f"{rate(figures['precision'])} ({figures['isolated']}/{figures['listed']})"


def spread_cell(s: dict, fmt=rate) -> str:
    """mean [min–max] ±s.d. over the wards that had the figure."""
    if not s or s["n"] == 0:
        return "n/a"
    return f"{fmt(s['mean'])} [{fmt(s['min'])}–{fmt(s['max'])}] ±{rate(s['sd'])}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(r) + " |" for r in rows])


def precision_section(doc: dict) -> list[str]:
    wards, summary = doc["wards"], doc["summary"]
    names = [n for n, _ in RANKERS]
    rows = [[w["ward"], f"{w['residents']:,d}", str(w["seed"]), str(w["k"]), f"{w['base_rate']:.2%}"]
            + [cell(w.get(n)) for n in names] for w in wards]
    rows.append(["**mean [min–max] ±s.d.**", "", "", "", ""] + [spread_cell(summary["precision"][n]) for n in names])
    lift = summary["lift"]
    out = ["## Precision at capacity (k = 0.3 % of residents)", "",
           "Precision = isolated people among the k listed / k, against the ward's latent truth at the final month. "
           "Every ranker is cut to the same district capacities after the same exclusions (objections, open cases, "
           "institutions, visited lately, under min_age). The list's random exploration picks are reported apart. "
           "The ceiling ranks the truth itself: in each district min(capacity, eligible isolated people).", ""]
    out += _table(["ward", "residents", "seed", "k", "base rate"] + [label for _, label in RANKERS], rows)
    out += ["", "Lift over the 75+-living-alone rule, over the wards:", ""]
    out += _table(["ranker", "ratio of the average precisions", "average of the wards' ratios [min–max] ±s.d."],
                  [[n, rate(lift[n]["ratio_of_averages"], 2), spread_cell(lift[n]["average_of_ratios"], lambda x: rate(x, 2))]
                   for n in ("list", "champion", "ceiling")])
    return out


def recall_section(doc: dict) -> list[str]:
    rows = [[r["attribute"], r["group"], spread_cell(r["recall"]), spread_cell(r["ratio"], lambda x: rate(x, 2)),
             f"{r['flagged_wards']} of {r['ratio']['n']}"] for r in doc["summary"]["recall"]]
    per_ward = [[w["ward"]] + [f"{r['attribute']}={r['group']}: {rate(r['ratio'], 2)}" for r in w["recall"] if r["flag"]]
                for w in doc["wards"]]
    out = ["## Recall at capacity per group", "",
           "Recall = isolated people of the group on the released list (ranked and random picks) / isolated people "
           "of the group aged min_age+; the ratio divides it by the ward's recall. A ratio outside "
           "[0.8, 1.25] is flagged.", ""]
    out += _table(["attribute", "group", "recall", "ratio to the ward's", "wards flagged"], rows)
    out += ["", "Groups flagged per ward: " + "; ".join(
        f"{r[0]}: " + (", ".join(r[1:]) if len(r) > 1 else "none") for r in per_ward), ""]
    return out


def ablation_section(doc: dict) -> list[str]:
    rows = []
    for r in doc["summary"]["ablation"]:
        cands = r["candidates"]
        rows.append([r["variant"], spread_cell(r["precision"]), spread_cell(r["effect"], signed),
                     spread_cell(cands.get("logit", {})), spread_cell(cands.get("hgb", {})),
                     ", ".join(f"{c} {n}" for c, n in r["chosen"].items()) or "none"])
    if not rows:
        return []
    return (["## Ablation at the final month", "",
             "Each variant's logit and hgb candidates are fitted as the train stage fits them (same plan: fit "
             "months, calibration months, holdout; the better candidate on the holdout is chosen, then both are "
             "refitted on every usable month) and their lists scored against the truth. A feature group off has "
             "its columns set to 0 in training and scoring. Effect = variant − full, per ward, then averaged.", ""]
            + _table(["variant", "precision (chosen)", "effect", "logit", "hgb", "chosen on the holdout"], rows) + [""])


def younger_section(doc: dict) -> list[str]:
    rows = [[w["ward"], w["min_age_60"].get("model", ""), cell(w["min_age_60"]), str(w["min_age_60"]["band"]["listed"]),
             rate(w["min_age_60"]["band"]["precision"]), rate(w["min_age_60"]["band"]["recall"]),
             f"{w['min_age_60']['band']['isolated_listed']}/{w['min_age_60']['band']['isolated']}"]
            for w in doc["wards"] if w.get("min_age_60")]
    if not rows:
        return []
    s = doc["summary"]["min_age_60"]
    rows.append(["**mean [min–max] ±s.d.**", "", spread_cell(s["precision"]), spread_cell(s["band_listed"], lambda x: f"{x:.1f}"),
                 spread_cell(s["band_precision"]), spread_cell(s["band_recall"]), ""])
    return (["## `[prioritise] min_age = 60`", "",
             "The final month's champion (or, where a rule made the list, the month's registered challenger) "
             "scored with min_age 60 eligibility, cut to the same capacities.", ""]
            + _table(["ward", "model", "precision", "listed aged 60–64", "precision 60–64", "recall 60–64",
                      "isolated 60–64 found"], rows) + [""])


def render(doc: dict) -> str:
    """The document's generated part (everything above the notes)."""
    lines = ["# Model quality against the synthetic wards' latent truth", "",
             "Generated by `mimamori truth-check --wards`; do not edit above the notes marker. Reproduce with:", "",
             "```", doc["command"], "```", "",
             f"Final month {doc['month']}; {len(doc['wards'])} wards: "
             + ", ".join(f"{w['ward']} ({w['residents']:,d} residents at the end, seed {w['seed']})" for w in doc["wards"])
             + ". Only counts and rates appear here (the truth files hold residents' identifiers and stay with the custodian).", ""]
    lines += precision_section(doc) + [""] + recall_section(doc) + ablation_section(doc) + younger_section(doc)
    return "\n".join(lines)
