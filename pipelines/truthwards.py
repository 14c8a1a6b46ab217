"""`mimamori truth-check --wards`: a set of synthetic wards generated, run and measured
against their latent truth, with the ablation; results in <root>/truth-check.json and
docs/model-quality.md (demo and benchmarks only).

Each ward lives in <root>/<folder>/ as a one-ward installation (inbox/, work/, custody/) with
its latent truth at truth.csv (written last: a folder without it was never fully generated) and
ward.json (how it was generated). The truth holds 宛名番号: it is read with the ward's key and
pseudonymised at once, and only counts leave this module. The arithmetic is
models/truthmeasure.py and models/ablation.py; the document is reports/modelquality.py.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from contract.storage import read_json, write_json, write_text
from features.catalog import GROUPS
from models.ablation import FinalMonth, Variant, ablation, source_key, union_rows, variants
from models.train import EvaluationSettings, labels_for, score_model, training_plan
from models.truthmeasure import aggregate, band_figures, group_recall, hits, ranked
from pipelines import audit
from pipelines.catalog import lake, registry, runs
from pipelines.catalog.features import month_features
from pipelines.training import evaluation_policy
from pipelines.config import Config, load_config
from pipelines.custody import private_dir
from pipelines.locks import work_lock
from pipelines.monthly import run_months
from pipelines.pseudonymise import create_key
from pipelines.truthcheck import MonthTruth, eligible_at, month_truth, precision_figures
from reports.modelquality import NOTES_MARKER, render
from synth.ward import generate_ward

YOUNGER = 60   # the min_age variant measured beside the configured one (issue 15)


def ward_config(config_file: Path | None, folder: Path) -> Config:
    return load_config(config_file, folder / "inbox", folder / "work", folder / "custody")


def prepared(cfg: Config, folder: Path, wanted: dict) -> str:
    """Generate the ward into `folder` unless its truth is there; 'generated' or 'reused'."""
    truth, descriptor = folder / "truth.csv", folder / "ward.json"
    if truth.exists():
        if descriptor.exists() and read_json(descriptor) != wanted:
            raise ValueError(f"{folder} holds another ward ({descriptor}: {read_json(descriptor)}, "
                             f"asked for {wanted}): choose another folder or --root")
        return "reused"
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"{folder} holds a ward whose generation did not finish (no truth.csv): "
                         "remove the folder and run again")
    private_dir(cfg.custody)
    create_key(cfg.key_file)
    audit.create_secret(cfg.audit_log)
    partial = folder / "truth.csv.partial"
    generate_ward(cfg.inbox, residents=wanted["residents"], months=wanted["months"], end_month=wanted["end_month"],
                  seed=wanted["seed"], messy=wanted["messy"], truth=partial)
    write_json(wanted, descriptor)
    partial.rename(truth)   # last: the truth's presence says the ward is complete
    return "generated"


def pending_months(cfg: Config) -> list[str]:
    """Months from the first without a completed run onward (a later month's champion depends
    on the earlier months' runs, so nothing after a gap is trusted)."""
    months = runs.inbox_months(cfg)
    first = next((i for i, m in enumerate(months) if runs.completed_run(cfg, m) is None), len(months))
    return months[first:]


def younger_list(cfg: Config, t: MonthTruth) -> dict | None:
    """A model's list at min_age 60 (same capacities): its precision, and its precision and
    recall among people aged 60–64 (never listed at the default min_age of 65). The model is the
    champion; a ward whose list a rule makes has none, and then the month's registered
    challenger is scored (named in `model`)."""
    if t.champion is not None:
        model, which = t.champion[0], f"champion v{t.champion[1]}"
    else:
        version = read_json(runs.run_dir(cfg, t.month) / "training.json").get("challenger_version")
        if version is None:
            return None
        model, which = registry.load_version(cfg, version), f"challenger v{version}"
    ok = eligible_at(cfg, t.month, t.features, YOUNGER)
    listed = ranked(t.features, ok, score_model(model, t.features), t.caps)
    return hits(listed, t.isolated) | {"min_age": YOUNGER, "model": which,
                                       "band": band_figures(t.features, listed, t.isolated, YOUNGER, 64)}


def ward_ablation(cfg: Config, t: MonthTruth, chosen: list[Variant] | None = None,
                  candidates: list[str] | None = None) -> list[dict]:
    """The ablation at the ward's final month (`chosen`: the variants; default every group off
    and every source toggled): every month's features read once, the labels of every source
    variant computed beside them (models/ablation.py)."""
    training, label_settings = cfg.settings["training"], cfg.settings["labels"]
    if candidates:   # fewer candidates: a faster ablation, said in the document
        training = training | {"candidates": candidates}
    settings = EvaluationSettings.of(cfg.settings)
    plan = training_plan(t.month, min(lake.ingested_months(cfg.lake)), label_settings["timespan_days"], training)
    if plan is None:
        return []
    outcomes = lake.outcomes_known_at(cfg.lake, t.month)
    chosen = variants(label_settings["sources"], list(GROUPS)) if chosen is None else chosen
    sources = {source_key(v.sources): list(v.sources) for v in chosen}

    def labelled(month: str, features: pd.DataFrame, policy=lambda ls: ls) -> dict[str, pd.DataFrame]:
        cohort = features.loc[features["age"] >= settings.min_age, "pid"]
        return {key: labels_for(policy(label_settings | {"sources": s}), outcomes, month, cohort)
                for key, s in sources.items()}

    union = pd.concat([union_rows(f, labelled(m, f))
                       for m in plan.train_months for f in [month_features(cfg.work, m)]], ignore_index=True)
    holdout = month_features(cfg.work, plan.holdout_month)
    # the holdout is judged as the train stage judges it (pipelines.training.evaluation_policy)
    holdout_labels = labelled(plan.holdout_month, holdout, evaluation_policy)
    return ablation(union, holdout, holdout_labels, plan, training, settings,
                    FinalMonth(t.features, t.ok, t.caps, t.isolated), chosen, labelled(plan.holdout_month, holdout))


def measured(cfg: Config, month: str, truth: Path, with_ablation: bool, candidates: list[str] | None = None) -> dict:
    """Every figure of one ward at `month` (counts and rates only)."""
    t = month_truth(cfg, month, truth)
    out = precision_figures(t, cfg.settings["baselines"])
    out["recall"] = group_recall(t.features, t.listed["pid"], t.isolated, cfg.get("prioritise", "min_age"),
                                 tuple(cfg.get("fairness", "ratio_bounds")))
    out["min_age_60"] = younger_list(cfg, t)
    if with_ablation:
        out["ablation"] = ward_ablation(cfg, t, candidates=candidates)
        out["ablation_candidates"] = candidates or list(cfg.settings["training"]["candidates"])
    return out


def command_line(args: argparse.Namespace) -> str:
    wards = ",".join(f"{n}:{s}:{f}" for n, s, f in args.ward_set)
    return (f"mimamori truth-check --wards --ward-set {wards} --months {args.months} --end-month {args.end_month} "
            f"--root {args.root}" + ("" if args.ablation else " --no-ablation")
            + (" --final-month-only" if args.final_month_only else "")
            + (f" --ablation-candidates {','.join(args.ablation_candidates)}" if args.ablation_candidates else ""))


def ward_set_check(args: argparse.Namespace) -> int:
    """Generate (if needed), run and measure every ward of the set; write the JSON and the doc."""
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for residents, seed, name in args.ward_set:
        folder = root / name
        cfg = ward_config(args.config, folder)
        wanted = {"residents": residents, "seed": seed, "months": args.months, "end_month": args.end_month,
                  "messy": True}
        started = time.monotonic()
        how = prepared(cfg, folder, wanted)
        with work_lock(cfg):
            months = pending_months(cfg)
            if args.final_month_only:   # the end month alone, as a ward's first trained month would run
                months = [m for m in months if m == args.end_month]
            print(f"{name}: {residents:,d} residents, seed {seed}: {how}; running {len(months)} month(s)", flush=True)
            if months:
                run_months(cfg, months, done=lambda m: print(f"  {m['month']} done", flush=True))
            ward = measured(cfg, args.end_month, folder / "truth.csv", args.ablation, args.ablation_candidates)
        ward |= {"ward": name, "residents_generated": residents, "seed": seed, "months": args.months,
                 "how": how, "seconds": round(time.monotonic() - started)}
        results.append(ward)
        print(f"{name}: list {ward['list']['isolated']}/{ward['list']['listed']}, "
              f"75+ alone {ward['alone_75']['isolated']}/{ward['alone_75']['listed']}, "
              f"ceiling {ward['ceiling']['isolated']}/{ward['ceiling']['listed']} ({ward['seconds']} s)", flush=True)
        # written after every ward: a long set that stops midway keeps what it measured
        _write(root, args, results)
    return 0


def _write(root: Path, args: argparse.Namespace, results: list[dict]) -> None:
    document = {"command": command_line(args), "month": args.end_month, "wards": results,
                "summary": aggregate(results)}
    write_json(json.loads(json.dumps(document, default=str)), root / "truth-check.json")
    docs = Path(args.docs)
    text = docs.read_text(encoding="utf-8") if docs.exists() else ""
    notes = text[text.index(NOTES_MARKER):] if NOTES_MARKER in text else NOTES_MARKER + "\n"
    docs.parent.mkdir(parents=True, exist_ok=True)
    write_text(render(document) + "\n" + notes, docs)
