"""Shared fixtures: a small synthetic ward run end to end once per test session.

The ward is small (6,000 residents, 14 months) but run through every real stage: synth,
ingest with GX, features, training with MLflow, SHAP, list, report. Thresholds for training
are lowered in the ward's mimamori.toml so that the model path is exercised at this size.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from pipelines.browser import chromium_browser, missing_reason
from pipelines.config import Config, load_config
from pipelines.monthly import run_month
from pipelines.pseudonymise import create_key
from synth.ward import generate_ward

# CI explores the same generated cases on every run (a red CI must be reproducible by anyone);
# a developer's run explores new ones each time, and hypothesis keeps any failure it finds.
# No per-example deadline anywhere: time is measured in benchmarks, not tests, and on a shared
# 2-core machine a pandas call can take 200 ms under load without anything being wrong.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

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


@pytest.fixture(autouse=True)
def _keep_umask():
    """The CLI's main() sets umask 077 for its process; every test gets the test process's own back."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


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


def _shared(tmp_path_factory) -> Path:
    """One folder for the whole test session: under pytest-xdist every worker has its own
    basetemp below a common parent, so the session wards are built once, not once per worker."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "session-wards"


def _build(shared: Path, name: str, messy: bool, wait: bool) -> bool:
    """Build the named ward into `shared` unless it is built; False if another worker is
    building it and `wait` is False. Built wards are marked complete only once run through."""
    shared.mkdir(parents=True, exist_ok=True)
    with (shared / f"{name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        if not (shared / f"{name}.done").exists():
            shutil.rmtree(shared / name, ignore_errors=True)   # a build a crashed worker left
            built = make_ward(shared / name, messy, key_from=_key(shared))
            # run_month's result as returned, in stage order (manifest.json sorts its keys)
            (shared / f"{name}.done").write_text(json.dumps(built.result, default=str), encoding="utf-8")
    return True


# The session's one key, fixed so that the golden run (tests/golden.py) can compare digests of
# pseudonymous outputs across runs and code versions. A test key, not a secret.
GOLDEN_KEY = hashlib.sha256(b"mimamori golden test key").hexdigest()


def write_test_key(path: Path) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(GOLDEN_KEY + "\n")
    return path


def _key(shared: Path) -> Path:
    """The session's one key: the clean and messy wards must share it (same pseudonyms)."""
    with (shared / "key.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = shared / "key" / "hmac.key"
        if not path.exists():
            write_test_key(path)
    return path


def build_golden_ward(into: Path) -> Path:
    """The golden run's ward (the session's messy ward under the fixed key), built from scratch."""
    key = write_test_key(into / "key" / "hmac.key")
    return make_ward(into / "messy", messy=True, key_from=key).root


def _copy(shared: Path, name: str, into: Path) -> Ward:
    """This worker's own copy of a built ward, so no test races another worker's on its files.
    (MLflow's artifact location still names the shared copy, which nobody writes after the build.)"""
    root = into / name
    shutil.copytree(shared / name, root, symlinks=True)
    cfg = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={})
    return Ward(root, cfg, END, root / "truth.csv", json.loads((shared / f"{name}.done").read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def ward(tmp_path_factory) -> Ward:
    shared = _shared(tmp_path_factory)
    if not _build(shared, "clean", messy=False, wait=False):
        # Another worker is building the clean ward: build its messy twin meanwhile, so the
        # two cores build both at once.
        _build(shared, "messy", messy=True, wait=False)
        _build(shared, "clean", messy=False, wait=True)
    return _copy(shared, "clean", tmp_path_factory.mktemp("ward"))


@pytest.fixture(scope="session")
def messy_ward(tmp_path_factory, ward) -> Ward:
    shared = _shared(tmp_path_factory)
    _build(shared, "messy", messy=True, wait=True)
    return _copy(shared, "messy", tmp_path_factory.mktemp("messy-ward"))


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium per test process (pipelines/browser.py: the project's one launch),
    shared by every browser test; open pages with `pipelines.browser.offline_page(browser)`.
    Skips, saying why, only where Chromium or Playwright is not installed."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with chromium_browser() as launched:
        yield launched
