"""The monthly batch report: runs/<month>/report/index.html, offline, aggregates only.

Sections: run metadata; data received and validated; cohort and list counts; model vs the
rule baselines at capacity with precision/recall-at-k curves and calibration; fairness by
group; why people were listed (global SHAP summary, reasons used); drift of every feature
against last month; the list's make-up. Images are embedded (base64 PNG), there is no script
and no external resource, so the file opens anywhere, offline. Every count of people goes
through disclosure control (reports/disclosure.py) and ages are top-coded at 90.

`report_context` builds everything the report shows from what the runner holds in memory
(`ReportInputs`); `report_html` renders it. The catalogue writes the file
(pipelines/catalog/runs.py), beside the model card of the month's version (reports/modelcard.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import jinja2
import numpy as np
import pandas as pd

from contract.months import shift
from contract.sources import SOURCES
from features.catalog import AGE_TOP, CATALOG, MODEL_FEATURES, label
from features.groups import AGE_BANDS, SEX_JA, age_band
from models.baselines import BASELINES, describe_points
from models.candidates import CANDIDATES
from models.explain import grouped, shap_values
from models.prioritise import Eligibility
from models.train import TrainResult
from reports import evaluation, plots
from reports.context import (Calibration, Coverage, DataQuality, Drift, Evaluation, Fairness, Figure, Images,
                             ListSection, Metadata, MetricRow, ModelTables, Notice, ReportContext, Shap, Training)
from reports.disclosure import suppress, suppressed_total

SHAP_SAMPLE = 2000
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined)


@dataclass(frozen=True)
class ReportInputs:
    """What the month's run holds in memory when the report is made (nothing is read back)."""
    month: str
    settings: dict                      # every section: the report shows them all
    manifest: dict                      # the run's manifest as it stands before the report stage
    record: dict                        # the month's delivery record
    feature_checks: dict                # the feature table's validation summary
    features: pd.DataFrame
    listed: pd.DataFrame
    trained: TrainResult
    eligibility: Eligibility
    capacity: dict[str, int]
    code_version: str
    data_docs: str | None               # link to the month's Data Docs, relative to the report folder
    list_path: str
    mlflow_uri: str
    previous_features: pd.DataFrame | None = field(default=None, repr=False)   # last month's MODEL_FEATURES
    previous_scores: pd.DataFrame | None = field(default=None, repr=False)     # last month's score column
    scores: pd.DataFrame | None = field(default=None, repr=False)              # this month's score column


def _fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _count(n: int, threshold: int) -> str:
    return f"<{threshold}" if 0 < int(n) < threshold else str(int(n))


def makeup_table(title: str, groups: pd.Series, listed: pd.Series, order: list[str], threshold: int) -> dict:
    """Listed people per group beside the residents, both suppressed."""
    cohort_counts = groups.value_counts().reindex(order, fill_value=0)
    listed_counts = listed.value_counts().reindex(order, fill_value=0)
    shown_cohort, shown_listed = suppress(cohort_counts, threshold), suppress(listed_counts, threshold)
    rows = [[g, shown_cohort[g], shown_listed[g]] for g in order]
    rows.append(["計 / total", suppressed_total(cohort_counts, threshold), suppressed_total(listed_counts, threshold)])
    return {"title": title, "header": ["区分 / group", "住民 / residents", "掲載 / listed"], "rows": rows}


def district_table(features: pd.DataFrame, listed: pd.Series, caps: dict[str, int], threshold: int) -> dict:
    """Visiting capacity per district. Capacity and listed counts are planned workload, set by
    the ward before anyone is scored, so they are shown as they are; resident counts are suppressed."""
    order = sorted(caps)
    residents = features["district"].value_counts().reindex(order, fill_value=0)
    elderly = features.loc[features["age"] >= 65, "district"].value_counts().reindex(order, fill_value=0)
    counts = listed.value_counts().reindex(order, fill_value=0)
    shown_r, shown_e = suppress(residents, threshold), suppress(elderly, threshold)
    rows = [[d, shown_r[d], shown_e[d], caps[d], int(counts[d])] for d in order]
    rows.append(["計 / total", suppressed_total(residents, threshold), suppressed_total(elderly, threshold),
                 sum(caps.values()), int(counts.sum())])
    return {"title": "地区別の訪問枠 / visiting capacity by district",
            "header": ["地区 / district", "住民 / residents", "65歳以上 / aged 65+", "訪問枠 / capacity",
                       "掲載 / listed"], "rows": rows}


