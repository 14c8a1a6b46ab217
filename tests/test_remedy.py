"""The age-band minimum-share remedy (models/prioritise.py `ranked_slots`): one cut for the list
and for the holdout comparison; and the config that turns it on."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.groups import AGE_BANDS, age_band
from models.fairness import remedy_comparison
from models.prioritise import NO_REMEDY, Remedy, make_list, minimum_counts, ranked_slots
from pipelines.config import load_config

BANDS = ["60〜64歳", "65〜74歳", "75〜84歳", "90歳以上"]
AGES = {"60〜64歳": 62, "65〜74歳": 70, "75〜84歳": 80, "90歳以上": 93}


@st.composite
def districts_to_cut(draw):
    """People in priority order (score descending), their districts and bands, each district's
    ranked slots and a remedy's shares (together at most 1)."""
    n = draw(st.integers(0, 120))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    weights = np.array(draw(st.lists(st.floats(0.01, 1.0), min_size=len(BANDS), max_size=len(BANDS))))
    bands = rng.choice(BANDS, n, p=weights / weights.sum())
    districts = rng.choice(["東町", "西町", "南町"], n)
    limits = {d: draw(st.integers(0, 40)) for d in ["東町", "西町", "南町"]}
    raw = draw(st.lists(st.floats(0.0, 1.0), min_size=len(BANDS), max_size=len(BANDS)))
    scale = draw(st.floats(0.0, 1.0)) / max(sum(raw), 1e-9)
    shares = tuple((b, round(v * scale, 3)) for b, v in zip(BANDS, raw) if v * scale > 0.001)
    return districts, bands, limits, Remedy("age_band_min_share", shares)


@settings(max_examples=200)
@given(districts_to_cut())
def test_the_remedy_holds_every_minimum_it_can_and_keeps_capacity_and_the_order_within_each_band(case):
    districts, bands, limits, remedy = case
    plain = ranked_slots(districts, bands, limits)
    fixed = ranked_slots(districts, bands, limits, remedy)
    assert np.array_equal(ranked_slots(districts, bands, limits, remedy), fixed)      # deterministic
    for district, limit in limits.items():
        mine = districts == district
        filled = int(plain[mine].sum())
        assert filled == min(limit, int(mine.sum()))
        assert int(fixed[mine].sum()) == filled                                         # capacity unchanged
        minimum = minimum_counts(filled, remedy.min_share)
        for band in BANDS:
            theirs = np.flatnonzero(mine & (bands == band))      # in priority order
            chosen = fixed[theirs]
            # the band's chosen people are its highest ranked: a prefix of its order
            assert not np.any(~chosen[:-1] & chosen[1:]), (district, band)
            # its minimum whenever it has that many eligible people, else all of them
            assert chosen.sum() >= min(minimum.get(band, 0), len(theirs)), (district, band, minimum)


@given(districts_to_cut())
def test_without_a_remedy_the_cut_is_each_districts_top_rows(case):
    districts, bands, limits, remedy = case
    expected = pd.Series(districts).groupby(districts).cumcount().to_numpy() < [limits[d] for d in districts]
    assert np.array_equal(ranked_slots(districts, bands, limits), expected)
    # the remedy kind "none" does nothing whatever shares are configured
    assert np.array_equal(ranked_slots(districts, bands, limits, Remedy("none", remedy.min_share)), expected)


@given(st.integers(0, 60), st.lists(st.floats(0.0, 0.5), min_size=1, max_size=4))
def test_minimum_counts_round_each_share_up_as_far_as_the_slots_allow(slots, raw):
    total = sum(raw)
    shares = tuple((b, v / max(total, 1.0)) for b, v in zip(BANDS, raw))
    counts = minimum_counts(slots, shares)
    assert sum(counts.values()) <= slots
    for band, share in shares:
        assert math.floor(share * slots + 1e-9) <= counts[band] <= math.ceil(share * slots - 1e-9)
    if sum(math.ceil(share * slots - 1e-9) for _, share in shares) <= slots:
        assert all(counts[b] >= share * slots - 1e-9 for b, share in shares)    # every share met


