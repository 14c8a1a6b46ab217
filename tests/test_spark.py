"""The Spark engine gives the local engine's bytes (issue 17).

One Spark session for the whole run (`spark` fixture, local[2], its scratch under pytest's tmp
path); every test here is marked `spark` (`pytest -m spark` runs them alone) and skips, saying
which, without pyspark (the [spark] extra) or Java 17. Under xdist they stay on one worker
(`xdist_group`, `make test` uses --dist loadgroup), so the run starts one JVM.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from contract.partitions import PidRange, bucket_of
from contract.storage import read_json
from pipelines.cli import main
from pipelines.config import load_config
from pipelines.monthly import run_month
from pipelines.parsing import parse_ids
from pipelines.pseudonymise import pseudonym, pseudonymise
from synth.ward import generate_ward
from tests.conftest import write_test_key

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]


def missing_reason() -> str | None:
    """Why the Spark tests cannot run here, or None."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed: pip install -e '.[dev]' (or '.[spark]'), as `make test` does"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin", "java").exists()):
        return "java is not installed: Spark 4.3 needs Java 17 (apt-get install openjdk-17-jre-headless; .ci/run does)"
    return None


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    # imported once the skip is decided: pyspark is an optional extra
    from pipelines.spark import spark_session
    session = spark_session("local[2]", scratch=tmp_path_factory.mktemp("spark-scratch"))
    yield session
    session.stop()


# --- pseudonyms: Spark's own hmac() is the ingest's HMAC ------------------------------------

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _delivered_ids(count: int, seed: int) -> list[str]:
    """宛名番号 as extracts deliver them: leading zeros, full-width digits, padding, 1–15 digits."""
    rng = random.Random(seed)
    ids = ["0", "00", "0000000001", "999999999999999", "０００１２３", " 0042 ", "　１２３４５　"]
    while len(ids) < count:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 15)))
        form = rng.random()
        ids.append(digits.translate(FULL_WIDTH) if form < 0.3 else f" {digits}\u3000" if form < 0.4 else digits)
    return ids


@pytest.mark.parametrize("key", [bytes(32), bytes.fromhex("ff" * 32), hashlib.sha256(b"mimamori spark test").digest()],
                         ids=["zero-key", "ff-key", "hashed-key"])
def test_spark_hmac_gives_the_ingest_pseudonyms_byte_for_byte(spark, key, capsys):
    from pipelines.spark import spark_pseudonyms

    delivered = _delivered_ids(400, seed=key[0])
    normalised = parse_ids(pd.Series(delivered, dtype="str"))   # as the contract reads them
    assert normalised.notna().all() and normalised.str.fullmatch(r"[0-9]+").all()
    assert normalised[:6].tolist() == ["0", "00", "0000000001", "999999999999999", "000123", "0042"]
    frame = spark.createDataFrame(pd.DataFrame({"resident_id": normalised}), "resident_id string")
    for kind in ("resident", "household"):
        got = spark_pseudonyms(frame, "resident_id", key, kind).toPandas()
        want = pseudonymise(normalised, key, kind)                # the ingest's vectorised path
        assert got["resident_id"].tolist() == normalised.tolist()
        assert got["pid"].tolist() == want.tolist()
        assert got["pid"].tolist() == [pseudonym(key, kind, i) for i in normalised]
    # the key is data, not a literal: no query plan (explain, event log, UI) shows it
    spark_pseudonyms(frame, "resident_id", key, "resident").explain(mode="extended")
    plan = capsys.readouterr().out
    assert "hmac" in plan.lower() and key.hex() not in plan.lower()


# --- partition edges: a pid on a boundary lands in the same bucket on both engines ----------

def _edge_pids(count: int) -> list[str]:
    pids = ["0" * 32, "f" * 32]
    for i in range(1, count):
        low = PidRange(i, count).bounds()[0]
        pids += [low + "0" * 24, f"{int(low, 16) - 1:08x}" + "f" * 24, low + "f" * 24]
    return pids


@pytest.mark.parametrize("count", [2, 3, 7, 16, 1000])
def test_a_pid_on_a_range_boundary_lands_in_the_same_bucket_on_both_engines(spark, count):
    from pipelines.spark import SparkEngine

    pids = _edge_pids(count)
    # the local engine's partition: which PidRange's mask (its bounds) holds each pid
    held = np.array([PidRange(i, count).mask(pa.array(pids)).to_numpy(zero_copy_only=False) for i in range(count)])
    assert (held.sum(axis=0) == 1).all()   # the ranges cut the space exactly: one range per pid
    local = dict(zip(pids, held.argmax(axis=0).tolist()))
    got = SparkEngine(spark).buckets(pd.Series(pids), count).toPandas()
    assert dict(zip(got["pid"], got["bucket"].tolist())) == local
    assert {pid: bucket_of(pid, count) for pid in pids} == local


