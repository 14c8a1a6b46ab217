"""Ingest ahead: during a backfill, a second process ingests the coming months while this one
runs the later stages of earlier ones.

Every stage after ingest is single-threaded Python for most of its time, so a backfill used
one of the machine's cores. Ingesting month m+1 needs only the lake up to month m, and the
stages of month m need only the lake up to m, so the two can overlap. The helper is only an
accelerator: `run_month` still checks that every month it needs is ingested (the delivery
record, written last, names the same files and key) and ingests any month the helper did not
finish, so its failure, crash or absence changes nothing but the time taken. A month is never
written by both processes: the stages of month m start only after the helper has reported m
(done or failed) or has exited.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import threading
import time
from typing import Any

from contract import faults
from pipelines.config import Config
from pipelines.resources import peak_rss, release_memory


PR_SET_PDEATHSIG = 1   # <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Never outlive the process that started us (kill -9 of `run` must not leave a writer
    behind, still committing months while the rerun holds the work lock).

    Linux: the kernel sends us SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG; it fires
    when the *thread* that started us ends, and IngestAhead is started from the batch's thread,
    which lives as long as the batch). Elsewhere, and for the moment before prctl took effect,
    a watcher thread checks that our parent is still the one that started us.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):   # not Linux: the watcher alone
        pass
    if os.getppid() != parent:   # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="mimamori-parent-watch", daemon=True).start()


def _ingest_months(cfg: Config, months: list[str], reports: Any, stop: Any, parent: int | None = None) -> None:
    """The helper process: ingest `months` in order; report each; stop at the first failure."""
    if parent is not None:
        _die_with_parent(parent)
    # Fault injection targets `run` itself (hit counts would differ between the two processes).
    os.environ.pop(faults.KILL_VAR, None)
    os.environ.pop(faults.ENOSPC_VAR, None)
    os.environ.pop(faults.TRACE_VAR, None)
    # loaded in the helper process only, after its environment is set: the parent has them already
    from pipelines.ingest import ingest_month
    from pipelines.pseudonymise import load_key

    key = load_key(cfg.key_file)
    for month in months:
        if stop.is_set():
            return
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            with peak_rss() as memory:
                status = ingest_month(cfg, month, key, build_docs=False)["status"]
        except BaseException as exc:   # the main process re-runs the month and reports the error itself
            reports.put((month, {"status": "failed", "error": type(exc).__name__}))
            return
        reports.put((month, {"status": status, "seconds": round(time.perf_counter() - wall, 3),
                             "cpu_seconds": round(time.process_time() - cpu, 3),
                             "peak_rss_mb": memory["peak_mb"]}))
        release_memory()


class IngestAhead:
    """Start the helper on `months`; `wait_for(month)` blocks until it has dealt with `month`."""

    def __init__(self, cfg: Config, months: list[str]):
        # spawn, not fork: this process may already run threads (Arrow's pools, the RSS sampler)
        context = multiprocessing.get_context("spawn")
        self._reports = context.Queue()
        self._stop = context.Event()
        self._seen: dict[str, dict] = {}
        self._process = context.Process(target=_ingest_months,
                                        args=(cfg, months, self._reports, self._stop, os.getpid()),
                                        name="mimamori-ingest-ahead", daemon=True)
        self._process.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _drain(self, timeout: float) -> bool:
        try:
            month, info = self._reports.get(timeout=timeout)
        except queue.Empty:
            return False
        self._seen[month] = info
        return True

    def wait_for(self, month: str) -> dict | None:
        """The helper's report on `month` (None if it stopped before reaching it)."""
        while month not in self._seen:
            if not self._drain(1.0) and not self._process.is_alive():
                while self._drain(0.1):   # reports sent just before it exited
                    pass
                break
        return self._seen.get(month)

    def close(self) -> None:
        """Let the helper finish the month it is writing, then end it."""
        self._stop.set()
        self._process.join(timeout=600)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._reports.close()
