"""What the analyst's pages show, gathered from the records the batch already keeps.

- Run history (`run_history`): every run folder's manifest as it stands (status, each stage's
  status, timings and row counts, the model version and mode) and each recipient's release
  *record* (rows, when released, when it expires, whether purged). The released sheet itself, which
  holds names, is never opened here.
- Month over month (`month_figures`): for each completed month's list, what the lake has learnt
  about its people since: how many were visited, what the visits found, and the hit rate of each
  ranker that picked them (the model, a rule, or the exploration picks). Visits and labels are read
  in the label window after the list's month (`[labels] timespan_days`, models/labels.py), as known
  at the newest delivery, with the project's label policy (`models.train.labels_for`), so a hit
  here is exactly what a label is in training: positives / labelled people.
- Not the holdout precision of each month's training: it is in every model card (its own
  disclosure pass, ~4 s a month on the demo ward, too slow to redo on every page view).
- Drift, as the month's report recorded it (its §7, read from the report file the manifest
  vouches for; the report is the only place the batch keeps it).

Disclosure. Every count of identified people computed here (visited, outcome counts, labelled and
positive people per ranker) goes through the project's pass (reports/disclosure.py `disclose`, at
`[report] small_cell`): 1…9 is shown "<10", and complementary cells "x", so no small count can be
worked out from the totals. Unlike the report, no rate is registered with the pass, so no small
numerator is ever published through a rate: a rate is shown only when both its counts are. The
list's size is public (the visiting capacity is set before anyone is scored; reports/cells.py
registers it so), so it is shown exactly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

import pandas as pd

from contract.months import month_end
from contract.storage import read_json, read_parquet
from models.labels import window_closed
from models.labels import LabelPolicy
from models.train import labels_for
from pipelines.catalog import runs
from pipelines.catalog.lake import ingested_months, outcomes_known_at
from pipelines.config import Config
from pipelines.release import release_record_file
from pipelines.web.visits import OUTCOME_JA
from reports.disclosure import Cells, Disclosed, disclose, rate_words, total
from reports.rankers import RANKER_TITLES
from reports.recipients import RECIPIENTS

STAGES = ("ingest", "features", "validate", "train", "score", "prioritise", "explain", "report")
# the manifest's row counts per stage that the page shows: (stage, key, Japanese, English); the
# stage's other counts (excluded, recently visited, exploration picks) are the report's, shown
# there through its disclosure pass
STAGE_COUNTS = (("features", "rows", "特徴量の行", "feature rows"), ("score", "scored", "採点", "scored"),
                ("prioritise", "listed", "掲載", "listed"), ("explain", "explained", "説明", "explained"))
RELEASE_FIELDS = ("rows", "released", "expires", "purged")
EXPLORATION = "exploration"
OUTCOMES = tuple(OUTCOME_JA)   # the contract's visit outcomes, in its order


@dataclass(frozen=True)
class StageRow:
    name: str
    status: str
    seconds: float | None
    cpu_seconds: float | None
    peak_rss_mb: float | None
    counts: dict[str, int]
    error: str | None = None


@dataclass(frozen=True)
class RunRow:
    month: str
    status: str            # done | running | failed | altered (said done, but an output changed since)
    complete: bool
    stages: tuple[StageRow, ...]
    mode: str | None
    model_version: str | None
    serving: str | None
    code_version: str | None
    releases: tuple[dict, ...]   # recipient plus RELEASE_FIELDS of each release record


def _release_record(cfg: Config, month: str, recipient: str) -> dict | None:
    # only the record's own fields are read, never the sheet
    path = release_record_file(cfg, month, recipient)
    if not path.exists():
        return None
    record = read_json(path)
    return {"recipient": recipient, **{k: record.get(k) for k in RELEASE_FIELDS}}


def run_history(cfg: Config) -> list[RunRow]:
    """Every month with a run folder, newest first, as its manifest records it."""
    rows = []
    for month in reversed(runs.months_run(cfg)):
        manifest = runs.read_manifest(cfg, month) or {}
        complete = runs.completed_run(cfg, month) is not None
        status = manifest.get("status", "running")
        if status == "done" and not complete:
            status = "altered"
        stages = manifest.get("stages", {})
        stage_rows = tuple(
            StageRow(name, info.get("status", ""), info.get("seconds"), info.get("cpu_seconds"), info.get("peak_rss_mb"),
                     {key: int(info[key]) for stage, key, *_ in STAGE_COUNTS if stage == name and key in info},
                     info.get("error"))
            for name in [*[s for s in STAGES if s in stages], *[s for s in stages if s not in STAGES]]
            for info in [stages[name]])
        train = stages.get("train", {})
        releases = tuple(r for r in (_release_record(cfg, month, who) for who in RECIPIENTS) if r is not None)
        rows.append(RunRow(month, status, complete, stage_rows, train.get("mode"),
                           None if train.get("model_version") is None else str(train["model_version"]),
                           train.get("serving"), manifest.get("code_version"), releases))
    return rows


# --------------------------------------------------------------------------- month over month

def ranker_of(row: pd.Series | dict) -> str:
    """Who picked a listed person: `exploration` for a random pick, else the list's source
    (`model`, or `baseline:<rule>`)."""
    return EXPLORATION if bool(row["exploration"]) else str(row["source"])


def ranker_words(ranker: str) -> str:
    """A ranker's bilingual name (reports/rankers.py's words for the model and the rules)."""
    if ranker == EXPLORATION:
        return "探索枠（無作為抽出） / exploration (random)"
    if ranker == "model":
        return "モデル / model"
    rule = ranker.split(":", 1)[1] if ranker.startswith("baseline:") else ranker
    return RANKER_TITLES.get(rule, ranker)


@dataclass(frozen=True)
class MonthCounts:
    """One list's counts as computed from the lake, before disclosure."""
    month: str
    listed: int
    visited: int
    outcomes: dict[str, int]                 # people by their latest outcome in the window
    labelled: dict[str, int]                 # per ranker
    positive: dict[str, int]                 # per ranker
    window_closed: bool


