"""The batch report and the model card: every section, offline, aggregates only; and they look right."""
from __future__ import annotations

import re
from dataclasses import replace
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from models.fairness import audit
from pipelines.browser import offline_page
from pipelines.leakscan import scan
from reports import evaluation
from reports.fairness_tables import as_stored, fairness_section
from reports.rankers import RANKER_TITLES
from tests.test_fairness import under_selected_holdout
from reports.cells import wording_key
from tests.test_disclosure import assert_nothing_pinned

SECTIONS = ["meta", "quality", "cohort", "model", "fairness", "reasons", "drift", "makeup", "outputs"]


@pytest.fixture(scope="module")
def report(ward):
    return (ward.cfg.runs / ward.month / "report" / "index.html").read_text(encoding="utf-8")


def test_the_report_has_every_section(ward, report):
    for section in SECTIONS:
        assert f'id="{section}"' in report, section
    for heading in ["入力ファイルの指紋", "Great Expectations", "precision@k", "較正", "公平性", "global SHAP summary",
                    "PSI", "年齢区分別", "性別", "地区別の訪問枠"]:
        assert heading in report, heading
    assert report.count("data:image/png;base64,") >= 2     # p/r@k and SHAP summary at least


def test_the_report_opens_offline(report):
    assert "<script" not in report.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report)
    assert "@import" not in report and "url(" not in report


def test_no_identifier_from_the_inbox_is_in_the_report_model_card_or_plots(ward):
    roots = [ward.cfg.runs / ward.month / "report", ward.cfg.work / "model_cards"]
    if (ward.cfg.runs / ward.month / "explain").exists():
        roots.append(ward.cfg.runs / ward.month / "explain")
    assert scan(ward.cfg.inbox, [r for r in roots if r.exists()]) == []


def test_small_counts_are_suppressed_in_the_report(report):
    # every plain integer cell of the fairness tables is 0, ≥ 10 or shown as <10, unless its row shows
    # it as a rate's numerator over 10 or more people (a rate is hidden only when its denominator is small)
    fairness = report[report.index('id="fairness"'):report.index('id="reasons"')]
    for row in re.findall(r"<tr[^>]*>.*?</tr>", fairness, re.S):
        for value in re.findall(r'<td(?: class="n")?>(\d+)</td>', row):
            over = [int(d) for d in re.findall(r"\(" + value + r"/(\d+)\)", row)]
            assert int(value) == 0 or int(value) >= 10 or any(d >= 10 for d in over), (value, row)
    # the tables are labelled in words, not with the audit's column names
    for raw in ("tpr_ratio", "fdr_ratio", "suppressed", "selected_labelled", "True", "False"):
        assert raw not in fairness, raw


def test_the_model_card_follows_the_atrs_fields_and_is_in_mlflow(ward):
    version = ward.result["stages"]["train"]["model_version"]
    if version is None:
        pytest.skip("no model version registered in the test ward")
    folder = ward.cfg.work / "model_cards" / f"v{version}"
    md = (folder / "model_card.md").read_text(encoding="utf-8")
    html = (folder / "model_card.html").read_text(encoding="utf-8")
    for title in ["Tier 1 — Overview", "Owner and responsibility", "Description and rationale",
                  "Decision-making process / human oversight", "Tool and model specification", "Data specification",
                  "Risks, mitigations and impact", "Labels and their bias", "Purpose and legal basis",
                  "Training window", "Performance on the holdout"]:
        assert title in md and title in html.replace("&amp;", "&"), title
    from pipelines.catalog.registry import connect

    mlflow = connect(ward.cfg)
    run_id = ward.result["stages"]["train"]["run_id"]
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "model_card")}
    assert names == {"model_card/model_card.md", "model_card/model_card.html"}


def test_psi_is_zero_for_the_same_distribution_and_flags_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    assert evaluation.psi(a, a) == pytest.approx(0, abs=1e-12)
    assert evaluation.psi(a, rng.normal(size=5000)) < 0.05
    assert evaluation.psi(a, rng.normal(loc=1, size=5000)) > evaluation.PSI_FLAG
    flags = np.r_[np.zeros(900), np.ones(100)]
    assert evaluation.psi(flags, np.r_[np.zeros(500), np.ones(500)]) > evaluation.PSI_FLAG
    rows = evaluation.drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": a + 2}), ["x"])
    assert rows[0]["flag"] and rows[0]["current_mean"] > rows[0]["previous_mean"]


