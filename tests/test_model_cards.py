"""Model cards are immutable records of one version (issue 14, item 1): each card is written when
its version is registered, from that version's own training record, says what MLflow says of
that version, is attached to it (artifact, SHA-256 tag, description), and is never rewritten."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from contract.storage import DataDamaged
from models.metrics import wilson
from pipelines.catalog import registry, runs
from pipelines.config import load_config
from pipelines.monthly import run_month

EARLIER = "2026-09"   # a month the session ward has not run: registers a second version
WORDS = {"precision_at_k": "precision@k", "average_precision": "average precision"}


@pytest.fixture(scope="module")
def two_versions(ward, tmp_path_factory):
    """A copy of the session ward (v1 registered in 2026-10) that then runs 2026-09 (v2) and
    reruns 2026-10; every card's bytes after each step."""
    root = tmp_path_factory.mktemp("cards") / "ward"
    shutil.copytree(ward.root, root, symlinks=True)
    cfg = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={})
    v1 = _version_of_month(cfg, ward.month)
    cards = [_cards(cfg)]
    earlier = run_month(cfg, EARLIER)
    cards.append(_cards(cfg))
    rerun = run_month(cfg, ward.month)
    cards.append(_cards(cfg))
    return cfg, v1, cards, earlier, rerun


def _cards(cfg) -> dict[str, bytes]:
    """Every card file's bytes, by version folder and file name."""
    return {f"{p.parent.name}/{p.name}": p.read_bytes() for p in sorted((cfg.work / "model_cards").glob("v*/*"))}


def _version_of_month(cfg, month: str) -> str:
    versions = registry.client(cfg).search_model_versions(
        f"name='{registry.REGISTERED_MODEL}' and tag.month='{month}'")
    assert len(versions) == 1, [v.version for v in versions]
    return str(versions[0].version)


def _field(markdown: str, name: str) -> str:
    match = re.search(rf"^- \*\*{re.escape(name)}:\*\* (.*)$", markdown, re.M)
    assert match, name
    return match.group(1)


def test_each_card_states_its_own_versions_training_as_mlflow_records_it(two_versions):
    cfg, v1, _, _, _ = two_versions
    client = registry.client(cfg)
    v2 = _version_of_month(cfg, EARLIER)
    assert v2 != v1
    for version in (v1, v2):
        mv = client.get_model_version(registry.REGISTERED_MODEL, version)
        run = client.get_run(mv.run_id)
        params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
        md = runs.card_paths(cfg, version)[0].read_text(encoding="utf-8")
        assert md.startswith(f"# Model card: mimamori-risk v{version} (trained in batch {mv.tags['month']})")
        assert _field(md, "Batch month it was trained in") == mv.tags["month"]
        assert mv.run_id in _field(md, "Model")
        assert _field(md, "Candidate kind").startswith(tags["candidate"] + ":")
        assert _field(md, "Promotion criterion") == f"{WORDS[tags['criterion']]} on the holdout"
        assert _field(md, "Status at registration").startswith(
            "promoted to champion" if mv.tags["promoted"] == "true" else "registered but not promoted")
        window = _field(md, "Training window")
        assert f"evaluated on as-of months {params['train_months'].replace(',', ', ')} " in window
        assert f"holdout as-of month {params['holdout_month']};" in window
        assert f"calibration: {params['calibration']}" in _field(md, "Model output")
        shown = re.search(r"training months: (\S+) labelled rows \((\S+) positive\); holdout: (\S+) \((\S+) positive\)",
                          _field(md, "Labels")).groups()
        logged = [int(metrics[f"labels_{k}"]) for k in ("train_labelled", "train_positive", "holdout_labelled",
                                                           "holdout_positive")]
        for text, value in zip(shown, logged):
            # a count is shown as MLflow logged it, or withheld by disclosure control (small or complementary)
            assert text == str(value) or (text in ("x", "<10") and (text == "x" or value < 10)), (text, value)
        # the challenger's holdout figure that promotion compared, as MLflow logged it
        challenger_row = next(line for line in md.splitlines() if line.startswith("| 挑戦モデル"))
        assert f"{metrics['holdout_model_average_precision']:.3f}" in challenger_row
        # the explanation method of this kind of model, not TreeSHAP for a regression
        method = _field(md, "Detailed description")
        if tags["candidate"] == "logit":
            assert "linear SHAP" in method and "TreeSHAP" not in md
        else:
            assert "TreeSHAP" in method
        # the reference the reasons are taken against, and when a contribution is a reason
        explained = _field(md, "Explanations: reference and threshold")
        assert "eligible cohort" in explained and "not the training labels" in explained
        assert ("linear SHAP" if tags["candidate"] == "logit" else "interventional TreeSHAP") in explained
        assert "a feature is a reason only if it raises the log-odds by at least" in explained
        # attached to the version: its run holds the very bytes, its tag their SHA-256
        html = runs.card_paths(cfg, version)[1].read_bytes()
        assert mv.tags[registry.CARD_TAG] == hashlib.sha256(html).hexdigest()
        local = Path(client.download_artifacts(mv.run_id, "model_card/model_card.html", str(cfg.work.parent)))
        assert local.read_bytes() == html
        assert f"Trained in batch {mv.tags['month']}" in mv.description
        assert mv.tags[registry.CARD_TAG] in mv.description
    assert client.get_registered_model(registry.REGISTERED_MODEL).description


