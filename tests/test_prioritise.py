import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from models.prioritise import capacity, eligible, exploration_slots, make_list


def _cohort():
    # district A has 3x the elderly of B; C has none
    rows = ([("A", 80)] * 300 + [("A", 30)] * 700 + [("B", 70)] * 100 + [("B", 30)] * 900 + [("C", 30)] * 1000)
    return pd.DataFrame({"pid": [f"{i:032x}" for i in range(len(rows))],
                         "district": [d for d, _ in rows], "age": [a for _, a in rows]})


def test_capacity_is_share_of_residents_split_by_elderly():
    caps = capacity(_cohort(), 0.004)   # 3000 residents -> 12 visits
    assert sum(caps.values()) == 12
    assert caps == {"A": 9, "B": 3, "C": 0}


def test_fixed_district_capacity_is_respected_and_rest_shared():
    caps = capacity(_cohort(), 0.004, {"C": 2})
    assert caps["C"] == 2 and sum(caps.values()) == 12


def test_list_fills_each_district_to_capacity_in_ward_priority_order():
    scored = pd.DataFrame({"pid": ["p1", "p2", "p3", "p4", "p5"], "district": ["A", "A", "A", "B", "B"],
                           "score": [0.9, 0.5, 0.8, 0.7, 0.1]})
    listed = make_list(scored, {"A": 2, "B": 1})
    assert listed["pid"].tolist() == ["p1", "p3", "p4"]
    assert listed["rank"].tolist() == [1, 2, 3]


def test_ties_are_broken_by_pid_so_lists_are_deterministic():
    scored = pd.DataFrame({"pid": ["b", "a", "c"], "district": ["A"] * 3, "score": [0.5, 0.5, 0.5]})
    assert make_list(scored, {"A": 2})["pid"].tolist() == ["a", "b"]
    assert make_list(scored.iloc[::-1], {"A": 2})["pid"].tolist() == ["a", "b"]


def test_excluded_recently_visited_and_too_young_are_not_eligible():
    cohort = pd.DataFrame({"pid": ["a", "b", "c", "d"], "age": [80, 70, 90, 64]})
    assert eligible(cohort, {"a"}, {"c"}, min_age=65).tolist() == [False, True, False, False]


def test_exploration_slots_are_a_share_of_the_ward_and_random_picks_are_marked():
    caps = {"A": 9, "B": 7, "C": 4}
    slots = exploration_slots(caps, 0.1)
    assert sum(slots.values()) == 2 and all(slots[d] <= caps[d] for d in caps)
    scored = pd.DataFrame({"pid": [f"{i:04d}" for i in range(300)], "district": ["A", "B", "C"] * 100,
                           "score": np.linspace(1, 0, 300)})
    listed = make_list(scored, caps, slots, seed=3)
    assert len(listed) == 20 and listed["exploration"].sum() == 2
    top = make_list(scored, caps)
    # ranked picks are the district's best; random picks come from outside them
    assert set(listed.loc[~listed["exploration"], "pid"]) < set(top["pid"])
    assert not set(listed.loc[listed["exploration"], "pid"]) & set(top["pid"])
    assert make_list(scored, caps, slots, seed=3).equals(listed)
    assert not make_list(scored, caps, slots, seed=4)["pid"].equals(listed["pid"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=400), st.integers(1, 30))
def test_the_rank_band_says_truly_where_a_listed_person_stands_among_the_eligible(raw, cap):
    scored = pd.DataFrame({"pid": [f"p{i:04d}" for i in range(len(raw))], "district": "A",
                           "score": np.array(raw, dtype=float) / 50})
    listed = make_list(scored, {"A": cap})
    for _, row in listed.iterrows():
        share = (scored["score"] >= row["score"]).mean() * 100   # of the eligible, as high or higher
        # rounded up to 0.1: "top x%" is true (1e-9: 11/20*100 is 55.00000000000001 in floating point)
        assert share - 1e-9 <= row["top_percent"] < share + 0.1 + 1e-9
        figure = f"{row['top_percent']:.1f}".rstrip("0").rstrip(".")
        assert (row["band"], row["band_en"]) == (f"上位{figure}%", f"top {figure}%")
    assert listed["top_percent"].is_monotonic_increasing
