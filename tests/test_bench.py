"""`mimamori bench` on a tiny ward: every stage timed, floors beside them, the table rebuilt."""
from __future__ import annotations

from pipelines.bench import NOTES_MARKER, STAGES, run_bench, write_results


def test_the_bench_times_every_stage_with_its_floor_and_keeps_the_notes(tmp_path):
    result = run_bench(tmp_path / "ward", residents=1500, months=3, seed=5)
    for phase, months in (("backfill", 2), ("incremental", 1)):
        p = result[phase]
        assert p["months"] == months and p["peak_rss_mb"] > 0
        assert set(p["stages"]) == set(STAGES) and set(p["stage_floors"]) == set(STAGES)
        # a floor is a lower bound: reading the extracts once is faster than ingesting them
        assert 0 <= p["stage_floors"]["ingest"] <= p["stages"]["ingest"]["seconds"]
    docs = tmp_path / "benchmarks.md"
    docs.write_text("old table\n" + NOTES_MARKER + "\nhand-written notes\n", encoding="utf-8")
    path = write_results(result, tmp_path / "results", docs)
    text = docs.read_text(encoding="utf-8")
    assert path.exists() and "1,500 residents × 3 months" in text and text.count("| ↳ floor |") == 2
    assert "old table" not in text and text.endswith("hand-written notes\n")
