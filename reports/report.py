"""The monthly batch report: runs/<month>/report/index.html, offline, aggregates only.

Sections: run metadata; data received and validated; cohort and list counts; model vs the
rule baselines at capacity with precision/recall-at-k curves and calibration; fairness by
group; why people were listed (global SHAP summary, reasons used); drift of every feature
against last month; the list's make-up. Images are embedded (base64 PNG), there is no script
and no external resource, so the file opens anywhere, offline. Every count of people goes
through one disclosure-control pass over the whole report (reports/disclosure.py; the cells and
their relations are registered by reports/cells.py), and ages are top-coded at 90.

`report_context` builds everything the report shows from what the runner holds in memory
(`ReportInputs`); `report_html` renders it. The catalogue writes the file
(pipelines/catalog/runs.py), beside the model card of the month's version (reports/modelcard.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import jinja2
import pandas as pd

from contract.months import shift
from contract.sources import SOURCES
from features.catalog import AGE_TOP, MODEL_FEATURES, label
from features.groups import AGE_BANDS, SEX_JA
from models.baselines import BASELINES
from models.prioritise import Eligibility
from models.train import TrainResult
from reports.cells import register_holdout, register_labels, register_month, register_reasons, register_wordings
from reports.fairness_tables import as_stored, fairness_section, month_audit
from reports import evaluation
from reports.model_sections import evaluation_section, shap_section
from reports.remedy_section import register_remedy, remedy_inputs, remedy_section
from reports.context import Coverage, DataQuality, Drift, ListSection, Metadata, Notice, ReportContext, Training
from reports.disclosure import Cells, Disclosed, disclose, total

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
    model_name: str = "mimamori-risk"   # the ward's MLflow registered model (registry.registered_model)


def makeup_table(title: str, attribute: str, order: list[str], words: dict[str, str], shown: Disclosed) -> dict:
    """Listed people per group beside the residents (the cells of reports/cells.py `register_month`)."""
    rows = [[words.get(g, g), shown.text(("residents", attribute, g)), shown.text(("listed", attribute, g))]
            for g in order]
    rows.append(["計 / total", shown.text(total("residents")), shown.text(total("listed"))])
    return {"title": title, "header": ["区分 / group", "住民 / residents", "掲載 / listed"], "rows": rows}


def district_table(caps: dict[str, int], shown: Disclosed) -> dict:
    """Visiting capacity per district. Capacity is planned workload, set by the ward before anyone
    is scored, so it is shown as it is, and so is a district's listed count when it fills it."""
    order = sorted(caps)
    rows = [[d, shown.text(("residents", "district", d)), shown.text(("aged 65+", "district", d)), caps[d],
             shown.text(("listed", "district", d))] for d in order]
    rows.append(["計 / total", shown.text(total("residents")), shown.text(total("aged 65+")),
                 sum(caps.values()), shown.text(total("listed"))])
    return {"title": "地区別の訪問枠 / visiting capacity by district",
            "header": ["地区 / district", "住民 / residents", "65歳以上 / aged 65+", "訪問枠 / capacity",
                       "掲載 / listed"], "rows": rows}


# ------------------------------------------------------------------------------ sections

