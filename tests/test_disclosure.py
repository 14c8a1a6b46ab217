import pandas as pd

from features.groups import age_band
from reports.disclosure import suppress, suppressed_total


def test_small_counts_are_suppressed_with_a_complementary_cell():
    shown = suppress(pd.Series({"a": 120, "b": 4, "c": 35, "d": 0}))
    assert shown["b"] == "<10"
    # with the total shown, b = total - a - c; so the next smallest non-zero cell is hidden too
    assert shown["c"] == "x" and shown["a"] == "120" and shown["d"] == "0"


def test_two_small_cells_need_no_extra_suppression():
    shown = suppress(pd.Series({"a": 120, "b": 4, "c": 3}))
    assert shown.tolist() == ["120", "<10", "<10"]


def test_total_under_ten_is_suppressed():
    assert suppressed_total(pd.Series([3, 4])) == "<10"
    assert suppressed_total(pd.Series([0, 0])) == "0"


def test_age_is_top_coded_at_90():
    bands = age_band(pd.Series([40, 66, 80, 87, 90, 104]))
    assert bands.tolist() == ["〜64歳", "65〜74歳", "75〜84歳", "85〜89歳", "90歳以上", "90歳以上"]
