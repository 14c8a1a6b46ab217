"""The analyst's inline SVG charts (pipelines/web/charts.py): what a reader and a screen reader
get for one month, all zeros, a month with nothing to show yet, many months, and hostile labels."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from pipelines.web.charts import MAX_LABELS, Series, bar_chart, bar_height, nice_max

NS = {"s": "http://www.w3.org/2000/svg"}


def _svg(markup) -> ET.Element:
    return ET.fromstring(str(markup))   # well-formed XML, or this raises


def _bars(root: ET.Element) -> list[ET.Element]:
    return root.findall("s:rect[@class='bar']", NS)


def _ticks(root: ET.Element) -> list[str]:
    return [t.text for t in root.findall("s:text[@class='tick']", NS)]


def test_one_month_draws_one_bar_with_title_desc_axes_and_its_value():
    root = _svg(bar_chart("one", "リストの人数 / list size", "People listed.", ["2026-10"],
                          [Series("listed", [42.0])], "people"))
    assert root.get("role") == "img" and root.get("aria-labelledby") == "one-title one-desc"
    assert root.find("s:title", NS).text == "リストの人数 / list size" and root.find("s:desc", NS).text == "People listed."
    (bar,) = _bars(root)
    assert (bar.get("data-category"), float(bar.get("data-value"))) == ("2026-10", 42.0)
    assert float(bar.get("height")) == pytest.approx(bar_height(50, 42))   # axis topped at the next round 50
    assert _ticks(root) == ["0", "10", "20", "30", "40", "50"]
    assert len(root.findall("s:line[@class='axis']", NS)) == 2
    assert [t.text for t in root.findall("s:text[@class='category']", NS)] == ["2026-10"]
    assert bar.find("s:title", NS).text == "listed 2026-10: 42"   # a hover/AT label per bar


def test_all_zeros_draw_flat_bars_on_a_unit_axis_not_a_division_by_zero():
    root = _svg(bar_chart("z", "zeros", "d", ["2026-08", "2026-09"], [Series("a", [0.0, 0.0]), Series("b", [0, 0])],
                          "people"))
    bars = _bars(root)
    assert len(bars) == 4 and all(float(b.get("height")) == 0 for b in bars)
    assert _ticks(root)[-1] == "1"


def test_a_missing_value_draws_no_bar_but_a_dash_never_a_zero():
    root = _svg(bar_chart("m", "hit rate", "d", ["2026-08", "2026-09", "2026-10"],
                          [Series("model", [0.25, None, 0.5])], "share", percent=True, y_max=1.0))
    bars = _bars(root)
    assert [b.get("data-category") for b in bars] == ["2026-08", "2026-10"]
    missing = root.findall("s:text[@class='missing']", NS)
    assert [(m.get("data-series"), m.get("data-category"), m.text) for m in missing] == [("model", "2026-09", "–")]
    assert [float(b.get("height")) for b in bars] == pytest.approx([bar_height(1, 0.25), bar_height(1, 0.5)])
    assert _ticks(root) == ["0%", "20%", "40%", "60%", "80%", "100%"]
    nothing = _svg(bar_chart("n", "nothing yet", "d", ["2026-10"], [Series("model", [None])], "share", percent=True))
    assert not _bars(nothing) and nothing.findall("s:text[@class='missing']", NS)


def test_many_months_keep_every_bar_inside_the_chart_and_thin_the_labels():
    months = [f"{2024 + i // 12}-{i % 12 + 1:02d}" for i in range(36)]
    root = _svg(bar_chart("many", "t", "d", months, [Series("a", [float(i) for i in range(36)]),
                                                     Series("b", [35.0 - i for i in range(36)])], "people"))
    bars = _bars(root)
    assert len(bars) == 72
    width = float(root.get("width"))
    assert all(0 <= float(b.get("x")) and float(b.get("x")) + float(b.get("width")) <= width for b in bars)
    xs = [float(b.get("x")) for b in bars if b.get("data-series") == "a"]
    assert xs == sorted(xs)   # months left to right
    labels = [t.text for t in root.findall("s:text[@class='category']", NS)]
    assert 1 < len(labels) <= MAX_LABELS and labels[0] == months[0]


def test_labels_are_escaped_and_bad_input_refused():
    root = _svg(bar_chart("x", "<script>alert(1)</script>", 'a "quote" & more', ["<b>"], [Series("<i>", [1.0])], "y"))
    assert root.find("s:title", NS).text == "<script>alert(1)</script>"   # text, not markup
    assert "<script>" not in str(bar_chart("x", "<script>", "d", ["m"], [Series("s", [1.0])], "y"))
    with pytest.raises(ValueError):
        bar_chart("x", "t", "d", ["a", "b"], [Series("s", [1.0])], "y")
    with pytest.raises(ValueError):
        bar_chart("x", "t", "d", ["a"], [Series("s", [-1.0])], "y")


@pytest.mark.parametrize("value, top", [(0, 1), (0.3, 0.5), (1, 1), (42, 50), (101, 200), (7, 10), (2.2, 2.5)])
def test_axis_tops_are_round(value, top):
    assert nice_max(value) == pytest.approx(top)
