"""`mimamori bench`: time a synthetic ward's full backfill and one incremental month, stage by stage.

Generation is not timed. Each month's manifest gives wall time, CPU time and peak RSS per
stage; the floor is the time to read every input file once with pyarrow (the least any
pipeline over these files could spend). Results go to bench/results/<N>-<date>.json and the
table in docs/benchmarks.md is rebuilt from every result file.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections import defaultdict
from datetime import date
from importlib import metadata
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.config import load_config
from pipelines.leakscan import scan
from pipelines.catalog import runs
from pipelines.catalog.runs import inbox_months
from pipelines.monthly import run_months
from pipelines.pseudonymise import create_key
from pipelines.resources import peak_rss
from synth.ward import generate_ward
from contract.storage import write_json, write_text

STAGES = ["ingest", "features", "validate", "train", "score", "prioritise", "explain", "report"]
VERSIONS = ["pandas", "pyarrow", "numpy", "scikit-learn", "great-expectations", "mlflow", "shap"]


def read_floor(month_dirs: list[Path]) -> float:
    """Seconds to read every delivered file once with pyarrow's multithreaded CSV reader."""
    start = time.perf_counter()
    for folder in month_dirs:
        for path in sorted(folder.glob("*.csv")):
            pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 24))
    return round(time.perf_counter() - start, 2)


def _read_parquet_seconds(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        if path.exists():
            pq.read_table(path)
    return round(time.perf_counter() - start, 2)


def stage_floors(cfg, phase_months: list[str], history: list[str]) -> dict[str, float]:
    """Per stage, seconds to read its inputs once with pyarrow (measured after the phase ran):
    ingest the month's extracts; features the lake files up to the phase's last month; train the
    feature tables of its history; the other stages the phase's feature tables."""
    last = phase_months[-1]
    lake_files = [f for f in sorted(cfg.lake.glob("*/*.parquet")) if not f.parent.name.startswith("_")
                  and f.stem <= last]
    features = [runs.features_file(cfg, m) for m in phase_months]
    per_month = _read_parquet_seconds(features)
    return {"ingest": read_floor([runs.inbox_dir(cfg, m) for m in phase_months]),
            "features": _read_parquet_seconds(lake_files),
            "validate": per_month,
            "train": _read_parquet_seconds([runs.features_file(cfg, m) for m in history if m <= last]),
            "score": per_month, "prioritise": per_month, "explain": per_month, "report": per_month}


def _machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory, 1),
            "python": platform.python_version(),
            "versions": {name: metadata.version(name) for name in VERSIONS}}