# --- parity: the same wards run by both engines write the same bytes -----------------------

# Three messy wards of other sizes and seeds, small enough for CI; the session ward's
# model-served month is checked on Spark below (test_a_model_month_...).
WARDS = {"kita": (1500, 8, 5), "minami": (600, 5, 11), "nishi": (800, 5, 23)}   # residents, months, seed
END = "2026-10"
PARITY_SETTINGS = """
[training]
min_labelled = 60
min_positive = 8
max_iter = 80
"""


def _installation(root: Path, inboxes: Path) -> Path:
    """A mimamori.toml serving the three wards, each in its own zones under `root`, reading the
    shared synthetic inboxes (both engines' installations read the same extracts)."""
    root.mkdir(parents=True)
    tables = "".join(f'[wards.{w}]\ninbox = "{inboxes / w}"\nwork = "{w}/work"\ncustody = "{w}/custody"\n\n'
                     for w in WARDS)
    (root / "mimamori.toml").write_text(PARITY_SETTINGS + tables, encoding="utf-8")
    for ward in WARDS:
        cfg = load_config(root / "mimamori.toml", ward=ward, environ={})
        write_test_key(cfg.key_file)
        cfg.custody.chmod(0o700)   # the CLI refuses a custody folder others can read
    return root / "mimamori.toml"