def test_this_months_list_says_when_a_group_with_eligible_people_has_nobody_listed():
    rng = np.random.default_rng(1)
    n = 600
    eligible = pd.DataFrame({"pid": [f"p{i:05d}" for i in range(n)],
                             "age": np.r_[np.full(129, 92.0), rng.integers(65, 90, n - 129)].astype(float),
                             "sex": rng.choice(["male", "female"], n), "living_alone": rng.integers(0, 2, n).astype(float),
                             "district": np.r_[np.full(n - 5, "東町地区"), np.full(5, "西町地区")]})
    listed = eligible[(eligible["age"] < 90) & (eligible["district"] == "東町地区")].head(60)[["pid"]]
    section = _section_alone({}, None, listed, eligible)
    said = [f["ja"] for f in section.findings]
    assert "今月のリスト：90歳以上の掲載可能者129人のうち掲載0人です。" in said
    assert "今月のリスト：西町地区の掲載可能者<10人のうち掲載0人です。" in said       # 5 people: suppressed
    assert any("aged 90+ — none of the 129 eligible people is selected" in f["en"] for f in section.findings)
    rows = [r for s in section.computed[0]["sections"] for r in s["rows"]]
    old = next(r for r in rows if r["group"] == "90歳以上")
    assert old["group_en"] == "aged 90+" and old["selection_rate"].startswith("0.0% [0.0–") and old["words_ja"] == "掲載0人"
    for r in rows:     # every count shown is 0, ≥ 10, <10 or hidden as x
        for cell in (r["people"], r["selected"]):
            assert cell in ("0", "<10", "x") or int(cell) >= 10, cell
    assert section.holdout_why_not is not None and section.stored == ()


def test_the_holdout_audit_is_a_bilingual_table_with_the_flag_in_words_and_no_column_names():
    from reports.report import _ENV

    frame, baseline, challenger = under_selected_holdout()
    stored = as_stored({"model": audit(frame, challenger), "alone_75": audit(frame, baseline)})
    eligible = frame.drop(columns="label").assign(pid=[f"p{i:04d}" for i in range(len(frame))])
    section = _section_alone(stored, "alone_75", eligible[baseline][["pid"]], eligible)
    # the ranker that made the list comes first, then the challenger
    assert section.stored[0]["title"] == RANKER_TITLES["alone_75"] + " — 今月のリストを作った方法 / made this month's list"
    assert section.stored[1]["title"] == "挑戦モデル / challenger"
    assert "検証月の挑戦モデル：90歳以上は、要支援者の発見率（再現率）が全体の0.8倍未満です。" in [f["ja"] for f in section.findings]
    html = _ENV.get_template("report.html.j2").render(**_bare_context(fairness=section).template_vars())
    part = html[html.index('id="fairness"'):html.index('id="reasons"')]
    for words in ["再現率 <small>recall@k</small>", "誤検出率 <small>FDR@k</small>", "選定率 <small>selection rate</small>",
                  "90歳以上 <small>aged 90+</small>", "recall below 0.8× the whole cohort&#39;s", "全体 <small>whole cohort</small>"]:
        assert words in part, words
    assert part.count('class="flag"') == 1                         # the challenger's 90+ row, nothing else
    for raw in ("tpr_ratio", "fdr_ratio", "suppressed", "selected_labelled", "True", "False", "age_band", "living_alone"):
        assert raw not in part, raw


def _section_alone(stored, serving, listed, eligible):
    """The fairness section with the disclosure pass over its own cells only."""
    from reports.cells import month_audit_keys, register_audit, register_holdout
    from reports.disclosure import Cells, disclose
    from reports.fairness_tables import month_audit

    rows = month_audit(listed, eligible, (0.8, 1.25), 10)
    cells = Cells()
    register_audit(cells, rows, month_audit_keys())
    register_holdout(cells, {}, {}, None, stored)
    return fairness_section(stored, serving, rows, disclose(cells, 10), (0.8, 1.25), 10)


