"""The report's fairness section: group results at capacity, and the fairness audit stored with
the training result rendered as tables, every small count suppressed."""
from __future__ import annotations

import json

import pandas as pd

from reports import evaluation
from reports.context import Fairness, Notice
from reports.formatting import figure_text
from reports.rankers import RANKER_TITLES



def fairness_section(stored: dict | None, held, listed: pd.DataFrame, eligible: pd.DataFrame,
                     threshold: int, bound: float) -> Fairness:
    why = None if held is not None else Notice(
        "fairness", "検証結果がないため、グループ別の検証月の再現率・適合率は示せません（今月の掲載率のみ示します）。",
        "No holdout evaluation, so per-group holdout recall and precision cannot be shown "
        "(only this month's selection rates).")
    return Fairness(computed=tuple(evaluation.group_results(held, listed, eligible, threshold, bound)),
                    stored=tuple(stored_tables(stored, threshold) if stored else []),
                    ratio=bound, holdout_why_not=why)


COUNT_WORDS = ("labelled", "positives", "true_positives", "selected", "count", "n", "people", "listed")


RATE_WORDS = ("tpr", "fdr", "recall", "precision", "rate")


def stored_tables(value, threshold: int = 10) -> list[dict]:
    """Render whatever training.json's "fairness" holds as simple tables (keys as columns): a
    dict of rankers to row lists (models/fairness.py), a list of rows, or nested dicts. Cells
    named flag/flagged/flags that are truthy mark the row. Counts of 1 … threshold-1 are shown
    as <threshold, and then the row's rates too (they would give the count back); ratios stay."""
    def flat(obj, prefix=""):
        if isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values()):
            rows = []
            for k, v in obj.items():
                inner = flat(v, f"{prefix}{k} / ")
                rows.extend([{"group": f"{prefix}{k}", **v}] if inner is None else inner)
            return rows
        return None

    def cells(row: dict, header: list[str]) -> list[str]:
        small = [h for h in header if isinstance(row.get(h), int) and not isinstance(row.get(h), bool)
                 and 0 < row[h] < threshold]
        out = []
        for h in header:
            v = row.get(h)
            if h in small:
                out.append(f"<{threshold}")
            elif small and isinstance(v, float) and any(w == h or h.startswith(w) for w in RATE_WORDS) \
                    and not h.endswith("ratio"):
                out.append(f"<{threshold}人")
            elif isinstance(v, list):
                out.append(", ".join(map(str, v)))
            elif isinstance(v, dict):
                out.append(str(v))
            else:
                out.append(figure_text(v))
        return out

    if isinstance(value, list):
        candidates = [("fairness", value)]
    elif isinstance(value, dict):
        candidates = list(value.items())
    else:
        return []
    tables = []
    for title, body in candidates:
        rows = body if isinstance(body, list) else flat(body) if isinstance(body, dict) else None
        if rows is None and isinstance(body, dict):
            rows = [body]
        if not rows or not all(isinstance(r, dict) for r in rows):
            tables.append({"title": str(title), "header": ["value"], "rows": [[figure_text(body)]], "flags": [False]})
            continue
        keys = list(dict.fromkeys(k for r in rows for k in r))
        first = [k for k in ("attribute", "group", "reference") if k in keys]
        last = [k for k in ("flag", "flagged", "flags", "suppressed") if k in keys]
        header = first + [k for k in keys if k not in first and k not in last] + last
        flags = [any(bool(r.get(k)) for k in ("flag", "flagged", "flags") if k in r) for r in rows]
        name = RANKER_TITLES.get(str(title), str(title))
        tables.append({"title": name, "header": header, "rows": [cells(r, header) for r in rows], "flags": flags})
    return tables


def as_stored(value):
    """A value as training.json stores it (keys sorted, plain JSON types), so the stored fairness
    tables read the same whether rendered now or rebuilt from the file."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))
