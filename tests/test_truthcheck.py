"""The truth-check's figures against their sources: every precision is hits / k recounted from
the truth file and the list, the ceiling is the per-district arithmetic, the recall ratios are
recounted per group, the averages and spreads are those of the per-ward values, the ablation's
"everything off" variant ranks like a constant model, and no 宛名番号 reaches the outputs."""
from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, strategies as st

from features.catalog import GROUPS
from features.groups import age_band
from models.ablation import Variant, variants
from models.truthmeasure import aggregate, hits, ranked, spread
from pipelines.catalog import runs
from pipelines.catalog.features import month_features
from pipelines.cli import build_parser
from pipelines.monthly import excluded_pids, recently_visited
from pipelines.pseudonymise import load_key, pseudonymise
from pipelines.truthcheck import month_truth
from pipelines.truthwards import _write, measured, ward_ablation
from reports.modelquality import NOTES_MARKER, cell, render, spread_cell
from contract.storage import read_parquet


@pytest.fixture(scope="module")
def truth(ward) -> pd.DataFrame:
    """The truth as the custodian holds it, with each resident's pseudonym beside the 宛名番号."""
    table = pd.read_csv(ward.truth, dtype={"resident_id": str})
    return table.assign(pid=pseudonymise(table["resident_id"], load_key(ward.cfg.key_file), "resident").to_numpy())


@pytest.fixture(scope="module")
def result(ward) -> dict:
    return measured(ward.cfg, ward.month, ward.truth, with_ablation=False)


@pytest.fixture(scope="module")
def month(ward) -> dict:
    cfg, m = ward.cfg, ward.month
    feats = month_features(cfg.work, m)
    gone = excluded_pids(cfg, m) | recently_visited(cfg, m)
    ok = (feats["age"] >= cfg.get("prioritise", "min_age")) & ~feats["pid"].isin(gone)
    return {"features": feats, "eligible": feats[ok], "caps": runs.read_manifest(cfg, m)["stages"]["prioritise"]["capacity"]}


def _isolated(truth: pd.DataFrame) -> set[str]:
    return set(truth.loc[truth["isolated"] == 1, "pid"])


def test_the_lists_precision_is_its_isolated_ranked_picks_over_their_count(ward, truth, result):
    listed = read_parquet(runs.list_file(ward.cfg, ward.month))
    ranked_picks = listed.loc[~listed["exploration"], "pid"]
    found = int(ranked_picks.isin(_isolated(truth)).sum())
    assert result["list"] == {"listed": len(ranked_picks), "isolated": found, "precision": found / len(ranked_picks)}
    random_picks = listed.loc[listed["exploration"], "pid"]
    assert result["exploration"]["isolated"] == int(random_picks.isin(_isolated(truth)).sum())
    assert result["k"] == len(listed) and result["residents"] == len(truth)
    assert result["isolated_in_ward"] == int(truth["isolated"].sum())


def test_the_75_alone_rule_is_recounted_district_by_district_oldest_first(truth, result, month):
    e = month["eligible"]
    rule = e[(e["age"] >= 75) & (e["living_alone"] >= 0.5)].assign(a=lambda f: f["age"].clip(upper=120))
    rule = rule.sort_values(["a", "pid"], ascending=[False, True])
    picked = pd.concat([g.head(month["caps"].get(d, 0)) for d, g in rule.groupby("district")])
    found = int(picked["pid"].isin(_isolated(truth)).sum())
    assert result["alone_75"]["listed"] == len(picked) and result["alone_75"]["isolated"] == found
    assert result["alone_75"]["precision"] == pytest.approx(found / len(picked))


def test_the_ceiling_is_each_districts_eligible_isolated_up_to_its_capacity(truth, result, month):
    e, caps = month["eligible"], month["caps"]
    per_district = e["pid"].isin(_isolated(truth)).groupby(e["district"]).sum()
    expected = sum(min(cap, int(per_district.get(d, 0))) for d, cap in caps.items())
    assert result["ceiling"]["isolated"] == expected
    assert result["ceiling"]["listed"] == sum(min(cap, int((e["district"] == d).sum())) for d, cap in caps.items())
    assert result["ceiling"]["precision"] == pytest.approx(expected / result["ceiling"]["listed"])
    assert result["ceiling"]["precision"] >= max(result[n]["precision"] or 0 for n in ("list", "alone_75", "points"))


