"""How a figure or a count of people reads in a report table (one way, for every section)."""
from __future__ import annotations


def figure_text(value) -> str:
    """A figure as shown: three decimals for a rate, "—" when it could not be computed."""
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def count_text(n: int, threshold: int) -> str:
    """A count of people as shown: 1 … threshold-1 people are "<threshold" (small-cell suppression)."""
    return f"<{threshold}" if 0 < int(n) < threshold else str(int(n))