def month_counts(cfg: Config, month: str, outcomes, known_month: str) -> MonthCounts:
    """What the lake knows, at `known_month`'s end, of the people on `month`'s list."""
    listed = read_parquet(runs.list_file(cfg, month), columns=["pid", "exploration", "source"])
    ranker = pd.Series([ranker_of(r) for r in listed.to_dict("records")], index=listed["pid"], dtype="object")
    days = cfg.settings["labels"]["timespan_days"]
    start = month_end(month)
    visits = outcomes.visits
    # the label window of models/labels.py: after the list's month, for timespan_days
    mine = visits[visits["pid"].isin(ranker.index) & (visits["visit_date"] > start)
                  & (visits["visit_date"] <= start + pd.Timedelta(days=days))]
    latest = mine.sort_values(["visit_date", "outcome"], kind="stable").drop_duplicates("pid", keep="last")
    found = latest["outcome"].value_counts()
    labels = labels_for(cfg.settings["labels"], outcomes, month, pd.Series(ranker.index, dtype="str"))
    labels = labels[labels["pid"].isin(ranker.index)]
    by = ranker.reindex(labels["pid"]).to_numpy()
    groups = sorted(set(ranker), key=lambda r: (r == EXPLORATION, r))
    labelled = {g: int((by == g).sum()) for g in groups}
    positive = {g: int(((by == g) & (labels["label"].to_numpy() == 1)).sum()) for g in groups}
    return MonthCounts(month, len(listed), int(latest["pid"].nunique()),
                       {o: int(found.get(o, 0)) for o in OUTCOMES}, labelled, positive,
                       window_closed(month, known_month, days))


def _key(month: str, population: str, attribute: str | None = None, group: str | None = None):
    return (f"{month} {population}", attribute, group) if attribute else total(f"{month} {population}")


def register(cells: Cells, c: MonthCounts, labels_need_visit: bool) -> None:
    """One list's counts as cells of the pass, with the relations a reader could use."""
    listed = cells.count(_key(c.month, "listed"), c.listed, public=True)
    visited = _key(c.month, "visited")
    cells.partition(f"{c.month} visited", "outcome", c.outcomes, c.visited)
    cells.subset(visited, listed)
    cells.partition(f"{c.month} labelled", "ranker", c.labelled, sum(c.labelled.values()))
    cells.partition(f"{c.month} positive", "ranker", c.positive, sum(c.positive.values()))
    cells.subset(_key(c.month, "labelled"), visited if labels_need_visit else listed)
    for g in c.labelled:
        cells.subset(_key(c.month, "positive", "ranker", g), _key(c.month, "labelled", "ranker", g))


