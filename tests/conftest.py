"""Shared fixtures: a small synthetic ward run end to end once per test session.

The ward is small (6,000 residents, 14 months) but run through every real stage: synth,
ingest with GX, features, training with MLflow, SHAP, list, report. Thresholds for training
are lowered in the ward's mimamori.toml so that the model path is exercised at this size.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.config import Config, load_config
from pipelines.monthly import run_month
from pipelines.pseudonymise import create_key
from pipelines.synth import generate_ward

RESIDENTS, MONTHS, END, SEED = 6000, 14, "2026-10", 11
TEST_SETTINGS = """
[training]
min_labelled = 60
min_positive = 8
max_iter = 80
"""


@dataclass
class Ward:
    root: Path
    cfg: Config
    month: str
    truth: Path
    result: dict


def make_ward(root: Path, messy: bool, key_from: Path | None = None) -> Ward:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mimamori.toml").write_text(TEST_SETTINGS, encoding="utf-8")
    cfg = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={})
    if key_from is None:
        create_key(cfg.key_file)
    else:
        cfg.key_file.parent.mkdir(parents=True)
        shutil.copy(key_from, cfg.key_file)
    truth = root / "truth.csv"
    generate_ward(cfg.inbox, residents=RESIDENTS, months=MONTHS, end_month=END, seed=SEED, messy=messy, truth=truth)
    result = run_month(cfg, END)
    return Ward(root, cfg, END, truth, result)


@pytest.fixture(scope="session")
def ward(tmp_path_factory) -> Ward:
    return make_ward(tmp_path_factory.mktemp("clean"), messy=False)


@pytest.fixture(scope="session")
def messy_ward(tmp_path_factory, ward) -> Ward:
    return make_ward(tmp_path_factory.mktemp("messy"), messy=True, key_from=ward.cfg.key_file)
