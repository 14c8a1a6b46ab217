"""Pid ranges: every pseudonym is in exactly one range, and bucket_of names it (issue 17's Spark
engine groups by bucket_of, the local engine filters by PidRange: they must agree on the edges)."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from contract.partitions import SPACE, PidRange, bucket_of

pids = st.text("0123456789abcdef", min_size=32, max_size=32)
counts = st.integers(1, 97)


def _in(pid: str, count: int) -> list[int]:
    return [i for i in range(count) if PidRange(i, count).mask(pa.array([pid])).to_pylist()[0]]


@given(pid=pids, count=counts)
def test_every_pseudonym_is_in_exactly_the_range_bucket_of_names(pid, count):
    assert _in(pid, count) == [bucket_of(pid, count)]


@given(count=counts, data=st.data())
def test_a_pseudonym_on_a_boundary_lands_in_the_range_that_starts_there(count, data):
    i = data.draw(st.integers(0, count - 1))
    low = PidRange(i, count).bounds()[0] or "00000000"
    for pid in (low + "0" * 24, f"{max(int(low, 16) - 1, 0):08x}" + "f" * 24):
        assert _in(pid, count) == [bucket_of(pid, count)]
    assert bucket_of(low + "0" * 24, count) == i
    assert int(low, 16) < SPACE


@given(count=counts, frame_pids=st.lists(pids, max_size=40, unique=True))
def test_the_ranges_of_a_pid_sorted_table_concatenate_to_the_whole_table(count, frame_pids):
    frame = pd.DataFrame({"pid": pd.Series(sorted(frame_pids), dtype="str"), "n": range(len(frame_pids))})
    parts = [PidRange(i, count).rows_of(frame) for i in range(count)]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), frame)
