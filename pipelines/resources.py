"""Peak resident memory of this process during a block, sampled from /proc (Linux).

`resource.getrusage` only gives the peak since the process started, which cannot tell one
stage from the next; a light sampling thread can.
"""
from __future__ import annotations

import ctypes
import os
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(pid: str = "self") -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except OSError:
        return 0


def _children(pid: str = "self") -> list[str]:
    pids: list[str] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                pids += handle.read().split()
    except OSError:
        pass
    return pids


def descendants_rss() -> dict[str, int]:
    """RSS in bytes of every process below this one (children, their children, …), summed by
    command name: a Spark driver's JVM ("java") and the Python workers it forks ("python…")."""
    totals: dict[str, int] = {}
    todo = _children()
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/comm") as handle:
                name = handle.read().strip()
        except OSError:   # ended meanwhile
            continue
        totals[name] = totals.get(name, 0) + rss_bytes(pid)
        todo += _children(pid)
    return totals


def rss_with_children() -> int:
    """RSS of this process plus its direct children (e.g. the ingest-ahead helper)."""
    return rss_bytes() + sum(rss_bytes(pid) for pid in _children())


@contextmanager
def sampling(sample: Callable[[], None], interval: float) -> Iterator[None]:
    """Call `sample` every `interval` seconds in a background thread while the block runs, and
    once more when it ends (so a peak in the block's last moments is seen)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            sample()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sample()


@contextmanager
def peak_rss(interval: float = 0.05, children: bool = False) -> Iterator[dict]:
    """Yield a dict whose "peak_mb" holds the highest RSS seen while the block ran (with
    `children`, of this process and its children together)."""
    measure = rss_with_children if children else rss_bytes
    result = {"peak_mb": measure() / 2**20}

    def sample() -> None:
        result["peak_mb"] = max(result["peak_mb"], measure() / 2**20)

    with sampling(sample, interval):
        yield result
    result["peak_mb"] = round(result["peak_mb"], 1)


def release_memory() -> None:
    """Hand memory freed by a stage back to the system.

    Arrow's allocator (mimalloc) and glibc's malloc both keep freed blocks for reuse; across the
    months of one `run --all` at a million residents that kept ≈ 460 MB (Arrow) and ≈ 100 MB
    (malloc) more per process than the next stage needed, and the baseline crept upwards
    month after month. Cheap (milliseconds) next to a stage.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc: nothing to trim
        pass