def _digests(cfg) -> dict[str, str]:
    """SHA-256 of every Parquet file the batch wrote (lake, quarantines, features, scores, list,
    explanations), in the work zone and the custody zone, and of the lake's delivery records."""
    files = [p for p in sorted(cfg.work.rglob("*.parquet")) if "mlflow" not in p.parts]
    files += sorted((cfg.lake / "_deliveries").glob("*.json")) + sorted(cfg.custody_quarantine.rglob("*.parquet"))
    return {str(p.relative_to(cfg.work.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _released(cfg, month: str) -> tuple[bytes, dict[str, list[tuple]]]:
    """The coordinator's release of `month` after two signed approvals: the CSV's bytes and every
    sheet's cells (the workbook's own zip stamps differ from one save to the next)."""
    from openpyxl import load_workbook

    from pipelines.release import release
    from tests.approving import approve_as

    approve_as(cfg, month, "A", "個人情報保護法第69条第2項第2号")
    approve_as(cfg, month, "B", "社会福祉法第106条の6 支援会議")
    release(cfg, month)
    folder = cfg.releases_dir / month
    book = load_workbook(folder / "outreach.xlsx")
    return (folder / "outreach.csv").read_bytes(), {ws.title: list(ws.iter_rows(values_only=True)) for ws in book}


def test_three_wards_run_by_the_spark_engine_write_the_local_engines_bytes_and_sheets(spark, tmp_path):
    inboxes = tmp_path / "inboxes"
    for ward, (residents, months, seed) in WARDS.items():
        generate_ward(inboxes / ward, residents=residents, months=months, end_month=END, seed=seed, messy=True)
    local_toml, spark_toml = _installation(tmp_path / "local", inboxes), _installation(tmp_path / "spark", inboxes)
    # as an operator runs them: every ward one after another, on each engine
    assert main(["--config", str(local_toml), "run", "--month", END, "--all-wards", "--engine", "local"]) == 0
    assert main(["--config", str(spark_toml), "run", "--month", END, "--all-wards",
                 "--engine", "spark", "--master", "local[2]"]) == 0   # the test run's own session (getOrCreate)
    for ward in WARDS:
        local_cfg, spark_cfg = (load_config(t, ward=ward, environ={}) for t in (local_toml, spark_toml))
        local, on_spark = (read_json(c.runs / END / "manifest.json") for c in (local_cfg, spark_cfg))
        assert on_spark["status"] == local["status"] == "done"
        assert on_spark["config_hash"] == local["config_hash"]     # the engine is not a result setting
        ours, theirs = _digests(local_cfg), _digests(spark_cfg)
        assert {f"work/features/{END}.parquet", f"work/runs/{END}/scores.parquet", f"work/runs/{END}/list.parquet",
                f"work/lake/residents/{END}.parquet", f"work/lake/_deliveries/{END}.json"} <= set(ours), ward
        assert ours == theirs, ward
        for stage in ("train", "prioritise"):
            assert on_spark["stages"][stage]["status"] == local["stages"][stage]["status"]
        # the tables are the same although Spark cut the people into its own pid ranges (2 per core)
        local_meta, spark_meta = (read_json(c.features_dir / f"{END}.json") for c in (local_cfg, spark_cfg))
        assert (local_meta["partitions"], spark_meta["partitions"]) == (1, 4)
        assert {**spark_meta, "partitions": 1} == local_meta
        listed = pd.read_parquet(spark_cfg.runs / END / "list.parquet")
        assert len(listed) == local["stages"]["prioritise"]["listed"] > 0
        # the released sheets, names and addresses from the same extract, are the same
        assert _released(spark_cfg, END) == _released(local_cfg, END), ward
    sizes = {w: int(read_json(load_config(spark_toml, ward=w, environ={}).lake / "_deliveries" / f"{END}.json")
                    ["sources"]["residents"]["accepted"]) for w in WARDS}
    assert len(set(sizes.values())) == 3   # three wards, not one ward three times


def test_the_engine_is_chosen_in_the_config_or_on_the_command_line_and_changes_no_config_hash(spark, tmp_path):
    from pipelines.monthly import LocalEngine, engine_for
    from pipelines.spark import SparkEngine

    cfg = load_config(None, tmp_path / "i", tmp_path / "w", tmp_path / "c", environ={})
    assert cfg.settings["engine"] == {"name": "local", "master": "local[2]"}   # pipelines/defaults.toml
    assert isinstance(engine_for(cfg), LocalEngine)
    on_spark = cfg.with_settings("engine", name="spark", master=None)          # None: --master not given
    assert on_spark.settings["engine"] == {"name": "spark", "master": "local[2]"}
    assert on_spark.config_hash == cfg.config_hash
    engine = engine_for(on_spark)
    assert isinstance(engine, SparkEngine) and engine.session is spark and engine.slots == 2
    with pytest.raises(ValueError, match="must be one of local, spark, not 'dask'"):
        engine_for(cfg.with_settings("engine", name="dask"))


def test_a_model_month_scores_and_explains_on_spark_to_the_same_bytes(spark, ward, tmp_path):
    """The session ward's month is served by a model (SHAP reasons, the explanations table):
    rerun on Spark with its feature tables deleted, so that features, scores and reasons are
    all Spark's, it writes the local run's bytes."""
    assert ward.result["stages"]["train"]["mode"] == "model"
    root = tmp_path / "ward"
    shutil.copytree(ward.root, root, symlinks=True)
    cfg = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={})
    shutil.rmtree(cfg.features_dir)
    before = _digests(ward.cfg)
    result = run_month(cfg.with_settings("engine", name="spark"), ward.month)
    assert result["stages"]["train"]["mode"] == "model" and result["stages"]["explain"]["explained"] > 0
    assert (cfg.work / "runs" / ward.month / "explanations.parquet").exists()
    assert _digests(cfg) == before
    rebuilt = sorted(cfg.features_dir.glob("*.json"))
    assert rebuilt and all(read_json(meta)["partitions"] == 4 for meta in rebuilt)   # by Spark's 4 ranges


# --- the several-ward bench: both engines, the same bytes, memory below the driver ----------

def test_the_wards_bench_times_both_engines_stage_by_stage_with_the_executors_memory(spark, tmp_path):
    from pipelines.bench import STAGES, write_results
    from pipelines.bench_wards import run_wards_bench

    result = run_wards_bench(tmp_path / "bench", wards=2, residents=200, months=2, seed=3)
    assert result["same_bytes"] is True
    for engine in ("local", "spark"):
        for phase, months in (("backfill", 2), ("incremental", 2)):   # one month of each of the 2 wards
            p = result["engines"][engine][phase]
            assert p["months"] == months and set(p["stages"]) == set(STAGES)
            # each figure is rounded to 0.01 s on its own: their sum may pass the rounded total by that much each
            assert sum(s["seconds"] for s in p["stages"].values()) <= p["seconds"] + 0.01 * len(p["stages"])
            assert p["peak_mb"]["driver"] > 0
    spark_peak = result["engines"]["spark"]["backfill"]["peak_mb"]
    # Spark's work happens below the driver: its JVM and the Python workers the JVM forks
    assert spark_peak["jvm"] > 0 and spark_peak["python_workers"] > 0
    assert spark_peak["executors"] >= max(spark_peak["jvm"], spark_peak["python_workers"])
    docs = tmp_path / "benchmarks.md"
    path = write_results(result, tmp_path / "results", docs)
    text = docs.read_text(encoding="utf-8")
    assert path.name.startswith("wards-2x200x2-") and "2 wards × 200 residents × 2 months, local and Spark local[2]" in text
    assert "the same bytes on both engines: yes" in text
    spark_row = next(line for line in text.splitlines() if line.startswith("| spark | backfill |"))
    assert spark_row.split(" | ")[3] == str(result["engines"]["spark"]["backfill"]["seconds"])
