"""How a figure reads in a report table (one way, for every section; counts of people and rates
read through the disclosure pass, reports/disclosure.py)."""
from __future__ import annotations


def figure_text(value) -> str:
    """A figure as shown: three decimals for a rate, "—" when it could not be computed."""
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)

