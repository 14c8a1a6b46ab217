"""The monthly batch report: runs/<month>/report/index.html, offline, aggregates only.

Sections: run metadata; data received and validated; cohort and list counts; model vs the
rule baselines at capacity with precision/recall-at-k curves and calibration; fairness by
group; why people were listed (global SHAP summary, reasons used); drift of every feature
against last month; the list's make-up. Images are embedded (base64 PNG), there is no script
and no external resource, so the file opens anywhere, offline. Every count of people goes
through disclosure control (reports/disclosure.py) and ages are top-coded at 90.

`write_report` also stores the listed people's SHAP explanations (models/explain.py) and the
model card of the month's registered model version (reports/modelcard.py).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from features.catalog import CATALOG, MODEL_FEATURES, label
from models.baselines import BASELINES
from pipelines.catalog import lake
from pipelines.config import Config
from contract.sources import SOURCES
from contract.months import shift
from contract.storage import read_json, read_parquet, write_text
from reports.context import (Calibration, Coverage, DataQuality, Drift, Evaluation, Fairness, Figure, Images,
                             ListSection, Metadata, MetricRow, ModelTables, Notice, ReportContext, Shap, Training)
from reports.disclosure import AGE_BANDS, age_band, suppress, suppressed_total

SEX_JA = {"male": "男性", "female": "女性", "other": "その他・不明"}
SHAP_SAMPLE = 2000
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                          autoescape=True, undefined=jinja2.StrictUndefined)


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

def _metadata(cfg: Config, month: str, manifest: dict, trained) -> Metadata:
    from models.train import _code_version

    meta = [("対象月 / month", month), ("設定ハッシュ / config hash", manifest["config_hash"]),
            ("コード版 / code version", f"mimamori {manifest['code_version']} (git {_code_version()})"),
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


def _with_feature_checks(record: dict, manifest: dict) -> dict:
    """The delivery's validation plus the feature table's (run as its own stage of the month)."""
    checks = (manifest.get("stages", {}).get("validate") or {}).get("features") or {}
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


def _data_quality(cfg: Config, month: str, record: dict) -> DataQuality:
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

    docs = validation.get("data_docs")
    docs_link = None
    if docs:
        target = (cfg.work / docs).resolve()
        report_dir = (cfg.runs / month / "report").resolve()
        docs_link = Path(*([".."] * len(report_dir.relative_to(cfg.work.resolve()).parts)), target.relative_to(
            cfg.work.resolve())).as_posix() if target.is_relative_to(cfg.work.resolve()) else str(target)
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
    from models.candidates import CANDIDATES

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


def _evaluation(cfg: Config, month: str, trained, threshold: int) -> tuple[Evaluation, object, Images, Calibration,
                                                                      ModelTables]:
    """(evaluation, holdout, plots, calibration, extra tables) for the model-vs-baselines section.

    Each part that cannot be computed this month is None (or empty) with a Notice saying why."""
    from models.baselines import describe_points
    from reports import evaluation, plots

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
    held = evaluation.holdout(cfg, month, trained) if trained.evaluation else None
    labelled = int(held.frame["label"].notna().sum()) if held is not None else 0
    no_holdout = None if held is not None else Notice(
        "model", f"学習用と検証用の両方の月について訪問結果を待つ期間（{cfg.get('labels', 'timespan_days')}日）が"
        "まだ過ぎていないため、検証月がなく、モデルとルールの比較はできません。",
        f"No holdout month yet (the {cfg.get('labels', 'timespan_days')}-day label windows of a training month and "
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
                        points=tuple(describe_points(cfg.settings["baselines"])),
                        points_min=cfg.settings["baselines"]["points_min"])
    return (Evaluation(rows if held is not None else (), no_holdout, no_precision), held,
            Images(splits, pr_at_k, calibration_figure), calibration, extra)


def _explaining_model(cfg: Config, trained):
    """The model whose SHAP summary is shown: the serving model, else the month's registered
    (compared but not promoted) version, else None."""
    if trained.model is not None:
        return trained.model, True
    if not trained.model_version:
        return None, False
    try:
        from models.tracking import REGISTERED_MODEL, connect

        mlflow = connect(cfg.mlflow_db, cfg.mlflow_artifacts)
        import mlflow.sklearn

        return mlflow.sklearn.load_model(f"models:/{REGISTERED_MODEL}/{trained.model_version}"), False
    except Exception:  # the registry is unreachable or the version was deleted: no summary
        return None, False


def _shap_section(cfg: Config, trained, eligible: pd.DataFrame, listed: pd.DataFrame, threshold: int) -> Shap:
    from models.explain import grouped, shap_values
    from reports import plots

    counts = pd.Series([f for fs in listed["reason_features"] for f in (fs if fs is not None else [])],
                       dtype="str").value_counts()
    names = list(CATALOG)
    reason_counts = counts.reindex(names, fill_value=0)
    shown = suppress(reason_counts, threshold)
    reasons = [{"feature": n, "label": f"{CATALOG[n].label_ja} / {CATALOG[n].label_en}", "listed": shown[n]}
               for n in reason_counts.sort_values(ascending=False, kind="stable").index]
    model, serving = _explaining_model(cfg, trained)
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


def _previous_features(cfg: Config, month: str) -> pd.DataFrame | None:
    previous = shift(month, -1)
    path = cfg.features_dir / f"{previous}.parquet"
    if path.exists():   # only the drift columns: a million pids cost more to convert than the rest
        return read_parquet(path, columns=MODEL_FEATURES)
    if previous in lake.ingested_months(cfg.lake):
        from pipelines.catalog.features import month_features

        return month_features(cfg.work, previous)
    return None


def _drift_section(cfg: Config, month: str, features: pd.DataFrame) -> Drift:
    from reports import evaluation

    previous = _previous_features(cfg, month)
    rows = evaluation.drift(previous, features, MODEL_FEATURES)
    for row in rows:
        ja, en = label(row["column"])
        row["label"] = f"{ja} / {en}"
    prev_scores = cfg.runs / shift(month, -1) / "scores.parquet"
    cur_scores = cfg.runs / month / "scores.parquet"
    if previous is not None and prev_scores.exists() and cur_scores.exists():
        score = evaluation.drift(read_parquet(prev_scores, columns=["score"]),
                                 read_parquet(cur_scores, columns=["score"]), ["score"])
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


def _fairness_section(trained_json: dict, held, listed: pd.DataFrame, eligible: pd.DataFrame,
                      threshold: int) -> Fairness:
    from reports import evaluation

    stored = trained_json.get("fairness") if isinstance(trained_json, dict) else None
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


def _eligible(cfg: Config, month: str, features: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    from pipelines.monthly import excluded_pids, recently_visited
    from pipelines.prioritise import eligible

    excluded, visited = excluded_pids(cfg, month), recently_visited(cfg, month)
    ok = eligible(features, excluded, visited, cfg.get("prioritise", "min_age"))
    return features[ok.to_numpy()], {"excluded": int(features["pid"].isin(excluded).sum()),
                                     "visited": int(features["pid"].isin(visited).sum()),
                                     "eligible": int(ok.sum()),
                                     "min_age_cohort": int((features["age"] >= cfg.get("prioritise", "min_age")).sum())}


# ------------------------------------------------------------------------------ the report

def _training(cfg: Config, trained) -> Training:
    t = cfg.settings["training"]
    counts = dict(trained.label_counts or {})
    coverage = (Coverage(int(counts["holdout_cohort"]), int(counts.get("holdout_labelled", 0)),
                         float(counts.get("holdout_coverage_pct", 0.0))) if "holdout_cohort" in counts else None)
    why = None
    if trained.challenger is None and not trained.train_months:
        why = Notice("model", f"訪問結果を待つ期間（{cfg.get('labels', 'timespan_days')}日）が学習と検証に足りるだけ"
                     "まだ過ぎていないため、モデルは学習できません。今のルールでリストを作りました。",
                     f"No {cfg.get('labels', 'timespan_days')}-day label window has closed early enough to train "
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


def _listing(cfg: Config, features: pd.DataFrame, listed: pd.DataFrame, eligible: pd.DataFrame, counts: dict,
             caps: dict[str, int], threshold: int) -> ListSection:
    """Cohort counts, and in words every district whose capacity the list could not fill."""
    min_age = cfg.get("prioritise", "min_age")
    cohort = [("住民（スコア対象）/ residents scored", _count(len(features), threshold)),
              (f"{min_age}歳以上 / aged {min_age}+", _count(counts["min_age_cohort"], threshold)),
              ("除外（申出・支援中・入院入所）/ excluded", _count(counts["excluded"], threshold)),
              ("180日以内に訪問済み / visited in the last 180 days", _count(counts["visited"], threshold)),
              ("掲載可能 / eligible", _count(counts["eligible"], threshold)),
              ("訪問枠 / capacity", str(sum(caps.values()))),
              ("掲載 / listed", str(len(listed)))]
    if "exploration" in listed.columns:
        cohort.append(("うち探索枠（無作為抽出）/ of which exploration picks (random)",
                       str(int(listed["exploration"].fillna(False).astype(bool).sum()))))
    notes = []
    if not sum(caps.values()):
        share = cfg.get("capacity", "share_of_residents")
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


def build_context(cfg: Config, month: str, features: pd.DataFrame, listed: pd.DataFrame, trained) -> ReportContext:
    """Everything the report and the model card show, as one typed structure (reports/context.py)."""
    run_dir = cfg.runs / month
    manifest = read_json(run_dir / "manifest.json")
    record = lake.delivery_record(cfg.lake, month) or {}
    trained_json = read_json(run_dir / "training.json") if (run_dir / "training.json").exists() else {}
    threshold = cfg.get("report", "small_cell")
    prioritise = manifest.get("stages", {}).get("prioritise", {})
    caps = prioritise.get("capacity") or {}
    eligible, counts = _eligible(cfg, month, features)
    listed_attrs = features.set_index("pid").loc[listed["pid"]]
    tables = (
        district_table(features, listed_attrs["district"], caps, threshold),
        makeup_table("年齢区分別 / by age band (90+ top-coded)", age_band(features["age"]),
                     age_band(listed_attrs["age"]), [b[2] for b in AGE_BANDS], threshold),
        makeup_table("性別 / by sex", features["sex"].map(SEX_JA), listed_attrs["sex"].map(SEX_JA),
                     list(SEX_JA.values()), threshold),
    )
    evaluation, held, images, calibration, model_tables = _evaluation(cfg, month, trained, threshold)
    quality = _data_quality(cfg, month, _with_feature_checks(record, manifest))
    return ReportContext(
        month=month, threshold=threshold, meta=_metadata(cfg, month, manifest, trained),
        quality=quality, delivery_notes=_delivery_notices(quality), training=_training(cfg, trained),
        evaluation=evaluation, model_tables=model_tables, holdout=held, images=images, calibration=calibration,
        listing=_listing(cfg, features, listed, eligible, counts, caps, threshold), tables=tables,
        fairness=_fairness_section(trained_json, held, listed, eligible, threshold),
        shap=_shap_section(cfg, trained, eligible, listed, threshold),
        drift=_drift_section(cfg, month, features),
        list_path=run_dir / "list.parquet", mlflow_uri=f"sqlite:///{cfg.mlflow_db}",
        settings=cfg.settings,
    )


def write_report(cfg: Config, month: str, features: pd.DataFrame, listed: pd.DataFrame, trained) -> Path:
    from models.explain import write_explanations
    from reports.modelcard import write_model_card

    explanations = write_explanations(cfg, month, features, listed, trained)
    context = build_context(cfg, month, features, listed, trained)
    report_dir = cfg.runs / month / "report"
    card = write_model_card(cfg, month, trained, context) if trained.model_version else None
    if card is not None:
        write_text(card["html"].read_text(encoding="utf-8"), report_dir / "model_card.html")
    else:
        (report_dir / "model_card.html").unlink(missing_ok=True)
    context = replace(context, explanations=explanations, model_card="model_card.html" if card else None)
    html = _ENV.get_template("report.html.j2").render(**context.template_vars())
    path = report_dir / "index.html"
    write_text(html, path)
    return path
