"""Rewrite the shipped GX suites (expectations/suites/*.json) from expectations/suite_spec.py.

    python -m pipelines.write_suites

A developer's command, run after changing a suite's spec; tests/test_validation.py fails while
a shipped file differs from its spec.
"""
from __future__ import annotations

from expectations.suite_spec import SUITES_DIR, all_suites, render


def write_all() -> None:
    SUITES_DIR.mkdir(exist_ok=True)
    for name, spec in all_suites().items():
        (SUITES_DIR / f"{name}.json").write_text(render(spec), encoding="utf-8")


if __name__ == "__main__":
    write_all()