def test_the_report_renders_in_headless_chromium_offline_without_overflow(ward, browser, tmp_path):
    from PIL import Image

    page = ward.cfg.runs / ward.month / "report" / "index.html"
    shot = tmp_path / "report.png"
    with offline_page(browser, 1280, 3000) as offline:
        offline.open(page).screenshot(path=str(shot))
    assert offline.blocked == []                          # the report opens on an offline PC as it is
    image = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert image.shape[1] == 1280
    assert image[:, :1100].std() > 20                      # something was drawn
    # the page is centred at 1100 px: nothing may spill into the right margin (a too-wide table or image)
    assert image[:, 1230:].min() > 240, "content overflows the page width"


# ------------------------------------------------------------------ the typed context (issue 12)

def _bare_context(**changes):
    """A context where nothing could be computed: every optional part None with its reason."""
    from dataclasses import replace
    from pathlib import Path

    from reports.context import (Calibration, DataQuality, Drift, Evaluation, Fairness, Figure, Images, ListSection,
                                 Metadata, ModelTables, Notice, ReportContext, Shap, Training)

    def why(section, word):
        return Notice(section, f"{word}は計算できません。", f"{word} cannot be computed.")

    context = ReportContext(
        month="2026-10", threshold=10, meta=Metadata((("対象月 / month", "2026-10"),), (), ()),
        quality=DataQuality((), ("welfare_contacts",), (), (), 0, 0, (), (), (), None, ("checkups",)),
        delivery_notes=(why("quality", "配達"),),
        training=Training("baseline", "cold start", None, (), (), (), {}, (), "alone_75", None, None, None, "alone_75",
                          None, None, None, why("model", "学習")),
        evaluation=Evaluation((), why("model", "比較"), None), model_tables=ModelTables((), (), (), 3),
        images=Images(Figure(None, why("model", "分割図")), Figure(None, why("model", "曲線")),
                      Figure(None, why("model", "較正図"))),
        calibration=Calibration((), None),
        listing=ListSection((("掲載 / listed", "0"),), 0, 0, (why("cohort", "訪問枠"),)), tables=(),
        fairness=Fairness((), (), 0.8, why("fairness", "公平性")),
        shap=Shap((), None, False, None, (), None, None, why("reasons", "SHAP")),
        drift=Drift(None, (), 0, 0.2, why("drift", "ドリフト")),
        list_path=Path("list.parquet"), mlflow_uri="sqlite:///x.db", settings={})
    return replace(context, **changes)


def test_the_template_renders_a_month_where_nothing_could_be_computed_and_says_why_for_each_part():
    from reports.report import _ENV

    context = _bare_context()
    html = _ENV.get_template("report.html.j2").render(**context.template_vars())
    words = ["配達", "学習", "比較", "訪問枠", "公平性", "SHAP", "ドリフト"]
    top = html[html.index('id="not-possible"'):html.index("<nav>")]
    for word in words:       # each reason once in the summary at the top and once in its section
        assert f"{word}は計算できません。" in top
        assert html.count(f"{word}は計算できません。") == 2, word
        assert f"{word} cannot be computed." in html
    assert [n.section for n in context.notices] == ["quality", "model", "model", "model", "model", "model", "cohort",
                                                    "fairness", "reasons", "drift"]
    for notice in context.notices:
        assert f'href="#{notice.section}"' in top and f'id="{notice.section}"' in html


def test_a_figure_has_an_image_or_a_reason_never_both_nor_neither():
    from reports.context import Figure, Notice

    why = Notice("model", "図はありません。", "No plot.")
    assert Figure("data:image/png;base64,xx").why_not is None and Figure(None, why).uri is None
    for bad in [lambda: Figure(None), lambda: Figure("data:image/png;base64,xx", why)]:
        with pytest.raises(ValueError):
            bad()


