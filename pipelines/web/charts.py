"""Bar charts as inline SVG text, drawn on the server (the CSP forbids scripts, so no chart library).

`bar_chart` draws one group of bars per category (a month) with one bar per series (a ranker, an
outcome), a y axis with round ticks, the category labels, a legend, and a `<title>`/`<desc>` that
a screen reader announces (`role="img"`, `aria-labelledby`). A value of None draws no bar, only a
"–" where it would stand: a month with no outcomes yet, or a figure the disclosure pass withholds,
is shown as missing, never as a zero. Every bar carries its series, category and value as data
attributes, so tests (and anyone reading the markup) can check a bar against the table below it.

Pages put the same numbers in a table under each chart; the chart is the picture, the table is
the record.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Sequence

from markupsafe import Markup

# Colour-blind-safe (Okabe–Ito) colours, one per series in order.
COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 40, 72     # margins: y ticks left, title top, labels and legend below
MAX_LABELS = 12                                # more categories than this: label every n-th one


@dataclass(frozen=True)
class Series:
    name: str                              # the legend's words
    values: Sequence[float | None]         # one per category; None: nothing to draw


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above `value` (the axis' top); 1 for nothing to show."""
    if not value or value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12 * power:
            return step * power
    return 10 * power


def _tick(value: float, percent: bool) -> str:
    if percent:
        return f"{100 * value:.0f}%" if abs(100 * value - round(100 * value)) < 1e-9 else f"{100 * value:.1f}%"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bar_chart(chart_id: str, title: str, desc: str, categories: Sequence[str], series: Sequence[Series],
              y_label: str, percent: bool = False, y_max: float | None = None) -> Markup:
    """The chart as SVG markup (every text escaped here, so the template may insert it as is).

    `percent`: values are shares (0…1) and ticks read as percentages; `y_max` fixes the axis' top
    (e.g. 1.0 for shares), otherwise it is the next round number above the largest value."""
    for s in series:
        if len(s.values) != len(categories):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(categories)} categories")
    shown = [v for s in series for v in s.values if v is not None]
    if any(v < 0 or not math.isfinite(v) for v in shown):
        raise ValueError("bar values must be finite and not negative")
    top = y_max if y_max is not None else nice_max(max(shown, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(categories), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.8 / max(len(series), 1), 1.0)
    base = TOP + plot_h
    e = lambda text: escape(str(text), quote=True)   # noqa: E731 - one short alias, used throughout
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{e(chart_id)}-title {e(chart_id)}-desc">',
             f'<title id="{e(chart_id)}-title">{e(title)}</title>',
             f'<desc id="{e(chart_id)}-desc">{e(desc)}</desc>',
             f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{e(title)}</text>']
    # y axis: five round ticks from 0 to the top, with faint grid lines
    for i in range(6):
        value = top * i / 5
        y = base - plot_h * i / 5
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
                     f'{e(_tick(value, percent))}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#333"/>')
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#333"/>')
    parts.append(f'<text class="axis-label" x="14" y="{TOP + plot_h / 2:.1f}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">{e(y_label)}</text>')
    every = math.ceil(len(categories) / MAX_LABELS) if len(categories) > MAX_LABELS else 1
    for c, category in enumerate(categories):
        x0 = LEFT + c * slot + slot * 0.1
        for s, line in enumerate(series):
            value = line.values[c]
            x = x0 + s * bar_w
            label = f"{line.name} {category}: " + ("—" if value is None else _tick(value, percent) if percent
                                                   else f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}")
            if value is None:
                parts.append(f'<text class="missing" data-series="{e(line.name)}" data-category="{e(category)}" '
                             f'x="{x + bar_w / 2:.1f}" y="{base - 4}" font-size="11" text-anchor="middle">–</text>')
                continue
            h = plot_h * min(value / top, 1.0) if top else 0.0
            parts.append(f'<rect class="bar" data-series="{e(line.name)}" data-category="{e(category)}" '
                         f'data-value="{value!r}" x="{x:.1f}" y="{base - h:.3f}" width="{bar_w:.1f}" '
                         f'height="{h:.3f}" fill="{COLORS[s % len(COLORS)]}"><title>{e(label)}</title></rect>')
        if c % every == 0:
            cx = LEFT + c * slot + slot / 2
            parts.append(f'<text class="category" x="{cx:.1f}" y="{base + 16}" font-size="11" '
                         f'text-anchor="middle">{e(category)}</text>')
    # the legend, one swatch per series, below the category labels
    x = LEFT
    for s, line in enumerate(series):
        parts.append(f'<rect class="swatch" x="{x}" y="{HEIGHT - 26}" width="12" height="12" '
                     f'fill="{COLORS[s % len(COLORS)]}"/>')
        parts.append(f'<text class="legend" x="{x + 16}" y="{HEIGHT - 16}" font-size="11">{e(line.name)}</text>')
        x += 24 + 7 * len(line.name)
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_height(top: float, value: float) -> float:
    """The drawn height of `value` on an axis topped at `top` (what tests compare bars with)."""
    return (HEIGHT - TOP - BOTTOM) * min(value / top, 1.0)
