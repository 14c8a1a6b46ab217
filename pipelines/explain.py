"""`mimamori explain`: the auditor's view of one listed person (load → reports/explain_view.py → save)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from contract.messages import no_run
from contract.months import check_month
from contract.storage import read_parquet
from pipelines.catalog import runs
from pipelines.catalog.features import month_features
from pipelines.config import Config
from reports.explain_view import PersonView, person_view


def _rows_of(path: Path, pid: str, missing: str, absent: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(whole table, the person's rows) of a run file, with a clear error when either is missing."""
    if not path.exists():
        raise FileNotFoundError(missing)
    table = read_parquet(path)
    rows = table[table["pid"] == pid]
    if not len(rows):
        raise ValueError(absent)
    return table, rows


def person_of(cfg: Config, month: str, pid: str) -> PersonView:
    """The auditor's view of one listed person, from the month's stored list, features and
    explanations (nothing is recomputed but the view itself)."""
    listed, row = _rows_of(runs.list_file(cfg, check_month(month)), pid, no_run(month, "（リストがない）", " (no list)"),
                           f"{pid} is not on the {month} list (only listed people are explained)")
    # the cache is reused only while the lake it came from is unchanged
    values = month_features(cfg.work, month).set_index("pid").loc[pid]
    mine = None
    if str(row.iloc[0]["source"]).startswith("model"):
        path = runs.run_dir(cfg, month) / runs.EXPLANATIONS
        _, mine = _rows_of(path, pid, f"{path} is missing: rerun the month to store the explanations",
                           f"{pid} has no stored explanation in {path}")
    return person_view(month, listed, pid, values, mine)


def explain_person(cfg: Config, month: str, pid: str) -> tuple[str, Path | None]:
    """(the view's text, the waterfall PNG saved as runs/<month>/explain/<pid>.png, if any)."""
    view = person_of(cfg, month, pid)
    if view.waterfall is None:
        return view.text, None
    out = runs.save_waterfall(cfg, month, pid, view.waterfall)
    return view.text + f"waterfall: {out}\n", out
