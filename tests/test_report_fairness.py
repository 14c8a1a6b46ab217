"""§5's sentences against the audit rows they come from, and the remedy's table through the pass."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.fairness import WHOLE, audit, remedy_comparison
from models.prioritise import Remedy
from reports.cells import holdout_audit_keys, register_holdout
from reports.disclosure import Cells, disclose
from reports.fairness_tables import as_stored, fairness_section, group_words
from reports.remedy_section import RemedyInputs, register_remedy, remedy_section
from tests.test_disclosure import assert_nothing_pinned

BOUNDS = (0.8, 1.25)
AGES = [62, 70, 80, 87, 93]
DISTRICTS = ["東町", "西町", "南町"]


def _frame(n: int, rng: np.random.Generator) -> pd.DataFrame:
    known = rng.random(n) < 0.6
    return pd.DataFrame({"pid": [f"{i:032x}" for i in range(n)], "age": rng.choice(AGES, n).astype(float),
                         "sex": rng.choice(["female", "male"], n), "district": rng.choice(DISTRICTS, n),
                         "living_alone": rng.integers(0, 2, n).astype(float),
                         "label": np.where(known, (rng.random(n) < 0.5).astype(float), np.nan)})


@st.composite
def holdouts(draw):
    """A holdout and a top-k selection in which one group's people in need are found at a rate of
    its own (pushed below or above the whole, or not at all)."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    frame = _frame(draw(st.integers(60, 500)), rng)
    selected = rng.random(len(frame)) < draw(st.floats(0.1, 0.7))
    column, values = draw(st.sampled_from([("sex", ["female", "male"]), ("age", AGES), ("district", DISTRICTS)]))
    pushed = (frame[column] == draw(st.sampled_from(values))) & (frame["label"] == 1)
    selected[pushed.to_numpy()] = rng.random(int(pushed.sum())) < draw(st.floats(0.0, 1.0))
    return frame, selected


def _stored_section(stored: dict, serving: str, threshold: int = 10):
    cells = Cells()
    register_holdout(cells, {}, {}, None, stored)
    shown = disclose(cells, threshold)
    return fairness_section(stored, serving, [], shown, BOUNDS, 10), shown


def _sentences_about(findings, who_ja: str, ja: str) -> list[dict]:
    return [f for f in findings if f["ja"].startswith(f"{who_ja}：{ja}の要支援者の発見率")]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(holdouts())
def test_every_group_outside_the_bounds_is_named_with_its_ratio_and_none_inside_is(case):
    frame, selected = case
    rows = as_stored(audit(frame, selected, *BOUNDS, min_labelled=10))
    section, shown = _stored_section({"model": rows}, "model")
    keys = holdout_audit_keys("model")
    named = 0
    for r in rows:
        if r["attribute"] == WHOLE[0]:
            continue
        ja, en = group_words(r["attribute"], r["group"])
        said = _sentences_about(section.findings, "検証月の挑戦モデル", ja)
        ratio = r["tpr_ratio"]
        if ratio is None or BOUNDS[0] <= ratio <= BOUNDS[1]:
            assert said == [], (r, said)
            continue
        named += 1
        assert len(said) == 1, (r, section.findings)
        below = ratio < BOUNDS[0]
        assert ("を下回っています" if below else "を上回っています") in said[0]["ja"]
        assert ("found less often" if below else "found more often") in said[0]["en"] and en in said[0]["en"]
        rate = shown.rate_text(keys.key("true_positive", r), keys.key("positive", r))
        if rate[:1].isdigit():
            assert f"全体の{ratio:.2f}倍" in said[0]["ja"] and f"{ratio:.2f}× the whole" in said[0]["en"]
            assert f"（{ja} {rate}、全体 " in said[0]["ja"]
        else:      # the ratio would give the hidden rate back: only its side of the bounds is said
            assert "開示制御" in said[0]["ja"] and not re.search(r"\d+/\d+", said[0]["ja"])
            assert f"{'below' if below else 'above'} {BOUNDS[0] if below else BOUNDS[1]:g}×" in said[0]["en"]
    none_outside = [f for f in section.findings if "範囲を外れるグループはありません" in f["ja"]]
    assert len(none_outside) == (0 if named else 1)


