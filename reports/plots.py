"""Plots for the batch report, model cards and the auditor's explain view (matplotlib, Agg).

Every figure is returned as PNG bytes (embedded in HTML as base64, so reports open offline) or
saved to a path. Labels are bilingual when a Japanese font is installed and English otherwise
(the HTML around the plots is bilingual either way). Plots show aggregates and pseudonymous
contributions only.
"""
from __future__ import annotations

import base64
import io
from functools import lru_cache

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

JAPANESE_FONTS = ["IPAPGothic", "IPAGothic", "IPAexGothic", "Noto Sans CJK JP", "Noto Sans JP", "TakaoPGothic",
                  "VL PGothic", "Yu Gothic", "Hiragino Sans", "MS Gothic"]
RISK, PROTECT, NEUTRAL = "#c0392b", "#2a6f97", "#7f8c8d"
COLORS = {"model": "#c0392b", "champion": "#e67e22", "alone_75": "#2a6f97", "health_unknown": "#8e44ad",
          "points": "#16a085"}


@lru_cache(maxsize=1)
def japanese_font() -> str | None:
    """The first installed Japanese font matplotlib can use, or None."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in JAPANESE_FONTS if name in names), None)


def _style() -> None:
    font = japanese_font()
    plt.rcParams.update({"font.family": [font, "DejaVu Sans"] if font else ["DejaVu Sans"],
                         "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 100,
                         "axes.unicode_minus": False, "svg.hashsalt": "mimamori"})


def text(ja: str, en: str) -> str:
    """A bilingual label when Japanese can be drawn, else English."""
    return f"{ja} / {en}" if japanese_font() and ja else en


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def precision_recall_at_k(curves: dict[str, dict], capacity: int, names: dict[str, str]) -> bytes:
    """curves: ranker -> {"k": array, "precision": array, "recall": array} (NaN where not shown)."""
    _style()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ranker, curve in curves.items():
        color = COLORS.get(ranker, NEUTRAL)
        axes[0].plot(curve["k"], curve["precision"], color=color, label=names.get(ranker, ranker), lw=1.8)
        axes[1].plot(curve["k"], curve["recall"], color=color, label=names.get(ranker, ranker), lw=1.8)
    for ax, (ja, en) in zip(axes, [("上位k人の適合率", "precision at k"), ("上位k人の再現率", "recall at k")]):
        ax.axvline(capacity, color="#444", ls="--", lw=1)
        ax.annotate(text("訪問枠", "capacity") + f" k={capacity}", (capacity, 1.0), xytext=(4, -12),
                    textcoords="offset points", fontsize=8, color="#444")
        ax.set_xlabel(text("リスト上位の人数 k", "people listed, k"))
        ax.set_ylabel(text(ja, en))
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=.3)
    axes[0].legend(fontsize=8, loc="upper right")
    fig.suptitle(text("検証月での上位k人の適合率・再現率", "Holdout precision and recall at k"), fontsize=11)
    fig.tight_layout()
    return png_bytes(fig)


def splits(rows: list[dict], current: str) -> bytes:
    """The time-honest split: one bar per as-of month from its as-of date to the end of its label
    window, coloured by role. rows: [{"month", "role" (fit|calibrate|holdout), "start", "end"}]
    with dates as pandas Timestamps."""
    import matplotlib.dates as mdates
    import pandas as pd

    _style()
    roles = {"fit": ("#2a6f97", text("学習", "fit")), "calibrate": ("#16a085", text("較正", "calibrate")),
             "holdout": ("#c0392b", text("検証", "holdout"))}
    fig, ax = plt.subplots(figsize=(8, 0.32 * max(len(rows), 4) + 1.4))
    for i, row in enumerate(rows):
        color, _ = roles[row["role"]]
        ax.barh(i, (row["end"] - row["start"]).days, left=mdates.date2num(row["start"]), height=0.6, color=color)
    from matplotlib.patches import Patch

    handles = [Patch(color=color, label=name) for color, name in roles.values()]
    now = pd.Period(current, "M").end_time.normalize()
    ax.axvline(mdates.date2num(now), color="#444", ls="--", lw=1)
    ax.annotate(text("今月末", "this month's end") + f" {current}", (mdates.date2num(now), -0.6),
                xytext=(-4, 0), textcoords="offset points", ha="right", va="center", fontsize=8, color="#444")
    ax.set_yticks(range(len(rows)), [row["month"] for row in rows], fontsize=7)
    ax.invert_yaxis()
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.set_xlabel(text("基準日からラベル期間の終わりまで", "as-of date to the end of its label window"))
    ax.set_title(text("時間を守った分割", "Time-honest split"), fontsize=10)
    ax.legend(handles=handles, fontsize=8, loc="lower left")
    ax.grid(axis="x", alpha=.3)
    fig.tight_layout()
    return png_bytes(fig)


def calibration(bins: list[dict], brier: float | None) -> bytes:
    """bins: [{"predicted": mean score, "observed": positive rate, "n": labelled rows}, …]."""
    _style()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="#999", ls="--", lw=1, label=text("完全な較正", "perfect calibration"))
    if bins:
        x = [b["predicted"] for b in bins]
        y = [b["observed"] for b in bins]
        sizes = [20 + b["n"] for b in bins]
        ax.plot(x, y, color=RISK, lw=1.5)
        ax.scatter(x, y, s=sizes, color=RISK, zorder=3, label=text("モデル", "model"))
        top = max(max(x), max(y)) * 1.15
        ax.set_xlim(0, min(1, max(top, 0.2)))
        ax.set_ylim(0, min(1, max(top, 0.2)))
    ax.set_xlabel(text("予測された確率", "predicted probability"))
    ax.set_ylabel(text("実際に要支援だった割合", "observed share needing support"))
    title = text("較正（検証月・結果のある人）", "Calibration (holdout, labelled)")
    ax.set_title(title + (f"\nBrier = {brier:.3f}" if brier is not None else ""), fontsize=10)
    ax.grid(alpha=.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return png_bytes(fig)


def shap_summary(values: np.ndarray, data: np.ndarray, labels: list[str], title: str) -> bytes:
    """Global SHAP summary: mean |contribution| per feature (left) and each person's contribution
    coloured by the feature's value (right, beeswarm-like). values, data: n × p (grouped features)."""
    _style()
    mean_abs = np.abs(values).mean(axis=0)
    order = np.argsort(mean_abs)  # ascending, so the largest is drawn at the top
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.42 * len(labels) + 1.6),
                                      gridspec_kw={"width_ratios": [1, 1.6]}, sharey=True)
    y = np.arange(len(order))
    left.barh(y, mean_abs[order], color=PROTECT)
    left.set_yticks(y, [labels[i] for i in order], fontsize=8)
    left.set_xlabel(text("平均|寄与|（対数オッズ）", "mean |SHAP| (log-odds)"))
    rng = np.random.default_rng(0)
    for row, j in enumerate(order):
        v = data[:, j].astype(float)
        finite = np.isfinite(v)
        colour = np.full(len(v), 0.5)
        if finite.any() and np.nanmax(v) > np.nanmin(v):
            ranks = v.argsort().argsort().astype(float)
            colour = ranks / max(len(v) - 1, 1)
        jitter = rng.uniform(-0.3, 0.3, len(v))
        right.scatter(values[:, j], row + jitter, c=colour, cmap="coolwarm", s=5, alpha=.6, linewidths=0,
                      vmin=0, vmax=1)
    right.axvline(0, color="#444", lw=.8)
    right.set_xlabel(text("寄与（対数オッズ、＋はリスク↑）", "SHAP value (log-odds, + raises risk)"))
    sm = plt.cm.ScalarMappable(cmap="coolwarm")
    bar = fig.colorbar(sm, ax=right, ticks=[0, 1], fraction=.04, pad=.02)
    bar.ax.set_yticklabels([text("低", "low"), text("高", "high")], fontsize=8)
    bar.set_label(text("特徴量の値", "feature value"), fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return png_bytes(fig)


def waterfall(base: float, contributions: list[tuple[str, float]], output: float, title: str) -> bytes:
    """One person's contributions from the base value to the model's log-odds, largest first."""
    _style()
    items = sorted(contributions, key=lambda kv: -abs(kv[1]))
    shown = items[:12]
    rest = sum(v for _, v in items[12:])
    if len(items) > 12:
        shown.append((text(f"その他{len(items) - 12}項目", f"{len(items) - 12} other features"), rest))
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(shown) + 1.8))
    start = base
    for row, (name, value) in enumerate(shown):
        y = len(shown) - row - 1
        ax.barh(y, value, left=start, color=RISK if value > 0 else PROTECT, height=.6)
        ax.annotate(f"{value:+.3f}", (start + value, y), xytext=(4 if value >= 0 else -4, 0),
                    textcoords="offset points", va="center", ha="left" if value >= 0 else "right", fontsize=8)
        start += value
    ax.set_yticks(range(len(shown)), [name for name, _ in reversed(shown)], fontsize=8)
    low, high = min(base, output, *np.cumsum([base] + [v for _, v in shown])), max(base, output, *np.cumsum(
        [base] + [v for _, v in shown]))
    pad = 0.12 * max(high - low, 0.5)
    ax.set_xlim(low - pad, high + pad)
    ax.axvline(base, color="#999", ls=":", lw=1)
    ax.axvline(output, color="#222", ls="--", lw=1)
    ax.set_xlabel(text("対数オッズ", "log-odds") + f"   base E[f(x)] = {base:.3f}  →  f(x) = {output:.3f}")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=.3)
    fig.tight_layout()
    return png_bytes(fig)