@dataclass(frozen=True)
class Figure:
    """A count or rate as the page shows it: its words, and the value a chart draws (None: none)."""
    text: str
    value: float | None


def _count(shown: Disclosed, key) -> Figure:
    text = shown.text(key)
    return Figure(text, float(shown.values[key]) if shown.shown(key) else None)


def _rate(shown: Disclosed, numerator, denominator) -> Figure:
    """numerator/denominator with its 95% Wilson interval when both counts are shown; otherwise
    what the counts read ("—" over nobody)."""
    den, num = shown.values[denominator], shown.values[numerator]
    if shown.shown(denominator) and den == 0:
        return Figure("—", None)
    if shown.shown(numerator) and shown.shown(denominator):
        return Figure(rate_words(num, den), num / den)
    return Figure(f"({shown.text(numerator)}/{shown.text(denominator)})", None)


@dataclass
class MonthFigures:
    month: str
    listed: int
    visited: Figure
    visited_share: Figure
    outcomes: dict[str, Figure]
    hit_rate: dict[str, Figure]          # per ranker that picked people on this list
    labelled: dict[str, Figure]
    window_closed: bool
    drift: dict | None = None


@dataclass(frozen=True)
class Figures:
    months: list[MonthFigures]
    rankers: list[str]                   # every ranker of any month, in a fixed order
    known_month: str | None              # outcomes as known at this delivery's end
    threshold: int


def month_figures(cfg: Config) -> Figures:
    """Every completed month's figures, oldest first, through one disclosure pass."""
    threshold = int(cfg.get("report", "small_cell"))
    done = [m for m in runs.months_run(cfg) if runs.completed_run(cfg, m) is not None]
    known = ingested_months(cfg.lake)
    if not done or not known:
        return Figures([], [], known[-1] if known else None, threshold)
    outcomes = outcomes_known_at(cfg.lake, known[-1])
    counts = [month_counts(cfg, m, outcomes, known[-1]) for m in done]
    cells = Cells()
    labels_need_visit = not LabelPolicy.of(cfg.settings["labels"]).population
    for c in counts:
        register(cells, c, labels_need_visit)
    shown = disclose(cells, threshold)
    rankers = sorted({g for c in counts for g in c.labelled}, key=lambda r: (r == EXPLORATION, r != "model", r))
    months = []
    for c in counts:
        m = c.month
        months.append(MonthFigures(
            m, c.listed, _count(shown, _key(m, "visited")), _rate(shown, _key(m, "visited"), _key(m, "listed")),
            {o: _count(shown, _key(m, "visited", "outcome", o)) for o in OUTCOMES},
            {g: _rate(shown, _key(m, "positive", "ranker", g), _key(m, "labelled", "ranker", g)) for g in c.labelled},
            {g: _count(shown, _key(m, "labelled", "ranker", g)) for g in c.labelled},
            c.window_closed, recorded_drift(cfg, m)))
    return Figures(months, rankers, known[-1], threshold)


_DRIFT = re.compile(r'<h2 id="drift">(.*?)(?=<h2 |\Z)', re.S)
_ROW = re.compile(r'<tr class="(flag)?"><td>.*?<code>(.*?)</code>.*?</td><td class="n">([^<]*)</td>'
                  r'<td class="n">([^<]*)</td><td class="n">([^<]*)</td>', re.S)
_PREVIOUS = re.compile(r"against (\d{4}-\d{2}); above ([0-9.]+) is flagged")


def recorded_drift(cfg: Config, month: str) -> dict | None:
    """The drift the month's report recorded (§7, reports/templates/report.html.j2): the month it
    was compared with, the PSI threshold, and each feature's PSI and flag; None when the report
    measured none (no previous month)."""
    path = runs.report_file(cfg, month)
    section = _DRIFT.search(path.read_text(encoding="utf-8")) if path.exists() else None
    if section is None:
        return None
    rows = [{"column": unescape(col), "psi": float(psi), "flag": bool(flag)}
            for flag, col, _previous_mean, _current_mean, psi in _ROW.findall(section.group(1))]
    against = _PREVIOUS.search(section.group(1))
    if not rows or against is None:
        return None
    return {"previous": against.group(1), "threshold": float(against.group(2)), "rows": rows,
            "flagged": [r for r in rows if r["flag"]], "max_psi": max(r["psi"] for r in rows)}