def test_a_group_found_more_often_is_named_for_the_list_maker_but_not_flagged_for_the_challenger():
    rng = np.random.default_rng(4)
    frame = _frame(900, rng)
    need = (frame["label"] == 1).to_numpy()
    west = (frame["district"] == "西町").to_numpy()
    selected = need & (west | (rng.random(len(frame)) < 0.3))     # 西町's people in need all found
    rows = as_stored(audit(frame, selected, *BOUNDS))
    west_row = next(r for r in rows if r["group"] == "西町")
    assert west_row["tpr_ratio"] > BOUNDS[1] and not west_row["flag"]      # the gate does not refuse it
    section, _ = _stored_section({"model": rows, "alone_75": rows}, "alone_75")
    list_maker = _sentences_about(section.findings, "検証月の75歳以上のひとり暮らし（高齢順）", "西町")
    assert len(list_maker) == 1 and f"全体の{west_row['tpr_ratio']:.2f}倍" in list_maker[0]["ja"]
    assert "found more often" in list_maker[0]["en"]
    assert not [f for f in section.findings if f["ja"].startswith("検証月の挑戦モデル：西町")]
    # the other districts are found less often: named for the list maker, flagged for the challenger
    east = next(r for r in rows if r["group"] == "東町")
    assert east["flag"] and len(_sentences_about(section.findings, "検証月の75歳以上のひとり暮らし（高齢順）", "東町")) == 1
    assert "検証月の挑戦モデル：東町は、要支援者の発見率（再現率）が全体の0.8倍未満です。" in [f["ja"] for f in section.findings]


@st.composite
def remedied_holdouts(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    frame = _frame(draw(st.integers(40, 400)), rng)
    scores = rng.random(len(frame)) + (frame["age"] == 70).to_numpy() * draw(st.floats(0, 1))
    caps = {d: draw(st.integers(0, 40)) for d in DISTRICTS}
    share = draw(st.floats(0.05, 0.6))
    return frame, scores, caps, Remedy("age_band_min_share", (("60〜64歳", share), ("90歳以上", 0.1)))


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(remedied_holdouts(), st.sampled_from([5, 10]))
def test_the_remedys_table_passes_the_disclosure_control_and_shows_only_what_it_allows(case, threshold):
    frame, scores, caps, remedy = case
    order = np.lexsort((frame["pid"].to_numpy(), -scores))
    top = np.zeros(len(frame), dtype=bool)
    top[order[:sum(caps.values())]] = True
    stored = as_stored({"model": audit(frame, top, *BOUNDS)})
    inputs = RemedyInputs(remedy, True, "model", remedy_comparison(frame, scores, caps, remedy, *BOUNDS), True)
    cells = Cells()
    register_holdout(cells, {}, {}, None, stored)
    register_remedy(cells, inputs)
    shown = disclose(cells, threshold)
    assert_nothing_pinned(shown, threshold)
    view = remedy_section(inputs, shown)
    assert view.said[0]["ja"].startswith("今月のリストは是正策「年齢区分ごとの最低割合」を使っています")
    assert "60〜64歳を" in view.said[0]["ja"] and "aged 60–64" in view.said[0]["en"]
    rate = re.compile(r"^\d+\.\d% \[\d+\.\d–\d+\.\d\] \((\d+)/(\d+)\)$")
    groups = {group_words(r["attribute"], r["group"])[0]: r for r in inputs.comparison["remedy"]
              if r["attribute"] in (WHOLE[0], "age_band")}
    for row in view.rows:
        r = groups[row[0].split(" / ")[0]]
        # the selected counts are the pass's cells, as it shows them (small ones only inside a shown rate)
        assert row[2] == " → ".join(shown.text((f"cut:{cut}:model", r["attribute"], str(r["group"])))
                                    for cut in ("none", "remedy"))
        for cell in row[3:]:
            found = rate.match(cell)
            if found:
                assert int(found.group(2)) >= threshold          # a rate only over a group that is not small
            else:
                assert cell in ("—", "x", f"n<{threshold}") or re.fullmatch(r"×\d+\.\d\d", cell), cell
        for recall, ratio in ((row[3], row[4]), (row[5], row[6])):
            assert rate.match(recall) or ratio == "—"     # a ratio would give a hidden rate back
    # the table's rows are the cut's: the whole and every age band, with and without
    assert [r[0] for r in view.rows][0] == "全体 / whole cohort"
    whole = inputs.comparison["remedy"][0]
    assert view.rows[0][2].endswith(shown.text(("cut:remedy:model", *WHOLE)))
    assert whole["selected"] == inputs.comparison["none"][0]["selected"] == min(
        sum(caps.values()), sum(min(c, int((frame["district"] == d).sum())) for d, c in caps.items()))
