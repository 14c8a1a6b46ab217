"""The analyst's pages: run history and stage status, and the figures month over month.

Pseudonymous aggregates only: no pid, name, address or 宛名番号 is shown, and every count of
identified people goes through the project's disclosure pass (pipelines/web/history.py says how).
Charts are inline SVG drawn on the server (pipelines/web/charts.py), each with its numbers in a
table below.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from pipelines.web import history
from pipelines.web.charts import Series, bar_chart
from pipelines.web.pages import render, require
from pipelines.web.security import Login
from pipelines.web.visits import OUTCOME_JA

router = APIRouter(prefix="/analyst")
ANALYST = require("analyst")


@router.get("", response_class=HTMLResponse)
def run_history(request: Request, login: Login = Depends(ANALYST)) -> Response:
    return render(request, "analyst_runs.html.j2", login, runs=history.run_history(request.app.state.cfg),
                  counts=history.STAGE_COUNTS)


def charts_of(figures: history.Figures) -> dict:
    """The page's charts, from the same figures as its tables (a withheld figure draws no bar)."""
    months = [m.month for m in figures.months]
    listed = bar_chart("listed", "リストの人数 / list size",
                       f"各月のリストに載った人数（{len(months)} か月）。 People on each month's list.",
                       months, [Series("掲載 / listed", [float(m.listed) for m in figures.months])],
                       "人 / people")
    visited = bar_chart("visited", "訪問済みの割合 / share of the list visited",
                        "各月のリストのうち、その後の訪問結果がレイクにある人の割合。 Share of each month's list with a "
                        "visit outcome delivered since.",
                        months, [Series("訪問済み / visited", [m.visited_share.value for m in figures.months])],
                        "割合 / share", percent=True, y_max=1.0)
    outcome_series = [Series(OUTCOME_JA[o] + " / " + o, [m.outcomes[o].value for m in figures.months])
                      for o in history.OUTCOMES if any(m.outcomes[o].value for m in figures.months)]
    outcomes = bar_chart("outcomes", "訪問結果 / outcomes found",
                         "各月のリストの人の直近の訪問結果の内訳（人数）。 The latest visit outcome of each month's listed "
                         "people (people).", months, outcome_series or [Series("—", [None] * len(months))],
                         "人 / people")
    hits = bar_chart("hits", "作成元別の的中率 / hit rate by ranker",
                     "結果が分かった人のうち要支援だった割合を、リストの作成元（モデル・ルール・探索枠）別に。 "
                     "Positives among labelled people, by what picked them (model, rule, exploration).",
                     months, [Series(history.ranker_words(r),
                                             [m.hit_rate[r].value if r in m.hit_rate else None for m in figures.months])
                              for r in figures.rankers] or [Series("—", [None] * len(months))],
                     "的中率 / hit rate", percent=True, y_max=1.0)
    drifted = bar_chart("drift", "ドリフトの要確認の特徴量 / features flagged for drift",
                        "各月のレポートが前月と比べて PSI のしきい値を超えたと記録した特徴量の数。 Features each month's "
                        "report recorded above the PSI threshold against the month before.",
                        months, [Series("要確認 / flagged",
                                                [None if m.drift is None else float(len(m.drift["flagged"]))
                                                 for m in figures.months])], "特徴量 / features")
    return {"listed": listed, "visited": visited, "outcomes": outcomes, "hits": hits, "drift": drifted}



@router.get("/trends", response_class=HTMLResponse)
def trends(request: Request, login: Login = Depends(ANALYST)) -> Response:
    cfg = request.app.state.cfg
    figures = history.month_figures(cfg)
    return render(request, "analyst_trends.html.j2", login, figures=figures, days=cfg.settings["labels"]["timespan_days"],
                  charts=charts_of(figures) if figures.months else None, outcomes=OUTCOME_JA,
                  ranker_words=history.ranker_words)