# ------------------------------------------------------------------------------ sections

def _metadata(month: str, manifest: dict, trained, code_version: str) -> Metadata:
    meta = [("対象月 / month", month), ("設定ハッシュ / config hash", manifest["config_hash"]),
            ("コード版 / code version", f"mimamori {manifest['code_version']} (git {code_version})"),
            ("Python", manifest.get("python", "—")),
            ("鍵ID / key id", manifest.get("key_id") or "—"),
            ("データ指紋 / lake fingerprint", (manifest.get("lake_fingerprint") or "")[:16] or "—"),
            ("モデル版 / model version", f"mimamori-risk v{trained.model_version}" if trained.model_version else "—"),
            ("MLflow run", trained.run_id or "—"),
            ("リスト作成 / list made by", _made_by(trained))]
    inputs = [{"source": name, "title": SOURCES[name].title_ja if name in SOURCES else name, "sha256": digest}
              for name, digest in sorted(manifest.get("inputs", {}).items())]
    stages = [{"name": name, "status": s.get("status"), "seconds": s.get("seconds")}
              for name, s in manifest.get("stages", {}).items()]
    return Metadata(tuple(meta), tuple(inputs), tuple(stages))


def _made_by(trained) -> str:
    serving = getattr(trained, "serving", None)
    if serving == "champion":
        return f"現行モデル / champion v{trained.model_version}"
    if trained.mode == "model":
        return f"モデル / model v{trained.model_version}"
    return f"ルール / rule: {BASELINES[trained.baseline][1]}"


def _with_feature_checks(record: dict, checks: dict) -> dict:
    """The delivery's validation plus the feature table's (run as its own stage of the month)."""
    checks = checks or {}
    validation = dict(record.get("validation") or {})
    validation["sources"] = {**(validation.get("sources") or {}), **(checks.get("sources") or {})}
    for key in ("critical_failures", "quarantined", "warnings"):
        validation[key] = list(validation.get(key) or []) + list(checks.get(key) or [])
    validation["data_docs"] = checks.get("data_docs") or validation.get("data_docs")
    return record | {"validation": validation}


LINE_TERMS = (("header", "見出し", "header"), ("blank", "空行", "blank"), ("accepted", "採用", "accepted"),
              ("quarantined", "隔離", "quarantined"), ("refused", "拒否", "refused"))


def _line_accounting(lines: dict | None) -> dict | None:
    """The delivery record's count of every physical line (Parquet: row) as a sentence per language.

    Ingest refuses to commit a month whose counts do not add up, so the sum shown is exact."""
    if not lines:
        return None
    unit_ja, unit_en = ("行", "rows") if lines.get("unit") == "rows" else ("物理行", "physical lines")
    parts = [(ja, en, int(lines.get(kind, 0))) for kind, ja, en in LINE_TERMS if int(lines.get(kind, 0))]
    return {"physical": int(lines["physical"]),
            "ja": f"{unit_ja} {int(lines['physical']):,} ＝ " + " ＋ ".join(f"{ja} {n:,}" for ja, _, n in parts),
            "en": f"{int(lines['physical']):,} {unit_en} = " + " + ".join(f"{n:,} {en}" for _, en, n in parts)}


