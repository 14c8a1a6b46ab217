"""Peak resident memory of this process during a block, sampled from /proc (Linux).

`resource.getrusage` only gives the peak since the process started, which cannot tell one
stage from the next; a light sampling thread can.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except OSError:
        return 0


@contextmanager
def peak_rss(interval: float = 0.05) -> Iterator[dict]:
    """Yield a dict whose "peak_mb" holds the highest RSS seen while the block ran."""
    result = {"peak_mb": rss_bytes() / 2**20}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            result["peak_mb"] = max(result["peak_mb"], rss_bytes() / 2**20)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result["peak_mb"] = round(max(result["peak_mb"], rss_bytes() / 2**20), 1)
