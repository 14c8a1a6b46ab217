"""One batch at a time: advisory locks on the work dir and on the custody zone.

    <work>/.mimamori.lock      held by run, ingest, validate, explain, truth-check, scan-pii, rekey,
                               approve, release (pipelines/cli.py ZONE_LOCKS)
    <custody>/.mimamori.lock   held by approve, release, purge, rekey, outcomes

The lock is `fcntl.flock` on an open descriptor, so the kernel releases it when its process
dies, however it dies (kill -9, OOM, power cut): a lock file left behind by a dead process is
not a held lock, and the next command simply takes it. The file holds the holder's description
as one JSON object, rewritten by each new holder, so that a refused command can say who holds it:

    {"command": "mimamori run --all", "host": "ward-batch-01", "pid": 4242,
     "since": "2026-12-01T23:40:12+00:00"}

A second command refuses at once (`LockHeld`, one line naming the holder) unless it was asked to
wait (`mimamori run --wait`). Locks are re-entrant within a process (run_months inside a CLI
command that already holds the work lock). The lock file stays after release: unlinking a
flock'ed file lets a third process lock a new file of the same name while the second still
holds the old one.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from contract.messages import bilingual
from pipelines.config import Config
from contract.storage import sweep_temps

LOCK_NAME = ".mimamori.lock"

# resolved lock path -> [open descriptor, depth], for re-entry within this process
_held: dict[str, list[int]] = {}


class LockHeld(Exception):
    """Another live process holds the lock of a zone."""


def _command() -> str:
    return " ".join(["mimamori", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "mimamori (library call)"


def holder(path: Path) -> dict:
    """The description the current (or last) holder wrote into the lock file ({} if none)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _describe(info: dict) -> str:
    if not info:
        return "another process (it has not written its name yet)"
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')} "
            f"(`{info.get('command', '?')}`, since {info.get('since', '?')})")


@contextmanager
def zone_lock(folder: Path, zone: str, wait: bool = False, sweep: tuple[Path, ...] = (),
              mode: int = 0o777) -> Iterator[Path]:
    """Hold the lock of `folder` for the block; LockHeld at once if another process holds it
    (or, with `wait`, block until it is free). Once taken, temporary files a killed writer left
    under `sweep` are removed: only holders of this lock write there, so none is live."""
    folder.mkdir(parents=True, exist_ok=True, mode=mode)
    path = folder / LOCK_NAME
    key = str(path.resolve())
    if key in _held:
        _held[key][1] += 1
        try:
            yield path
        finally:
            _held[key][1] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockHeld(bilingual(
                f"{folder} は別の処理（{_describe(holder(path))}）が使用中です。終わるのを待って再実行してください"
                "（`mimamori run` なら --wait で後ろに並べます）",
                f"the {zone} {folder} is in use by {_describe(holder(path))}: wait for it to "
                "finish and rerun (or add --wait to `mimamori run` to queue behind it)")) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command(),
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info, sort_keys=True) + "\n").encode("utf-8"), 0)
        _held[key] = [fd, 1]
        for root in sweep:
            sweep_temps(root)
        try:
            yield path
        finally:
            del _held[key]
    finally:
        os.close(fd)   # closing the descriptor releases the flock


def work_lock(cfg: Config, wait: bool = False):
    """The analyst zone's lock: one batch (run, ingest, rekey) writes the work dir at a time."""
    return zone_lock(cfg.work, "work dir", wait, sweep=(cfg.work, cfg.leakscan_cache))


def custody_lock(cfg: Config, wait: bool = False):
    """The custody zone's lock: approvals, releases, purges and key rotation one at a time."""
    return zone_lock(cfg.custody, "custody zone", wait, sweep=(cfg.approvals_dir, cfg.releases_dir), mode=0o700)
