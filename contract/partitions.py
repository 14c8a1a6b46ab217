"""Pid ranges: the ward's people cut into equal shares by their pseudonym.

Pseudonyms are uniformly distributed HMAC outputs (32 lowercase hex digits), so cutting the
range of their first eight hex digits, [0, 16⁸), into `count` equal shares gives partitions of
about equal size; and they are contiguous ranges in pid order, so concatenating ranges
0 … count-1 of a pid-sorted table gives the whole table in pid order. A distributed engine
groups by `bucket_of(pid, count)`, the exact inverse of `PidRange(i, count).bounds()`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

SPACE = 16**8   # the values of a pseudonym's first eight hex digits


@dataclass(frozen=True)
class PidRange:
    """Range `index` of `count` equal ranges of pseudonyms; `PidRange()` is everybody."""

    index: int = 0
    count: int = 1

    def bounds(self) -> tuple[str | None, str | None]:
        """(lowest pid prefix in the range, first prefix above it); None where the range is open."""
        low = None if self.index == 0 else f"{self.index * SPACE // self.count:08x}"
        high = None if self.index == self.count - 1 else f"{(self.index + 1) * SPACE // self.count:08x}"
        return low, high

    def mask(self, pids: pa.ChunkedArray | pa.Array) -> pa.Array:
        """Which of these pseudonyms lie in the range (all of them for everybody)."""
        low, high = self.bounds()
        keep = pa.array(np.ones(len(pids), dtype=bool))
        if low is not None:   # same-width lowercase hex: string order is numeric order
            keep = pc.and_(keep, pc.greater_equal(pids, low))
        if high is not None:
            keep = pc.and_(keep, pc.less(pids, high))
        return pc.fill_null(keep, False)

    def rows_of(self, frame: pd.DataFrame | None) -> pd.DataFrame | None:
        """The frame's rows of people in the range."""
        if frame is None or self.count == 1:
            return frame
        keep = self.mask(pa.array(frame["pid"].array)).to_numpy(zero_copy_only=False)
        return frame[keep].reset_index(drop=True)


def bucket_of(pid: str, count: int) -> int:
    """The index of the range of `count` that holds `pid`: the inverse of PidRange.bounds."""
    prefix = int(pid[:8], 16)
    index = prefix * count // SPACE
    # integer division can put a prefix on a boundary one range low; bounds() rounds down too
    while index + 1 < count and prefix >= (index + 1) * SPACE // count:
        index += 1
    while index > 0 and prefix < index * SPACE // count:
        index -= 1
    return index