def _data_quality(record: dict, docs_link: str | None) -> DataQuality:
    sources = [{"name": n, "title": SOURCES[n].title_ja if n in SOURCES else n, "file": s.get("file"),
                "encoding": s.get("encoding"), "rows": s.get("rows"), "accepted": s.get("accepted"),
                "quarantined": s.get("quarantined"), "reasons": s.get("quarantine_reasons", {}),
                "unknown": s.get("unknown_columns", []), "lines": _line_accounting(s.get("lines"))}
               for n, s in record.get("sources", {}).items()]
    validation = record.get("validation") or {}
    per_source = validation.get("sources") or {}
    for source in sources:
        checked = per_source.get(source["name"], {})
        source["expectations"], source["failed"] = checked.get("expectations", "—"), checked.get("failed", "—")

    def entries(key: str) -> list[dict]:
        return [{"source": e.get("source", ""), "expectation": e.get("expectation", ""),
                 "column": e.get("column") if not isinstance(e.get("column"), list) else ", ".join(e["column"]),
                 "description": e.get("description", ""), "description_ja": e.get("description_ja", ""),
                 "severity": e.get("severity", ""), "unexpected": e.get("unexpected"), "rows": e.get("rows")}
                for e in validation.get(key) or []]

    return DataQuality(
        sources=tuple(sources), absent=tuple(record.get("absent_optional", [])),
        stray=tuple(record.get("stray_files", [])),
        per_source=tuple({"name": n, "expectations": v.get("expectations", 0), "failed": v.get("failed", 0)}
                         for n, v in sorted(per_source.items())),
        expectations=sum(v.get("expectations", 0) for v in per_source.values()),
        failed=sum(v.get("failed", 0) for v in per_source.values()),
        critical=tuple(entries("critical_failures")), quarantined=tuple(entries("quarantined")),
        warnings=tuple(entries("warnings")), data_docs=docs_link,
        empty_sources=tuple(s["name"] for s in sources if not s["rows"]))


def ranker_title(who: str, trained) -> str:
    """Bilingual name of a ranker in the evaluation tables."""
    if who == "model":
        ja, en = CANDIDATES.get(trained.challenger or "", ("モデル", "model"))
        return f"挑戦モデル（{ja}）/ challenger ({en})"
    if who == "champion":
        return f"現行モデル v{trained.champion_version} / champion v{trained.champion_version}"
    if who in CANDIDATES:
        ja, en = CANDIDATES[who]
        return f"候補：{ja} / candidate: {en}"
    ja, en, _ = BASELINES[who]
    return f"ルール：{ja} / rule: {en}"


def _metric_row(name: str, m: dict, threshold: int, used: bool = False) -> MetricRow:
    """One ranker's figures at k, with any count that would reveal 1..threshold-1 people suppressed."""
    def at_k(suffix: str) -> tuple[str, str]:
        positives = m.get(f"positives_in_top_k{suffix}") or 0
        if 0 < positives < threshold:
            return f"<{threshold}人", f"<{threshold}人"
        return _fmt(m.get(f"precision_at_k{suffix}")), _fmt(m.get(f"recall_at_k{suffix}"))

    precision, recall = at_k("")
    worst, _ = at_k("_worst")
    best, _ = at_k("_best")
    return MetricRow(name=name, used=used, k=m.get("k"),
                     labelled=_count(m.get("labelled_in_top_k") or 0, threshold),
                     positives=_count(m.get("positives_in_top_k") or 0, threshold),
                     precision=precision, recall=recall, precision_ties=f"{worst} – {best}",
                     roc_auc=_fmt(m.get("roc_auc")), average_precision=_fmt(m.get("average_precision")),
                     brier=_fmt(m.get("brier")))


