"""`mimamori bench --engine spark --wards W`: W synthetic wards through every stage, first by the
local engine one ward after another, then by the Spark engine (one session, `local[2]` by
default), side by side: wall seconds per stage summed over wards and months, and peak memory of
the driver and of what works for it (the local engine's ingest-ahead helper; Spark's JVM and
its Python workers), sampled from /proc. Each ward is a backfill of every month but the last,
then the last month alone, as `mimamori bench` does for one ward. Generation is not timed, nor
the leak guard `mimamori run` ends with (it is the same on both engines; see docs/benchmarks.md).
bench.write_results keeps them as bench/results/wards-<W>x<N>x<M>-<date>.json and in docs/benchmarks.md.
"""
from __future__ import annotations

import hashlib
import shutil
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Iterator

from pipelines.bench import _machine, _stage_totals
from pipelines.catalog.runs import inbox_months
from pipelines.config import load_config
from pipelines.monthly import engine_for, run_months
from pipelines.pseudonymise import create_key
from pipelines.resources import descendants_rss, rss_bytes, sampling
from synth.ward import generate_ward

MB = 2**20


def ward_names(count: int) -> list[str]:
    return [f"ward-{i + 1:02d}" for i in range(count)]


def installation(root: Path, inboxes: Path, wards: list[str], keys_from: Path | None = None) -> Path:
    """A mimamori.toml serving `wards`, zones under `root`, reading the shared inboxes; each ward's
    key made, or copied from the installation `keys_from` (so that both engines' outputs can be
    compared byte for byte)."""
    root.mkdir(parents=True)
    tables = "".join(f'[wards.{w}]\ninbox = "{inboxes / w}"\nwork = "{w}/work"\ncustody = "{w}/custody"\n\n'
                     for w in wards)
    path = root / "mimamori.toml"
    path.write_text(tables, encoding="utf-8")
    for ward in wards:
        key_file = load_config(path, ward=ward, environ={}).key_file
        create_key(key_file)
        if keys_from is not None:   # the same key as the other engine's ward (made 0600 above)
            key_file.write_bytes(load_config(keys_from, ward=ward, environ={}).key_file.read_bytes())
    return path


@contextmanager
def memory_peaks(interval: float = 0.1) -> Iterator[dict]:
    """Peak RSS (MB) while the block runs: of this process (the driver), of the JVM processes
    below it, of the Python processes below it (Spark's workers, or the ingest-ahead helper),
    and of everything below it together (the executors, on a local master)."""
    peaks = {"driver": 0.0, "jvm": 0.0, "python_workers": 0.0, "executors": 0.0}

    def sample() -> None:
        below = descendants_rss()
        jvm = sum(v for k, v in below.items() if k == "java")
        workers = sum(v for k, v in below.items() if k.startswith("python"))
        for name, value in (("driver", rss_bytes()), ("jvm", jvm), ("python_workers", workers),
                            ("executors", sum(below.values()))):
            peaks[name] = max(peaks[name], value / MB)

    with sampling(sample, interval):
        yield peaks
    for name in peaks:
        peaks[name] = round(peaks[name], 1)


def _phase(config: Path, wards: list[str], months_of, engine: str, master: str) -> dict:
    """Every ward's `months_of(cfg)` run on `engine`, one ward after another."""
    manifests = []
    started = time.perf_counter()
    with memory_peaks() as peaks:
        for ward in wards:
            cfg = load_config(config, ward=ward, environ={}).with_settings("engine", name=engine, master=master)
            manifests += run_months(cfg, months_of(cfg))
    return {"months": len(manifests), "seconds": round(time.perf_counter() - started, 1),
            "peak_mb": peaks, "stages": _stage_totals(manifests)}


def _outputs(config: Path, ward: str) -> dict[str, str]:
    """SHA-256 of a ward's lake, feature, score and list files (the parity the tests assert)."""
    work = load_config(config, ward=ward, environ={}).work
    return {str(p.relative_to(work)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(work.rglob("*.parquet")) if "mlflow" not in p.parts}


def run_wards_bench(root: Path, wards: int, residents: int, months: int, seed: int = 1,
                    engines: tuple[str, ...] = ("local", "spark"), master: str = "local[2]",
                    end_month: str = "2026-10") -> dict:
    """Generate `wards` wards (seeds seed, seed+1, …) and run them on each of `engines`."""
    if root.exists():
        shutil.rmtree(root)
    names = ward_names(wards)
    started = time.perf_counter()
    for i, ward in enumerate(names):
        generate_ward(root / "inboxes" / ward, residents=residents, months=months, end_month=end_month, seed=seed + i)
    generation = round(time.perf_counter() - started, 1)
    result = {"kind": "wards", "wards": wards, "residents": residents, "months": months, "seed": seed,
              "master": master, "date": date.today().isoformat(), "generation_seconds": generation,
              "machine": _machine(), "engines": {},
              "command": f"mimamori bench --engine {engines[-1]} --wards {wards} --residents {residents} "
                         f"--months {months} --seed {seed}"}
    configs = {}
    for engine in engines:
        first = next(iter(configs.values()), None)
        configs[engine] = config = installation(root / engine, root / "inboxes", names, keys_from=first)
        timings: dict = {}
        if engine == "spark":   # the session starts once, through the engine switch, and is timed apart
            begun = time.perf_counter()
            engine_for(load_config(config, ward=names[0], environ={}).with_settings("engine", name=engine, master=master))
            timings["session_seconds"] = round(time.perf_counter() - begun, 1)
        timings["backfill"] = _phase(config, names, lambda cfg: inbox_months(cfg)[:-1], engine, master)
        timings["incremental"] = _phase(config, names, lambda cfg: inbox_months(cfg)[-1:], engine, master)
        result["engines"][engine] = timings
    if len(configs) > 1:
        first, *others = configs.values()
        result["same_bytes"] = all(_outputs(first, w) == _outputs(other, w) for other in others for w in names)
    return result