def _stage_totals(manifests: list[dict]) -> dict:
    """Per stage, seconds summed over the months and the highest peak RSS. Months ingested
    ahead by the helper process count under ingest, though they overlapped other stages."""
    totals: dict = defaultdict(lambda: {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mb": 0.0})
    for manifest in manifests:
        for name, info in manifest["stages"].items():
            for part in [info, *info.get("ahead", {}).values()]:
                t = totals[name]
                t["seconds"] = round(t["seconds"] + (part.get("seconds") or 0.0), 2)
                t["cpu_seconds"] = round(t["cpu_seconds"] + (part.get("cpu_seconds") or 0.0), 2)
                t["peak_rss_mb"] = max(t["peak_rss_mb"], part.get("peak_rss_mb") or 0.0)
    return {name: totals[name] for name in STAGES if name in totals}


def _cpu_with_children() -> float:
    """CPU seconds of this process and of its finished children (the ingest-ahead helper)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_bench(root: Path, residents: int, months: int, seed: int = 1, end_month: str = "2026-10") -> dict:
    if root.exists():
        shutil.rmtree(root)
    cfg = load_config(None, root / "inbox", root / "work", root / "custody", environ={})
    create_key(cfg.key_file)
    started = time.perf_counter()
    generate_ward(cfg.inbox, residents=residents, months=months, end_month=end_month, seed=seed)
    generation = round(time.perf_counter() - started, 1)
    all_months = inbox_months(cfg)
    backfill_months, incremental = all_months[:-1], all_months[-1]

    def timed(months_to_run: list[str]) -> dict:
        wall, cpu = time.perf_counter(), _cpu_with_children()
        with peak_rss(children=True) as memory:   # with the ingest-ahead helper's memory
            manifests = run_months(cfg, months_to_run)
            # `mimamori run` ends with the leak guard, once per invocation; timed apart from the
            # stages, with its needle cache in the custody zone.
            scan_started = time.perf_counter()
            scan(cfg.inbox, [cfg.work], cache_dir=cfg.leakscan_cache, changed_only=True)
            scan_seconds = round(time.perf_counter() - scan_started, 1)
        seconds = round(time.perf_counter() - wall, 1)
        cpu_seconds = round(_cpu_with_children() - cpu, 1)
        return {"months": len(months_to_run), "seconds": seconds, "cpu_seconds": cpu_seconds,
                "peak_rss_mb": memory["peak_mb"],
                "floor_seconds": read_floor([runs.inbox_dir(cfg, m) for m in months_to_run]),
                "stage_floors": stage_floors(cfg, months_to_run, all_months),
                "stages": _stage_totals(manifests), "leakscan_seconds": scan_seconds}

    result = {"residents": residents, "months": months, "seed": seed, "date": date.today().isoformat(),
              "generation_seconds": generation, "machine": _machine(),
              "command": f"mimamori bench --residents {residents} --months {months} --seed {seed}",
              "backfill": timed(backfill_months), "incremental": timed([incremental])}
    return result


# Text below this line in docs/benchmarks.md (measurements made outside `mimamori bench`,
# notes on bottlenecks) is kept when the tables above it are rebuilt.
NOTES_MARKER = "<!-- notes: kept when the tables are rebuilt -->"


def write_results(result: dict, results_dir: Path, docs: Path) -> Path:
    """Keep one result (a ward's, or several wards' on each engine: pipelines/bench_wards.py) and
    rebuild docs/benchmarks.md from every kept result."""
    name = (f"wards-{result['wards']}x{result['residents']}x{result['months']}" if result.get("kind") == "wards"
            else str(result["residents"]))
    path = results_dir / f"{name}-{result['date']}.json"
    write_json(result, path)
    text = docs.read_text(encoding="utf-8") if docs.exists() else ""
    notes = text[text.index(NOTES_MARKER):] if NOTES_MARKER in text else ""
    write_text(render_table(sorted(results_dir.glob("*.json"))) + ("\n" + notes if notes else ""), docs)
    return path


def render_table(paths: list[Path]) -> str:
    lines = ["# Benchmarks", "",
             "Made by `mimamori bench` (see `pipelines/bench.py`); rebuilt from `bench/results/*.json` on every run.",
             "Wall seconds per stage, summed over the months of the phase; peak RSS is the highest of any stage.",
             "The floor is the time to read every input file of the phase once with pyarrow; the ↳ floor row",
             "gives it per stage (each stage's own inputs read once: extracts, lake files, feature tables).",
             "The leak scan is the guard at the end of `mimamori run` (files new or changed since its last scan).", ""]
    for path in paths:
        r = json.loads(path.read_text(encoding="utf-8"))
        if r.get("kind") == "wards":
            lines += wards_table(r)
            continue
        lines += [f"## {r['residents']:,} residents × {r['months']} months ({r['date']})", "", _machine_line(r),
                  f"(generation, not timed: {r['generation_seconds']} s)", "",
                  "| phase | months | wall s | CPU s | peak RSS MB | floor s | " + " | ".join(STAGES) + " | leak scan |",
                  "|---|---|---|---|---|---|" + "---|" * (len(STAGES) + 1)]
        for phase in ("backfill", "incremental"):
            p = r[phase]
            stages = " | ".join(f"{p['stages'].get(s, {}).get('seconds', 0):.1f}" for s in STAGES)
            scanned = f"{p['leakscan_seconds']:.1f}" if "leakscan_seconds" in p else "–"  # older results: not timed
            lines.append(f"| {phase} | {p['months']} | {p['seconds']} | {p['cpu_seconds']} | {p['peak_rss_mb']} | "
                         f"{p['floor_seconds']} | {stages} | {scanned} |")
            if "stage_floors" in p:   # reading each stage's inputs once with pyarrow
                floors = " | ".join(f"{p['stage_floors'].get(s, 0):.1f}" for s in STAGES)
                lines.append(f"| ↳ floor | | | | | | {floors} | |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _machine_line(r: dict) -> str:
    m = r["machine"]
    return (f"`{r['command']}` — {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}, Python {m['python']}; "
            + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))


def wards_table(r: dict) -> list[str]:
    """Several wards on each engine (pipelines/bench_wards.py): a row per engine and phase."""
    same = {True: "yes", False: "NO"}.get(r.get("same_bytes"), "–")
    lines = [f"## {r['wards']} wards × {r['residents']:,} residents × {r['months']} months, local and Spark "
             f"{r['master']} ({r['date']})", "", _machine_line(r),
             f"(generation, not timed: {r['generation_seconds']} s; lake, features, scores and lists the same bytes "
             f"on both engines: {same})", "",
             "Local: the wards one after another in one process (with its ingest-ahead helper). Spark: one session, "
             "the wards one after another, each stage's tasks spread over the executors. Peak RSS in MB: the driver "
             "process; below it, the JVM and the Python workers (Spark), or the ingest-ahead helper (local).", "",
             "| engine | phase | months | wall s | driver MB | JVM MB | Python workers MB | below driver MB | "
             + " | ".join(STAGES) + " |",
             "|---|---|---|---|---|---|---|---|" + "---|" * len(STAGES)]
    for engine, timings in r["engines"].items():
        for phase in ("backfill", "incremental"):
            p, peak = timings[phase], timings[phase]["peak_mb"]
            stages = " | ".join(f"{p['stages'].get(s, {}).get('seconds', 0):.1f}" for s in STAGES)
            lines.append(f"| {engine} | {phase} | {p['months']} | {p['seconds']} | {peak['driver']} | {peak['jvm']} | "
                         f"{peak['python_workers']} | {peak['executors']} | {stages} |")
        if "session_seconds" in timings:
            lines.append("| " + " | ".join([engine, "session start", "", str(timings["session_seconds"])]
                                           + [""] * (4 + len(STAGES))) + " |")
    return lines + [""]


def summary_lines(result: dict) -> list[str]:
    """What `mimamori bench` prints of a result: each phase's months, wall time and peak memory."""
    if result.get("kind") == "wards":
        return [f"{engine} {phase}: {timings[phase]['months']} ward-months in {timings[phase]['seconds']} s, "
                f"peak MB {timings[phase]['peak_mb']}"
                for engine, timings in result["engines"].items() for phase in ("backfill", "incremental")]
    return [f"{phase}: {p['months']} months in {p['seconds']} s (CPU {p['cpu_seconds']} s), "
            f"peak RSS {p['peak_rss_mb']} MB, floor {p['floor_seconds']} s"
            for phase, p in ((phase, result[phase]) for phase in ("backfill", "incremental"))]