def _evaluation(settings: dict, trained, threshold: int) -> tuple[Evaluation, object, Images, Calibration,
                                                                      ModelTables]:
    """(evaluation, holdout, plots, calibration, extra tables) for the model-vs-baselines section.

    Each part that cannot be computed this month is None (or empty) with a Notice saying why."""
    serving = evaluation.serving_ranker(trained)
    order = ["model", "champion", *BASELINES]
    rows = tuple(_metric_row(ranker_title(who, trained), trained.evaluation[who], threshold, who == serving)
                 for who in order if who in trained.evaluation)
    candidates = tuple(_metric_row(ranker_title(name, trained) + (" ✦" if name == trained.challenger else ""), m,
                                   threshold) for name, m in sorted(getattr(trained, "candidates", {}).items()))
    districts = []
    for who in dict.fromkeys([serving, "alone_75"]):
        for district, m in sorted(((trained.evaluation.get(who) or {}).get("districts") or {}).items()):
            districts.append(_metric_row(f"{district}: {RANKER_TITLES.get(who, who)}", m, threshold))
    held = evaluation.holdout(trained) if trained.evaluation else None
    timespan = settings["labels"]["timespan_days"]
    labelled = int(held.frame["label"].notna().sum()) if held is not None else 0
    no_holdout = None if held is not None else Notice(
        "model", f"学習用と検証用の両方の月について訪問結果を待つ期間（{timespan}日）が"
        "まだ過ぎていないため、検証月がなく、モデルとルールの比較はできません。",
        f"No holdout month yet (the {timespan}-day label windows of a training month and "
        "a later holdout month have not both closed), so the rankers cannot be compared.")
    no_precision = None
    if held is not None and labelled == 0:
        no_precision = Notice("model", "検証用の訪問結果がまだないため、精度は計算できません。",
                              "No holdout labels yet, so precision cannot be measured.")
    elif held is not None and not any((m.get("labelled_in_top_k") or 0) for m in trained.evaluation.values()):
        no_precision = Notice("model", "上位k人の中に訪問結果のある人がいないため、上位k人の適合率は計算できません。",
                              "Nobody in any ranker's top k has a known outcome, so precision@k cannot be measured.")

    if getattr(trained, "split_plot", None):
        splits = Figure(plots.data_uri(trained.split_plot))
    else:
        splits = Figure(None, Notice("model", "今月はモデルを学習していないため、学習・較正・検証の期間の図はありません。",
                                     "No model was trained this month, so there is no plot of the training, "
                                     "calibration and holdout windows."))
    calibration = Calibration((), None)
    if held is None:
        pr_at_k = Figure(None, Notice("model", "検証結果がないため、上位k人の適合率・再現率の曲線はありません。",
                                      "No holdout evaluation, so there are no precision and recall curves at k."))
    elif labelled < threshold:
        pr_at_k = Figure(None, Notice(
            "model", f"検証月に訪問結果のある人が{threshold}人未満のため、上位k人の適合率・再現率の曲線は描けません（少数の秘匿）。",
            f"Fewer than {threshold} holdout people have a known outcome, so the precision and recall curves "
            "cannot be drawn (small cells are not shown)."))
    else:
        curves = evaluation.curves(held, threshold)
        names = evaluation.RANKER_NAMES | {"model": f"challenger ({trained.challenger})",
                                           "champion": f"champion v{trained.champion_version}"}
        pr_at_k = Figure(plots.data_uri(plots.precision_recall_at_k(curves, held.k, names)))
    if held is None or "model" not in held.rankers:
        calibration_figure = Figure(None, Notice(
            "model", "今月はモデルを検証していないため、較正図はありません。",
            "No model was evaluated on the holdout this month, so there is no calibration plot."))
    else:
        bins, brier = evaluation.calibration_bins(held, threshold)
        calibration = Calibration(tuple(bins), brier)
        calibration_figure = Figure(plots.data_uri(plots.calibration(bins, brier))) if bins else Figure(None, Notice(
            "model", f"検証月に訪問結果のある人が{threshold}人未満のため、較正図は描けません（少数の秘匿）。",
            f"Fewer than {threshold} holdout people have a known outcome, so there is no calibration plot "
            "(small cells are not shown)."))
    extra = ModelTables(candidates=candidates, districts=tuple(districts),
                        points=tuple(describe_points(settings["baselines"])),
                        points_min=settings["baselines"]["points_min"])
    return (Evaluation(rows if held is not None else (), no_holdout, no_precision), held,
            Images(splits, pr_at_k, calibration_figure), calibration, extra)


def _explaining_model(trained: TrainResult):
    """The model whose SHAP summary is shown: the serving model, else the month's registered
    (compared but not promoted) version, else None."""
    if trained.model is not None:
        return trained.model, True
    if not trained.model_version or trained.challenger_model is None:
        return None, False
    return trained.challenger_model, False