def _trained_without_holdout_labels(split_plot: bytes | None):
    """A month with a challenger, the rules and a holdout frame in which nobody has a known outcome."""
    from models import metrics
    from models.baselines import BASELINES
    from models.train import TrainResult

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"pid": [f"p{i:04d}" for i in range(n)], "age": rng.integers(65, 100, n).astype(float),
                          "sex": rng.choice(["male", "female"], n), "district": rng.choice(["北地区", "南地区"], n),
                          "living_alone": rng.integers(0, 2, n).astype(float), "label": np.nan})
    scores = {name: rng.random(n) for name in ["model", *BASELINES]}
    evaluation_ = {name: metrics.evaluate(s, frame, 12) for name, s in scores.items()}
    return TrainResult("baseline", "the challenger is not promoted", serving="alone_75", challenger="hgb",
                       holdout_month="2026-04", train_months=["2026-01", "2026-02", "2026-03"],
                       evaluation=evaluation_, holdout_k=12, split_plot=split_plot,
                       holdout_frame=frame.assign(**{f"score_{k}": v for k, v in scores.items()}),
                       label_counts={"holdout_cohort": n, "holdout_labelled": 0, "holdout_coverage_pct": 0.0})


def _holdout_pass(trained):
    """The disclosure pass over a trained result's holdout cells only."""
    from reports.cells import register_holdout, register_labels
    from reports.disclosure import Cells, disclose

    cells = Cells()
    register_holdout(cells, trained.evaluation, getattr(trained, "candidates", {}) or {}, trained.challenger, {})
    register_labels(cells, trained.label_counts)
    return disclose(cells, 10)


@pytest.mark.parametrize("split_plot", [None, "png"])
def test_a_model_without_holdout_labels_says_precision_cannot_be_measured(tmp_path, split_plot):
    from pipelines.config import load_config
    from reports.plots import splits
    from reports.model_sections import evaluation_section

    cfg = load_config(None, tmp_path / "inbox", tmp_path / "work", tmp_path / "custody", environ={})
    png = splits([{"month": "2026-01", "role": "fit", "start": pd.Timestamp("2026-01-31"),
                   "end": pd.Timestamp("2026-07-30")}], "2026-10") if split_plot else None
    trained = _trained_without_holdout_labels(png)
    found, held, images, calibration, _ = evaluation_section(cfg.settings, trained, _holdout_pass(trained))
    assert held is not None and found.rows and found.why_not is None
    assert found.precision_why_not.ja == "検証用の訪問結果がまだないため、精度は計算できません。"
    assert found.precision_why_not.en == "No holdout labels yet, so precision cannot be measured."
    assert all(row.precision == "—" and row.labelled == "0" for row in found.rows)   # a rate over nobody
    assert images.pr_at_k.uri is None and "曲線は描けません" in images.pr_at_k.why_not.ja
    assert images.calibration.uri is None and "較正図は描けません" in images.calibration.why_not.ja
    assert calibration.bins == () and calibration.brier is None
    if split_plot:
        assert images.splits.uri.startswith("data:image/png;base64,") and images.splits.why_not is None
    else:
        assert images.splits.uri is None and "期間の図はありません" in images.splits.why_not.ja


# ------------------------------------------------------------------ reasons as worded, ties collapsed

def _wordings_pass(worded: pd.DataFrame, threshold: int):
    """The disclosure pass over §6's wordings and the list's size (public: the capacity)."""
    from reports.cells import register_wordings
    from reports.disclosure import Cells, disclose, total

    cells = Cells()
    cells.count(total("listed"), len(worded), public=True)
    register_wordings(cells, worded, threshold)
    return disclose(cells, threshold)


def _worded(counts: dict[str, int], picks: int) -> pd.DataFrame:
    from features.catalog import EXPLORATION

    rows = [(w, f"wording {k} in English", False) for k, (w, n) in enumerate(counts.items()) for _ in range(n)]
    rows += [(EXPLORATION[0], EXPLORATION[1], True)] * picks
    frame = pd.DataFrame(rows, columns=["reasons", "reasons_en", "exploration"])
    return frame.sample(frac=1, random_state=len(rows)).reset_index(drop=True)   # ties scattered over ranks


