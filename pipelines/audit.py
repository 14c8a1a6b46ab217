"""The custody zone's append-only audit log: JSON lines, each carrying the SHA-256 of the previous line.

An edited, deleted or reordered entry breaks the chain, which `verify` reports.
"""
from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def _last_hash(path: Path) -> str:
    if not path.exists() or path.stat().st_size == 0:
        return GENESIS
    last = path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return hashlib.sha256(last).hexdigest()


def append(path: Path, event: str, **details: Any) -> dict:
    """Append one entry; details must hold no identifier (pseudonyms and counts only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        # Two processes may append at once (ingest ahead, or two commands): the lock keeps
        # "read the last line's hash, write after it" whole, so the chain cannot fork.
        fcntl.flock(handle, fcntl.LOCK_EX)
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "event": event,
            "user": getpass.getuser(),
            **details,
            "prev": _last_hash(path),
        }
        handle.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        handle.flush()
    return entry


def verify(path: Path) -> list[str]:
    """Return the problems found (empty when the chain is intact)."""
    problems: list[str] = []
    if not path.exists():
        return problems
    previous = GENESIS
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"line {number}: not JSON")
            previous = hashlib.sha256(line).hexdigest()
            continue
        if entry.get("prev") != previous:
            problems.append(f"line {number}: chain broken (an entry before it was edited, removed or moved)")
        previous = hashlib.sha256(line).hexdigest()
    return problems


def entries(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