def _shap_section(trained: TrainResult, eligible: pd.DataFrame, listed: pd.DataFrame, threshold: int) -> Shap:
    counts = pd.Series([f for fs in listed["reason_features"] for f in (fs if fs is not None else [])],
                       dtype="str").value_counts()
    names = list(CATALOG)
    reason_counts = counts.reindex(names, fill_value=0)
    shown = suppress(reason_counts, threshold)
    reasons = [{"feature": n, "label": f"{CATALOG[n].label_ja} / {CATALOG[n].label_en}", "listed": shown[n]}
               for n in reason_counts.sort_values(ascending=False, kind="stable").index]
    model, serving = _explaining_model(trained)
    if model is None or not len(eligible):
        why = (Notice("reasons", "今月はモデルがないため、SHAP の全体像はありません（理由はルールの条件です）。",
                      "No model this month, so no SHAP summary (the reasons are the rule's criteria).")
               if model is None else
               Notice("reasons", "掲載可能な住民がいないため、SHAP の全体像はありません。",
                      "Nobody is eligible this month, so there is no SHAP summary."))
        return Shap(reasons=tuple(reasons), image=None, serving=False, version=trained.model_version, rows=(),
                    base=None, n=None, why_not=why)
    sample = eligible.sort_values("pid", kind="stable")
    if len(sample) > SHAP_SAMPLE:
        sample = sample.sample(SHAP_SAMPLE, random_state=0).sort_values("pid", kind="stable")
    values, base = shap_values(model, sample)
    group_names, contrib = grouped(values)
    data = sample[group_names].to_numpy(dtype="float64")
    labels = [plots.text(CATALOG[n].label_ja, CATALOG[n].label_en) for n in group_names]
    title = plots.text("SHAP 寄与の全体像", "Global SHAP summary") + \
        f" — {len(sample)} eligible residents, model v{trained.model_version}" + ("" if serving else " (not serving)")
    rows = tuple({"label": f"{CATALOG[n].label_ja} / {CATALOG[n].label_en}",
                  "mean_abs": float(np.abs(contrib[:, j]).mean()),
                  "share_raising": float((contrib[:, j] > 0).mean())}
                 for j, n in sorted(enumerate(group_names), key=lambda t: -np.abs(contrib[:, t[0]]).mean()))
    return Shap(reasons=tuple(reasons), image=plots.data_uri(plots.shap_summary(contrib, data, labels, title)),
                serving=serving, version=trained.model_version, rows=rows, base=float(base), n=len(sample),
                why_not=None)


def _drift_section(month: str, features: pd.DataFrame, previous: pd.DataFrame | None,
                   previous_scores: pd.DataFrame | None, scores: pd.DataFrame | None) -> Drift:
    rows = evaluation.drift(previous, features, MODEL_FEATURES)
    for row in rows:
        ja, en = label(row["column"])
        row["label"] = f"{ja} / {en}"
    if previous is not None and previous_scores is not None and scores is not None:
        score = evaluation.drift(previous_scores, scores, ["score"])
        for row in score:
            row["label"] = "スコア / score (the list ranker's output; moves when a new model version serves)"
        rows += score
    why = None
    if previous is None:
        why = Notice("drift", f"前月（{shift(month, -1)}）のデータがないため、ドリフトは比較できません。",
                     f"No data for the previous month ({shift(month, -1)}), so drift cannot be measured.")
    elif not rows:
        why = Notice("drift", "前月と今月に共通の特徴量がないため、ドリフトは比較できません。",
                     "The previous month shares no feature with this month, so drift cannot be measured.")
    return Drift(previous=shift(month, -1) if previous is not None else None, rows=tuple(rows),
                 flagged=sum(r["flag"] for r in rows), threshold=evaluation.PSI_FLAG, why_not=why)


def _fairness_section(stored: dict | None, held, listed: pd.DataFrame, eligible: pd.DataFrame,
                      threshold: int) -> Fairness:
    why = None if held is not None else Notice(
        "fairness", "検証結果がないため、グループ別の検証月の再現率・適合率は示せません（今月の掲載率のみ示します）。",
        "No holdout evaluation, so per-group holdout recall and precision cannot be shown "
        "(only this month's selection rates).")
    return Fairness(computed=tuple(evaluation.group_results(held, listed, eligible, threshold)),
                    stored=tuple(_generic_tables(stored, threshold) if stored else []),
                    ratio=evaluation.FAIRNESS_RATIO, holdout_why_not=why)


COUNT_WORDS = ("labelled", "positives", "true_positives", "selected", "count", "n", "people", "listed")
RATE_WORDS = ("tpr", "fdr", "recall", "precision", "rate")