def _metadata(month: str, manifest: dict, trained, code_version: str, model_name: str = "mimamori-risk") -> Metadata:
    meta = [("対象月 / month", month), ("設定ハッシュ / config hash", manifest["config_hash"]),
            ("コード版 / code version", f"mimamori {manifest['code_version']} (git {code_version})"),
            ("Python", manifest.get("python", "—")),
            ("鍵ID / key id", manifest.get("key_id") or "—"),
            ("データ指紋 / lake fingerprint", (manifest.get("lake_fingerprint") or "")[:16] or "—"),
            ("モデル版 / model version", f"{model_name} v{trained.model_version}" if trained.model_version else "—"),
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
    return f"ルール / rule: {BASELINES[trained.baseline].title_en}"


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


def _drift_section(month: str, features: pd.DataFrame, previous: pd.DataFrame | None,
                   previous_scores: pd.DataFrame | None, scores: pd.DataFrame | None) -> Drift:
    rows = evaluation.drift(previous, features, MODEL_FEATURES)
    for row in rows:
        ja, en = label(row["column"])
        row["label"] = f"{ja} / {en}"
    if previous is not None and previous_scores is not None and scores is not None:
        score = evaluation.drift(previous_scores, scores, ["score"])
        for row in score:
            row["label"] = ("スコア（順位付けに使う内部の値。較正済みのモデルのときだけ確率として読めます）/ score (the list "
                            "ranker's internal output, used to rank; a probability only when the serving model is "
                            "calibrated; moves when a new model version serves)")
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


# ------------------------------------------------------------------------------ the report

LABEL_WORDS = ((total("training labels"), "学習月の結果あり", "training months, labelled"),
               (("training labels", "label", "positive"), "うち要支援", "of whom in need"),
               (total("holdout labels"), "検証月の結果あり", "holdout month, labelled"),
               (("holdout labels", "label", "positive"), "うち要支援", "of whom in need"))


def _training(settings: dict, trained, shown: Disclosed) -> Training:
    t = settings["training"]
    timespan = settings["labels"]["timespan_days"]
    counts = dict(trained.label_counts or {})
    coverage = (Coverage(shown.text(total("holdout")), shown.text(total("holdout labels")),
                         shown.rate_text(total("holdout labels"), total("holdout")))
                if "holdout_cohort" in counts else None)
    labels = tuple((f"{ja} / {en}", shown.text(key)) for key, ja, en in LABEL_WORDS if key in shown.cells.values)
    why = None
    if trained.challenger is None and not trained.train_months:
        why = Notice("model", f"訪問結果を待つ期間（{timespan}日）が学習と検証に足りるだけ"
                     "まだ過ぎていないため、モデルは学習できません。今のルールでリストを作りました。",
                     f"No {timespan}-day label window has closed early enough to train "
                     "and hold out, so no model could be trained; today's rule made the list.")
    elif trained.challenger is None:
        held = {key: shown.text(key) if key in shown.cells.values else "0"
                for key in (total("training labels"), ("training labels", "label", "positive"))}
        labelled, positive = held.values()
        why = Notice("model", f"学習月の訪問結果が{labelled}件（うち要支援"
                     f"{positive}件）で、必要な{t['min_labelled']}件（要支援{t['min_positive']}件）"
                     "に足りないため、モデルは学習できません。ルールでリストを作りました。",
                     f"The training months hold {labelled} labelled rows "
                     f"({positive} positive); at least {t['min_labelled']} "
                     f"({t['min_positive']} positive) are needed, so no model could be trained; a rule made the list.")
    calibration_months = tuple(getattr(trained, "calibration_months", []) or [])
    train_months = tuple(trained.train_months or [])
    return Training(
        mode=trained.mode, reason=trained.reason, holdout_month=trained.holdout_month, train_months=train_months,
        fit_months=train_months[:len(train_months) - len(calibration_months)], calibration_months=calibration_months,
        label_counts=counts, labels=labels, baseline=trained.baseline, model_version=trained.model_version,
        calibration=getattr(trained, "calibration", None), criterion=getattr(trained, "criterion", None),
        serving=getattr(trained, "serving", None), challenger_version=getattr(trained, "challenger_version", None),
        champion_version=getattr(trained, "champion_version", None), coverage=coverage, why_not=why)


def _listing(settings: dict, features: pd.DataFrame, listed: pd.DataFrame, eligible: pd.DataFrame,
             caps: dict[str, int], shown: Disclosed) -> ListSection:
    """Cohort counts, and in words every district whose capacity the list could not fill."""
    min_age = settings["prioritise"]["min_age"]
    cohort = [("住民（スコア対象）/ residents scored", shown.text(total("residents"))),
              (f"{min_age}歳以上 / aged {min_age}+", shown.text(total(f"aged {min_age}+"))),
              ("除外（申出・支援中・入院入所）/ excluded", shown.text(total("excluded"))),
              ("180日以内に訪問済み / visited in the last 180 days", shown.text(total("recently visited"))),
              ("掲載可能 / eligible", shown.text(total("eligible"))),
              ("訪問枠 / capacity", str(sum(caps.values()))),
              ("掲載 / listed", shown.text(total("listed")))]
    if "exploration" in listed.columns:
        cohort.append(("うち探索枠（無作為抽出）/ of which exploration picks (random)",
                       shown.text(("listed", "exploration", "random"))))
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
            n_text = shown.text(("eligible", "district", district))
            notes.append(Notice("cohort", f"{district}は掲載できる人が訪問枠{cap}人より少ないため、"
                                f"全員（{n_text}人）を掲載しました。",
                                f"District {district} has fewer eligible people than its {cap} visits, so all of them "
                                f"({n_text}) are listed."))
    return ListSection(cohort=tuple(cohort), capacity=int(sum(caps.values())), listed=len(listed), why_not=tuple(notes))


def report_cells(inputs: ReportInputs, month_rows: list[dict]) -> Cells:
    """Every count the report publishes, with its relations (reports/cells.py), for the one pass."""
    trained, features = inputs.trained, inputs.features
    cells = Cells()
    listed = inputs.listed[[c for c in ("pid", "exploration") if c in inputs.listed]].merge(features, on="pid")
    register_month(cells, features, listed, inputs.eligibility, inputs.capacity,
                   inputs.settings["prioritise"]["min_age"], month_rows)
    held = evaluation.holdout(trained) if trained.evaluation else None
    bins = (evaluation.calibration_bins(held, inputs.settings["report"]["small_cell"])[0]
            if held is not None and "model" in held.rankers else [])
    register_holdout(cells, trained.evaluation or {}, getattr(trained, "candidates", {}) or {}, trained.challenger,
                     as_stored(trained.fairness) or {}, bins)
    register_labels(cells, dict(trained.label_counts or {}))
    register_reasons(cells, inputs.listed)
    register_wordings(cells, inputs.listed, inputs.settings["report"]["small_cell"])
    return cells


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
    bounds = settings["fairness"]["ratio_bounds"]
    month_rows = month_audit(listed, eligible, bounds, settings["fairness"]["min_labelled"])
    serving = evaluation.serving_ranker(trained)
    remedy = remedy_inputs(settings, trained, serving, as_stored(trained.fairness) or {})
    cells = report_cells(inputs, month_rows)
    register_remedy(cells, remedy)
    shown = disclose(cells, threshold)
    tables = (
        district_table(caps, shown),
        makeup_table(f"年齢区分別 / by age band ({AGE_TOP}+ top-coded)", "age_band", [b[2] for b in AGE_BANDS], {},
                     shown),
        makeup_table("性別 / by sex", "sex", list(SEX_JA), SEX_JA, shown),
    )
    evaluated, held, images, calibration, model_tables = evaluation_section(settings, trained, shown)
    quality = _data_quality(_with_feature_checks(inputs.record, inputs.feature_checks), inputs.data_docs)
    return ReportContext(
        month=inputs.month, threshold=threshold, meta=_metadata(inputs.month, inputs.manifest, trained,
                                                                inputs.code_version, inputs.model_name),
        quality=quality, delivery_notes=_delivery_notices(quality), training=_training(settings, trained, shown),
        evaluation=evaluated, model_tables=model_tables, holdout=held, images=images, calibration=calibration,
        listing=_listing(settings, features, listed, eligible, caps, shown), tables=tables,
        fairness=fairness_section(as_stored(trained.fairness), serving, month_rows, shown, bounds,
                                  settings["fairness"]["min_labelled"], remedy_section(remedy, shown)),
        shap=shap_section(trained, eligible, listed, shown),
        drift=_drift_section(inputs.month, features, inputs.previous_features, inputs.previous_scores, inputs.scores),
        list_path=inputs.list_path, mlflow_uri=inputs.mlflow_uri, settings=settings, disclosed=shown,
    )


def report_html(context: ReportContext) -> str:
    return _ENV.get_template("report.html.j2").render(**context.template_vars())