def test_recall_per_group_is_recounted_against_the_wards_recall(ward, truth, result, month):
    listed = set(read_parquet(runs.list_file(ward.cfg, ward.month))["pid"])
    cohort = month["features"][month["features"]["age"] >= ward.cfg.get("prioritise", "min_age")]
    iso = cohort[cohort["pid"].isin(_isolated(truth))]
    whole = iso["pid"].isin(listed).mean()
    rows = {(r["attribute"], r["group"]): r for r in result["recall"]}
    assert rows[("ward", "all")]["recall"] == pytest.approx(whole)
    bands = age_band(iso["age"])
    for attribute, values in (("sex", iso["sex"]), ("age_band", bands), ("district", iso["district"])):
        for group in sorted(set(values)):
            inside = iso[values.to_numpy() == group]
            row = rows[(attribute, str(group))]
            assert (row["isolated"], row["found"]) == (len(inside), int(inside["pid"].isin(listed).sum()))
            recall = inside["pid"].isin(listed).mean()
            assert row["ratio"] == pytest.approx(recall / whole)
            assert row["flag"] == (not 0.8 <= recall / whole <= 1.25)


def test_the_min_age_60_list_counts_its_60_to_64_year_olds(truth, result, month):
    younger = result["min_age_60"]
    assert younger is not None and younger["model"].startswith(("champion", "challenger"))
    band = younger["band"]
    people = month["features"][(month["features"]["age"] >= 60) & (month["features"]["age"] <= 64)]
    assert band["isolated"] == int(people["pid"].isin(_isolated(truth)).sum())
    assert band["precision"] == (band["isolated_listed"] / band["listed"] if band["listed"] else None)
    assert younger["listed"] == sum(month["caps"].values())
    assert band["listed"] > 0, "at min_age 60 some people aged 60–64 are listed"


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=7))
def test_spread_is_the_mean_min_max_and_sample_sd_of_the_values(values):
    s = spread(values + [None])
    assert s["n"] == len(values)
    assert s["mean"] == pytest.approx(statistics.fmean(values))
    assert (s["min"], s["max"]) == (min(values), max(values))
    assert s["sd"] == pytest.approx(statistics.stdev(values) if len(values) > 1 else 0.0, abs=1e-12)


def _fake_ward(name: str, list_p: float, rule_p: float, effect: float) -> dict:
    row = {"listed": 10, "isolated": round(10 * list_p), "precision": list_p}
    return {"ward": name, "list": row, "alone_75": {"listed": 10, "isolated": round(10 * rule_p), "precision": rule_p},
            "recall": [{"attribute": "sex", "group": "male", "ratio": list_p * 2, "recall": list_p, "flag": list_p > 0.6}],
            "ablation": [{"variant": "full", "precision": list_p, "effect": 0.0, "chosen": "logit", "candidates": {}},
                         {"variant": "without moved", "precision": list_p + effect, "effect": effect, "chosen": "hgb",
                          "candidates": {}}]}


@given(st.lists(st.tuples(st.floats(0.05, 1), st.floats(0.05, 1), st.floats(-0.5, 0.5)), min_size=1, max_size=6))
def test_the_sets_averages_and_spreads_are_those_of_the_per_ward_values(figures):
    wards = [_fake_ward(f"w{i}", *f) for i, f in enumerate(figures)]
    s = aggregate(wards)
    lists, rules = [f[0] for f in figures], [f[1] for f in figures]
    assert s["precision"]["list"]["mean"] == pytest.approx(statistics.fmean(lists))
    assert s["lift"]["list"]["ratio_of_averages"] == pytest.approx(statistics.fmean(lists) / statistics.fmean(rules))
    assert s["lift"]["list"]["average_of_ratios"]["mean"] == pytest.approx(statistics.fmean(a / b for a, b in zip(lists, rules)))
    effect = next(r for r in s["ablation"] if r["variant"] == "without moved")
    assert effect["effect"]["mean"] == pytest.approx(statistics.fmean(f[2] for f in figures))
    assert effect["chosen"] == {"hgb": len(figures)}
    assert s["recall"][0]["flagged_wards"] == sum(f[0] > 0.6 for f in figures)