def _generic_tables(value, threshold: int = 10) -> list[dict]:
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
                out.append(_fmt(v))
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
            tables.append({"title": str(title), "header": ["value"], "rows": [[_fmt(body)]], "flags": [False]})
            continue
        keys = list(dict.fromkeys(k for r in rows for k in r))
        first = [k for k in ("attribute", "group", "reference") if k in keys]
        last = [k for k in ("flag", "flagged", "flags", "suppressed") if k in keys]
        header = first + [k for k in keys if k not in first and k not in last] + last
        flags = [any(bool(r.get(k)) for k in ("flag", "flagged", "flags") if k in r) for r in rows]
        name = RANKER_TITLES.get(str(title), str(title))
        tables.append({"title": name, "header": header, "rows": [cells(r, header) for r in rows], "flags": flags})
    return tables


RANKER_TITLES = {"model": "挑戦モデル / challenger", "champion": "現行モデル / champion"} | {
    n: f"{ja} / {en}" for n, (ja, en, _) in BASELINES.items()}


# ------------------------------------------------------------------------------ the report

def _training(settings: dict, trained) -> Training:
    t = settings["training"]
    timespan = settings["labels"]["timespan_days"]
    counts = dict(trained.label_counts or {})
    coverage = (Coverage(int(counts["holdout_cohort"]), int(counts.get("holdout_labelled", 0)),
                         float(counts.get("holdout_coverage_pct", 0.0))) if "holdout_cohort" in counts else None)
    why = None
    if trained.challenger is None and not trained.train_months:
        why = Notice("model", f"訪問結果を待つ期間（{timespan}日）が学習と検証に足りるだけ"
                     "まだ過ぎていないため、モデルは学習できません。今のルールでリストを作りました。",
                     f"No {timespan}-day label window has closed early enough to train "
                     "and hold out, so no model could be trained; today's rule made the list.")
    elif trained.challenger is None:
        why = Notice("model", f"学習月の訪問結果が{counts.get('train_labelled', 0)}件（うち要支援"
                     f"{counts.get('train_positive', 0)}件）で、必要な{t['min_labelled']}件（要支援{t['min_positive']}件）"
                     "に足りないため、モデルは学習できません。ルールでリストを作りました。",
                     f"The training months hold {counts.get('train_labelled', 0)} labelled rows "
                     f"({counts.get('train_positive', 0)} positive); at least {t['min_labelled']} "
                     f"({t['min_positive']} positive) are needed, so no model could be trained; a rule made the list.")
    calibration_months = tuple(getattr(trained, "calibration_months", []) or [])
    train_months = tuple(trained.train_months or [])
    return Training(
        mode=trained.mode, reason=trained.reason, holdout_month=trained.holdout_month, train_months=train_months,
        fit_months=train_months[:len(train_months) - len(calibration_months)], calibration_months=calibration_months,
        label_counts=counts, baseline=trained.baseline, model_version=trained.model_version,
        calibration=getattr(trained, "calibration", None), criterion=getattr(trained, "criterion", None),
        serving=getattr(trained, "serving", None), challenger_version=getattr(trained, "challenger_version", None),
        champion_version=getattr(trained, "champion_version", None), coverage=coverage, why_not=why)


