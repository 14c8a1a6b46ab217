"""Fault injection for the crash and disk-full tests; inert unless its environment variable is set.

Code calls `checkpoint(name)` at the moments a crash matters: `stage:<stage>` when a stage of
`run` starts, `writing:<file name>` when a temporary file is complete but not yet renamed, and
`written:<file name>` when the rename is durable (contract/storage.atomic_path).

    MIMAMORI_KILL_AT=written:list.parquet      SIGKILL this process at the first such checkpoint
    MIMAMORI_KILL_AT=written:2026-02.parquet#3 ... at the third hit of that checkpoint
    MIMAMORI_ENOSPC_AT=writing:scores.parquet  raise OSError(ENOSPC) there instead (a full disk)

    MIMAMORI_FAULT_TRACE=/tmp/trace.txt        append each checkpoint reached ("name#n") to a file

Several targets may be given, separated by commas. SIGKILL cannot be caught, flushed or
cleaned up after: exactly what `kill -9` or the OOM killer does. The ingest-ahead helper
process drops these variables (pipelines/ahead.py), so hit counts are those of `run` itself.
"""
from __future__ import annotations

import errno
import os
import signal
from collections import Counter

KILL_VAR, ENOSPC_VAR, TRACE_VAR = "MIMAMORI_KILL_AT", "MIMAMORI_ENOSPC_AT", "MIMAMORI_FAULT_TRACE"
_hits: Counter[str] = Counter()


def _matches(spec: str, name: str, hits: int) -> bool:
    for target in spec.split(","):
        wanted, _, nth = target.strip().partition("#")
        if wanted == name and hits == (int(nth) if nth else 1):
            return True
    return False


def checkpoint(name: str) -> None:
    """Kill the process or raise ENOSPC here if the environment asks for it; otherwise nothing."""
    kill, enospc, trace = os.environ.get(KILL_VAR), os.environ.get(ENOSPC_VAR), os.environ.get(TRACE_VAR)
    if not kill and not enospc and not trace:
        return
    _hits[name] += 1
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(f"{name}#{_hits[name]}\n")
    if kill and _matches(kill, name, _hits[name]):
        os.kill(os.getpid(), signal.SIGKILL)
    if enospc and _matches(enospc, name, _hits[name]):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