def test_variants_are_the_full_model_each_group_off_and_each_source_toggled():
    found = variants(["visits", "adverse_events"], list(GROUPS))
    assert [v.name for v in found[: 1 + len(GROUPS)]] == ["full"] + [f"without {g}" for g in GROUPS]
    assert [v.sources for v in found[1 + len(GROUPS):]] == [("adverse_events",), ("visits",),
                                                          ("visits", "adverse_events", "not_home")]
    # a toggle that would leave no label source is skipped
    assert [v.name for v in variants(["visits"], [])] == [
        "full", "adverse_events on (sources: visits,adverse_events)", "not_home on (sources: visits,not_home)"]


@pytest.fixture(scope="module")
def ablated(ward) -> list[dict]:
    t = month_truth(ward.cfg, ward.month, ward.truth)
    full = tuple(ward.cfg.settings["labels"]["sources"])
    return ward_ablation(ward.cfg, t, [Variant("full", full), Variant("everything off", full, tuple(GROUPS))]), t


def test_the_full_variant_is_the_train_stages_own_fit(ward, ablated):
    rows, _ = ablated
    record = json.loads((runs.run_dir(ward.cfg, ward.month) / "training.json").read_text(encoding="utf-8"))
    full = rows[0]
    assert full["chosen"] == record["challenger"]
    assert full["train_labelled"] == record["label_counts"]["train_labelled"]
    key = f"{record['criterion']}_worst" if record["criterion"] == "precision_at_k" else record["criterion"]
    for name, figures in full["candidates"].items():
        assert figures[f"holdout_{record['criterion']}"] == pytest.approx(record["candidates"][name][key])


def test_a_variant_with_every_group_off_ranks_like_a_constant_model(ablated):
    rows, t = ablated
    off = rows[1]
    constant = hits(ranked(t.features, t.ok, np.zeros(len(t.features)), t.caps), t.isolated)
    for figures in off["candidates"].values():
        assert {k: figures[k] for k in ("listed", "isolated", "precision")} == constant
    assert off["effect"] == pytest.approx(off["precision"] - rows[0]["precision"])


def test_the_document_copies_the_figures_keeps_the_notes_and_holds_no_identifier(ward, truth, result, tmp_path):
    ward_result = result | {"ward": "w6", "seed": 11, "ablation": [], "residents_generated": 6000}
    docs = tmp_path / "model-quality.md"
    docs.write_text("old tables\n" + NOTES_MARKER + "\nA person's note.\n", encoding="utf-8")
    args = argparse.Namespace(ward_set=((6000, 11, "w6"),), months=14, end_month=ward.month, root=tmp_path,
                              ablation=False, docs=docs, final_month_only=False, ablation_candidates=None)
    _write(tmp_path, args, [ward_result, ward_result | {"ward": "w6b"}])
    text = docs.read_text(encoding="utf-8")
    assert "old tables" not in text and text.endswith(NOTES_MARKER + "\nA person's note.\n")
    assert "mimamori truth-check --wards --ward-set 6000:11:w6 --months 14" in text
    for name in ("list", "champion", "alone_75", "health_unknown", "points", "ceiling"):
        if name in result:   # the session ward's list is a rule's: it may have no champion
            assert cell(result[name]) in text
    document = json.loads((tmp_path / "truth-check.json").read_text(encoding="utf-8"))
    assert spread_cell(document["summary"]["precision"]["list"]) in text
    assert document["summary"]["precision"]["list"]["sd"] == 0.0
    written = text + json.dumps(document)
    assert not [i for i in truth["resident_id"] if i in written]
    assert render(document) in text


def test_the_ward_set_option_parses_sizes_seeds_and_folders():
    parse = build_parser().parse_args
    args = parse(["truth-check", "--wards", "--ward-set", "3000:1,4000:2:mine", "--months", "14"])
    assert args.ward_set == ((3000, 1, "w3"), (4000, 2, "mine")) and args.months == 14
    assert [w[2] for w in parse(["truth-check", "--wards"]).ward_set] == ["w20", "w35", "w50b", "w75", "w100"]
    with pytest.raises(SystemExit):
        parse(["truth-check", "--wards", "--ward-set", "3000:1:a,4000:2:a"])