def _listing(settings: dict, features: pd.DataFrame, listed: pd.DataFrame, eligible: pd.DataFrame,
             counts: Eligibility, caps: dict[str, int], threshold: int) -> ListSection:
    """Cohort counts, and in words every district whose capacity the list could not fill."""
    min_age = settings["prioritise"]["min_age"]
    cohort = [("住民（スコア対象）/ residents scored", _count(len(features), threshold)),
              (f"{min_age}歳以上 / aged {min_age}+", _count(counts.min_age_cohort, threshold)),
              ("除外（申出・支援中・入院入所）/ excluded", _count(counts.excluded, threshold)),
              ("180日以内に訪問済み / visited in the last 180 days", _count(counts.recently_visited, threshold)),
              ("掲載可能 / eligible", _count(counts.eligible, threshold)),
              ("訪問枠 / capacity", str(sum(caps.values()))),
              ("掲載 / listed", str(len(listed)))]
    if "exploration" in listed.columns:
        cohort.append(("うち探索枠（無作為抽出）/ of which exploration picks (random)",
                       str(int(listed["exploration"].fillna(False).astype(bool).sum()))))
    notes = []
    if not sum(caps.values()):
        share = settings["capacity"]["share_of_residents"]
        notes.append(Notice("cohort", f"訪問枠が0人のため（住民の{share:.2%}、capacity.share_of_residents = {share}）、"
                            "今月のリストは空です。",
                            f"The visiting capacity is 0 (capacity.share_of_residents = {share} of "
                            f"{len(features)} residents), so this month's list is empty."))
    per_district = eligible["district"].value_counts()
    for district, cap in sorted(caps.items()):
        n = int(per_district.get(district, 0))
        if cap and n == 0:
            notes.append(Notice("cohort", f"{district}には掲載できる人がいないため、訪問枠{cap}人に対して掲載は0人です。",
                                f"Nobody in district {district} is eligible, so none of its {cap} visits is listed."))
        elif cap > n:
            notes.append(Notice("cohort", f"{district}は掲載できる人が訪問枠{cap}人より少ないため、"
                                f"全員（{_count(n, threshold)}人）を掲載しました。",
                                f"District {district} has fewer eligible people than its {cap} visits, so all of them "
                                f"({_count(n, threshold)}) are listed."))
    return ListSection(cohort=tuple(cohort), capacity=int(sum(caps.values())), listed=len(listed), why_not=tuple(notes))


def _delivery_notices(quality: DataQuality) -> tuple[Notice, ...]:
    notes = []
    if quality.absent:
        names = ", ".join(quality.absent)
        notes.append(Notice("quality", f"今月は任意の情報源（{names}）が届いていません。これらに基づく特徴量は、"
                            "前月までに届いた記録だけで計算しています。",
                            f"Optional sources not delivered this month: {names}. Features from them use only the "
                            "records delivered in earlier months."))
    if quality.empty_sources:
        names = ", ".join(quality.empty_sources)
        notes.append(Notice("quality", f"今月届いたファイルのうち、{names} には行がありませんでした。",
                            f"Delivered this month without any rows: {names}."))
    return tuple(notes)


def report_context(inputs: ReportInputs) -> ReportContext:
    """Everything the report and the model card show, as one typed structure (reports/context.py)."""
    settings, features, listed, trained = inputs.settings, inputs.features, inputs.listed, inputs.trained
    threshold = settings["report"]["small_cell"]
    caps = inputs.capacity
    eligible = features[inputs.eligibility.mask]
    listed_attrs = features.set_index("pid").loc[listed["pid"]]
    tables = (
        district_table(features, listed_attrs["district"], caps, threshold),
        makeup_table(f"年齢区分別 / by age band ({AGE_TOP}+ top-coded)", age_band(features["age"]),
                     age_band(listed_attrs["age"]), [b[2] for b in AGE_BANDS], threshold),
        makeup_table("性別 / by sex", features["sex"].map(SEX_JA), listed_attrs["sex"].map(SEX_JA),
                     list(SEX_JA.values()), threshold),
    )
    evaluated, held, images, calibration, model_tables = _evaluation(settings, trained, threshold)
    quality = _data_quality(_with_feature_checks(inputs.record, inputs.feature_checks), inputs.data_docs)
    return ReportContext(
        month=inputs.month, threshold=threshold, meta=_metadata(inputs.month, inputs.manifest, trained,
                                                                inputs.code_version),
        quality=quality, delivery_notes=_delivery_notices(quality), training=_training(settings, trained),
        evaluation=evaluated, model_tables=model_tables, holdout=held, images=images, calibration=calibration,
        listing=_listing(settings, features, listed, eligible, inputs.eligibility, caps, threshold), tables=tables,
        fairness=_fairness_section(_as_stored(trained.fairness), held, listed, eligible, threshold),
        shap=_shap_section(trained, eligible, listed, threshold),
        drift=_drift_section(inputs.month, features, inputs.previous_features, inputs.previous_scores, inputs.scores),
        list_path=inputs.list_path, mlflow_uri=inputs.mlflow_uri, settings=settings,
    )


def _as_stored(value):
    """A value as training.json stores it (keys sorted, plain JSON types), so the stored fairness
    tables read the same whether rendered now or rebuilt from the file."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def report_html(context: ReportContext) -> str:
    return _ENV.get_template("report.html.j2").render(**context.template_vars())