def test_a_card_is_never_rewritten_by_later_runs(two_versions):
    _, v1, (built, after_earlier, after_rerun), _, _ = two_versions
    assert set(built) == {f"v{v1}/model_card.md", f"v{v1}/model_card.html"}
    # another month's run adds its own version's card and leaves v1's bytes alone ...
    assert {k: after_earlier[k] for k in built} == built and len(after_earlier) == 4
    # ... and rerunning a month (its version reused, the champion now another) rewrites no card
    assert after_rerun == after_earlier


def test_the_months_report_carries_the_serving_versions_card(two_versions):
    cfg, _, _, earlier, rerun = two_versions
    for manifest in (earlier, rerun):
        train = manifest["stages"]["train"]
        beside = runs.report_dir(cfg, manifest["month"]) / "model_card.html"
        report = runs.report_file(cfg, manifest["month"]).read_text(encoding="utf-8")
        if train["mode"] == "model":
            assert beside.read_bytes() == runs.card_paths(cfg, train["model_version"])[1].read_bytes()
            assert f"v{train['model_version']}, the version that made this month's list" in report
        else:
            assert not beside.exists()
            assert "A rule made this month's list, so no model card applies to it" in report


def test_an_altered_card_stops_the_rerun_instead_of_being_replaced(two_versions):
    cfg, v1, _, _, _ = two_versions
    html = runs.card_paths(cfg, v1)[1]
    original = html.read_bytes()
    html.write_bytes(original.replace(b"Model card", b"Model card (edited)", 1))
    try:
        with pytest.raises(DataDamaged, match="not the card registered"):
            run_month(cfg, "2026-10")
        assert html.read_bytes() != original   # kept as found, for whoever investigates
    finally:
        html.write_bytes(original)


def test_a_deleted_card_is_not_replaced_by_a_different_one(two_versions):
    # rerun after another version became champion: the record differs, so no card with other bytes
    cfg, v1, _, _, _ = two_versions
    # make sure another version *is* the champion before 2026-10 (whether 2026-09's gate promoted
    # its version depends on the ward's labels): the rerun's record then names it
    client, v2 = registry.client(cfg), _version_of_month(cfg, EARLIER)
    promoted = client.get_model_version(registry.REGISTERED_MODEL, v2).tags.get("promoted", "false")
    client.set_model_version_tag(registry.REGISTERED_MODEL, v2, "promoted", "true")
    paths = runs.card_paths(cfg, v1)
    original = [p.read_bytes() for p in paths]
    for p in paths:
        p.unlink()
    try:
        with pytest.raises(DataDamaged, match="cannot be written again with the bytes"):
            run_month(cfg, "2026-10")
        assert not any(p.exists() for p in paths)
    finally:
        for p, data in zip(paths, original):
            p.write_bytes(data)
        client.set_model_version_tag(registry.REGISTERED_MODEL, v2, "promoted", promoted)


def test_the_atrs_scale_and_label_coverage_are_the_versions_own_figures(two_versions):
    # ATRS 2.3.3 (scale) and 2.4.3 (completeness) filled from the version's training record, not from config
    cfg, v1, _, _, _ = two_versions
    for version in (v1, _version_of_month(cfg, EARLIER)):
        run = registry.client(cfg).get_run(registry.client(cfg).get_model_version(registry.REGISTERED_MODEL, version).run_id)
        metrics, params = run.data.metrics, run.data.params
        md = runs.card_paths(cfg, version)[0].read_text(encoding="utf-8")
        scale = _field(md, "Frequency and scale")
        month = registry.client(cfg).get_model_version(registry.REGISTERED_MODEL, version).tags["month"]
        record = json.loads((runs.run_dir(cfg, month) / "training.json").read_text(encoding="utf-8"))
        labels = record["label_counts"]
        assert f"holdout month ({params['holdout_month']})" in scale
        assert f"{labels['holdout_cohort']} residents aged" in scale
        assert f"{record['evaluation']['model']['k']} would be listed" in scale
        assert int(metrics["labels_holdout_labelled"]) == labels["holdout_labelled"]
        coverage = _field(md, "Completeness and representativeness")
        # a rate over the ranked cohort, with its counts (the cohort is never a small cell)
        low, high = wilson(labels["holdout_labelled"], labels["holdout_cohort"])
        assert (f"{100 * labels['holdout_labelled'] / labels['holdout_cohort']:.1f}% [{100 * low:.1f}–{100 * high:.1f}] "
                f"({labels['holdout_labelled']}/{labels['holdout_cohort']}) of the ranked") in coverage