def _scored(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    ages = rng.choice(list(AGES.values()), n, p=[0.1, 0.6, 0.2, 0.1])
    scored = pd.DataFrame({"pid": [f"{i:032x}" for i in rng.permutation(n)], "district": rng.choice(["東町", "西町"], n),
                           "score": np.round(rng.random(n) + (ages == 70) * 0.8, 3)})   # the model favours 65〜74
    return scored, age_band(pd.Series(ages, index=scored.index))


@given(st.integers(0, 2 ** 32 - 1))
def test_the_list_with_the_remedy_keeps_capacity_and_exploration_and_is_the_same_for_any_input_order(seed):
    scored, bands = _scored(400, seed)
    caps, explore = {"東町": 12, "西町": 9}, {"東町": 1, "西町": 1}
    remedy = Remedy("age_band_min_share", (("60〜64歳", 0.25), ("90歳以上", 0.1)))
    listed = make_list(scored, caps, explore, seed=7, remedy=remedy, bands=bands)
    plain = make_list(scored, caps, explore, seed=7)
    assert listed.groupby("district").size().to_dict() == plain.groupby("district").size().to_dict() == caps
    assert listed["exploration"].sum() == plain["exploration"].sum() == 2
    assert list(listed.columns) == list(plain.columns)                      # nothing added to the list
    band_of = dict(zip(scored["pid"], bands))
    ranked = listed[~listed["exploration"]]
    for district, cap in caps.items():
        mine = ranked[ranked["district"] == district]["pid"].map(band_of)
        for band, share in remedy.min_share:
            assert (mine == band).sum() >= min(math.ceil(share * len(mine)),
                                               int(((scored["district"] == district) & (bands == band)).sum()))
    shuffled = scored.sample(frac=1, random_state=seed % 1000)
    again = make_list(shuffled, caps, explore, seed=7, remedy=remedy, bands=bands.reindex(shuffled.index))
    pd.testing.assert_frame_equal(again, listed)
    # the remedy "none" is the list as it always was, bands or not
    pd.testing.assert_frame_equal(make_list(scored, caps, explore, 7, NO_REMEDY, bands), plain)


def test_the_holdout_comparison_cuts_like_the_list_and_shows_the_short_band_found_more_often():
    scored, bands = _scored(600, 3)
    ages = bands.map({b: a for b, a in AGES.items()})
    rng = np.random.default_rng(5)
    label = np.where(rng.random(600) < 0.5, np.where(rng.random(600) < 0.4, 1.0, 0.0), np.nan)
    frame = pd.DataFrame({"pid": scored["pid"], "age": ages.astype(float), "sex": "female",
                          "district": scored["district"], "living_alone": 1.0, "label": label})
    caps = {"東町": 30, "西町": 30}
    remedy = Remedy("age_band_min_share", (("60〜64歳", 0.3),))
    out = remedy_comparison(frame, scored["score"].to_numpy(), caps, remedy, min_labelled=1)
    whole = {cut: out[cut][0] for cut in out}
    assert whole["none"]["selected"] == whole["remedy"]["selected"] == 60
    listed = make_list(scored, caps, remedy=remedy, bands=bands)
    young = {cut: next(r for r in out[cut] if r["group"] == "60〜64歳") for cut in out}
    assert young["remedy"]["selected"] == int((listed["pid"].map(dict(zip(scored["pid"], bands))) == "60〜64歳").sum())
    assert young["remedy"]["selected"] >= 18 > young["none"]["selected"]
    assert young["remedy"]["true_positives"] >= young["none"]["true_positives"]


def test_the_remedy_is_read_from_the_config_and_refused_when_it_cannot_be_meant():
    assert Remedy.of({}) == NO_REMEDY and not Remedy.of({"remedy": "none", "min_share": {"65〜74歳": 0.5}}).active
    on = Remedy.of({"remedy": "age_band_min_share", "min_share": {"90歳以上": 0.1, "60〜64歳": 0.2}})
    assert on.active and on.min_share == (("60〜64歳", 0.2), ("90歳以上", 0.1))     # in band order
    assert Remedy.of({"min_share": {"60〜64歳": 0.2}}, offered=True).active
    for bad, words in (({"remedy": "quota"}, "must be one of"), ({"min_share": {"65-74": 0.2}}, "no age band 65-74"),
                       ({"min_share": {"65〜74歳": 0.7, "75〜84歳": 0.4}}, "at most 1"),
                       ({"min_share": {"65〜74歳": -0.1}}, "between 0 and 1")):
        with pytest.raises(ValueError, match=words):
            Remedy.of(bad)


def test_a_remedy_that_is_off_leaves_the_config_hash_as_it_was(tmp_path):
    def hash_of(toml: str) -> str:
        (tmp_path / "mimamori.toml").write_text(toml, encoding="utf-8")
        return load_config(tmp_path / "mimamori.toml", environ={}).config_hash

    plain = hash_of("")
    assert hash_of('[fairness.min_share]\n"65〜74歳" = 0.4\n') == plain
    on = hash_of('[fairness]\nremedy = "age_band_min_share"\n')
    assert on != plain and hash_of('[fairness]\nremedy = "age_band_min_share"\n[fairness.min_share]\n"65〜74歳" = 0.4\n') != on
    # a ward's shares replace the shipped table whole (not merged band by band)
    (tmp_path / "mimamori.toml").write_text('[fairness.min_share]\n"60〜64歳" = 0.2\n', encoding="utf-8")
    assert load_config(tmp_path / "mimamori.toml", environ={}).settings["fairness"]["min_share"] == {"60〜64歳": 0.2}


def test_sixty_to_sixty_four_is_a_band_of_its_own():
    ages = pd.Series([59, 60, 64, 65, 89, 90, 104])
    assert age_band(ages).tolist() == ["〜59歳", "60〜64歳", "60〜64歳", "65〜74歳", "85〜89歳", "90歳以上", "90歳以上"]
    assert [b[0] for b in AGE_BANDS] == sorted(b[0] for b in AGE_BANDS)
    assert all(AGE_BANDS[i][1] + 1 == AGE_BANDS[i + 1][0] for i in range(len(AGE_BANDS) - 1))   # no gaps
