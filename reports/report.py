"""The monthly batch report: runs/<month>/report/index.html, offline, aggregates only."""
from __future__ import annotations

from pathlib import Path

import jinja2
import pandas as pd

from models.baselines import BASELINES
from pipelines import lake
from pipelines.config import Config
from pipelines.contract import SOURCES
from pipelines.storage import read_json, write_text
from reports.disclosure import AGE_BANDS, age_band, suppress, suppressed_total

SEX_JA = {"male": "男性", "female": "女性", "other": "その他・不明"}
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                          autoescape=True)


def _fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


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


def write_report(cfg: Config, month: str, features: pd.DataFrame, listed: pd.DataFrame, trained) -> Path:
    run_dir = cfg.runs / month
    manifest = read_json(run_dir / "manifest.json")
    record = lake.delivery_record(cfg.lake, month)
    threshold = cfg.get("report", "small_cell")
    sources = [{"name": n, "title": SOURCES[n].title_ja, "file": s["file"], "encoding": s["encoding"],
                "rows": s["rows"], "accepted": s["accepted"], "quarantined": s["quarantined"],
                "reasons": s["quarantine_reasons"], "unknown": s["unknown_columns"]}
               for n, s in record["sources"].items()]
    validation = record.get("validation", {})
    evaluation = [{"name": "モデル / model" if who == "model" else f"{BASELINES[who][0]} / {BASELINES[who][1]}",
                   **{k: _fmt(v) for k, v in figures.items()}}
                  for who, figures in sorted(trained.evaluation.items(), key=lambda kv: kv[0] != "model")]
    listed_attrs = features.set_index("pid").loc[listed["pid"]]
    prioritise = manifest["stages"]["prioritise"]
    tables = [
        district_table(features, listed_attrs["district"], prioritise["capacity"], threshold),
        makeup_table("年齢区分別 / by age band (90+ top-coded)", age_band(features["age"]),
                     age_band(listed_attrs["age"]), [b[2] for b in AGE_BANDS], threshold),
        makeup_table("性別 / by sex", features["sex"].map(SEX_JA), listed_attrs["sex"].map(SEX_JA),
                     list(SEX_JA.values()), threshold),
    ]
    meta = [("対象月 / month", month), ("設定ハッシュ / config hash", manifest["config_hash"]),
            ("コード版 / code version", manifest["code_version"]), ("鍵ID / key id", manifest.get("key_id")),
            ("データ指紋 / lake fingerprint", manifest.get("lake_fingerprint", "")[:16]),
            ("モデル版 / model version", trained.model_version or "—"),
            ("MLflow run", trained.run_id or "—")]
    html = _ENV.get_template("report.html.j2").render(
        month=month, meta=meta, sources=sources, absent=record.get("absent_optional", []),
        validation={"expectations": sum(v["expectations"] for v in validation.get("sources", {}).values()),
                    "critical": len(validation.get("critical_failures", [])),
                    "warnings": validation.get("warnings", [])},
        training={"mode": trained.mode, "reason": trained.reason, "holdout_month": trained.holdout_month,
                  "label_counts": trained.label_counts},
        evaluation=evaluation, cohort_size=len(features), prioritise=prioritise, tables=tables,
        list_path=run_dir / "list.parquet", mlflow_uri=f"sqlite:///{cfg.mlflow_db}")
    path = run_dir / "report" / "index.html"
    write_text(html, path)
    return path