@pytest.mark.parametrize("threshold", [1, 3, 10])
def test_identical_reason_wordings_collapse_to_one_line_with_their_count(threshold):
    from features.catalog import EXPLORATION
    from reports.model_sections import reason_wordings

    counts = {"90歳以上、ひとり暮らし": 12, "介護保険料を4か月分滞納": 10, "健診の受診記録が2年以上なし": 3,
              "81歳、過去1年に緊急対応1回": 1}
    worded = _worded(counts, 2)
    passed = _wordings_pass(worded, threshold)
    rows = reason_wordings(worded, passed)
    shown = {w: n for w, n in counts.items() if n >= threshold}
    assert [r["ja"] for r in rows[:len(shown)]] == list(shown)
    # each count as the pass shows it: the number, or "x" where it would give the pooled one away
    assert [r["people"] for r in rows[:len(shown)]] == [f"×{passed.text(wording_key(w))}" for w in shown]
    assert all(r["people"] in (f"×{n}", "×x") for r, n in zip(rows, shown.values()))
    assert_nothing_pinned(passed, threshold)
    assert [r["en"] for r in rows[:len(shown)]] == [f"wording {list(counts).index(w)} in English" for w in shown]
    rare = {w: n for w, n in counts.items() if n < threshold}
    if rare:   # a wording fewer people share than the small-cell threshold is pooled, not printed
        pooled = rows[len(shown)]
        assert f"{len(rare)}通り" in pooled["ja"] and not any(w in pooled["ja"] for w in rare)
        total = sum(rare.values())
        assert pooled["people"] == (f"×<{threshold}" if total < threshold else f"×{total}")
    assert rows[-1] == {"ja": EXPLORATION[0], "en": EXPLORATION[1],
                        "people": "×2" if threshold <= 2 else f"×<{threshold}"}
    assert len(rows) == len(shown) + bool(rare) + 1


def test_the_report_prints_each_wording_once_with_its_count():
    from reports.model_sections import reason_wordings
    from reports.report import _ENV

    counts = {"90歳以上、ひとり暮らし": 12, "介護保険料を4か月分滞納": 10}
    context = _bare_context()
    worded = _worded(counts, 10)     # no small cell, so nothing is hidden
    context = replace(context, shap=replace(context.shap, wordings=reason_wordings(worded, _wordings_pass(worded, 10))))
    html = _ENV.get_template("report.html.j2").render(**context.template_vars())
    for wording, n in counts.items():
        assert html.count(wording) == 1
        assert re.search(re.escape(wording) + r"<br><small>[^<]*</small></td><td class=\"n\">×" + str(n) + "<", html)


def test_the_months_report_collapses_the_lists_wordings(ward, report):
    from contract.storage import read_parquet

    listed = read_parquet(ward.cfg.runs / ward.month / "list.parquet")
    threshold = ward.cfg.get("report", "small_cell")
    section = report[report.index("理由の文言"):report.index("SHAP 寄与の全体像")]
    rows = re.findall(r"<tr><td>([^<]*)<br><small>([^<]*)</small></td><td class=\"n\">×([^<]*)</td></tr>", section)
    assert rows, "no wording rows"
    counts = listed[~listed["exploration"]].groupby("reasons").size()
    printed = {ja: n for ja, _, n in rows}
    for wording, n in counts.items():
        if n >= threshold:     # the count, or "x" where it would give the pooled rare wordings away
            assert printed.pop(wording) in (str(n), "x")
        else:
            assert wording not in section
    assert len(rows) == len(set(ja for ja, _, _ in rows))   # one line per wording
    if listed["exploration"].any():
        picked = int(listed["exploration"].sum())      # a small count like any other (it is §3's cell too)
        assert printed.pop("無作為抽出（探索枠）") in ((str(picked), "x") if picked >= threshold else (f"&lt;{threshold}",))


def test_a_month_without_enough_labels_says_so_without_printing_a_small_count(tmp_path):
    from types import SimpleNamespace

    from pipelines.config import load_config
    from reports.cells import register_labels
    from reports.disclosure import Cells, disclose
    from reports.report import _training

    cfg = load_config(None, tmp_path / "inbox", tmp_path / "work", tmp_path / "custody", environ={})
    counts = {"train_labelled": 4, "train_positive": 1}
    cells = Cells()
    register_labels(cells, counts)
    trained = SimpleNamespace(challenger=None, train_months=["2026-01"], label_counts=counts, mode="baseline",
                              reason="too few labels", holdout_month=None, baseline="alone_75", model_version=None)
    why = _training(cfg.settings, trained, disclose(cells, 10)).why_not
    assert "学習月の訪問結果が<10件（うち要支援<10件）" in why.ja
    assert "The training months hold <10 labelled rows (<10 positive)" in why.en
