"""Atomic, durable writes: a stage's output appears whole or not at all, so a rerun never trusts half a file.

Every write goes to a temporary sibling (`.<name>.<random>.tmp`), is fsynced, renamed over the
target, and the folder is fsynced so that the rename itself survives a power cut. A crash
leaves at most a stray temporary file, which no reader ever opens (they are swept at the start
of the next run, under the work lock: `sweep_temps`). A disk that fills up mid-write raises
`DiskFull` naming the file; the temporary file is removed and the target keeps its old bytes.

Files a later stage must be able to trust (lake, quarantine, feature tables) are fingerprinted
when written (`write_parquet` returns the SHA-256 of the bytes it committed) and checked when
read (`file_sha256`, remembered per process while the file's status is unchanged, so a backfill
hashes each file once, not once per read).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contract import faults
from contract.messages import NOT_JSON, NOT_PARQUET, RERUN, damaged

TEMP_GLOB = ".*.tmp"   # the names atomic_path gives its temporary files


class DiskFull(Exception):
    """A write failed for lack of space; nothing half-written was kept."""


class DataDamaged(Exception):
    """A stored file does not match the fingerprint recorded when it was committed (or cannot be read)."""


def free_space_text(folder: Path) -> str:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "free space unknown"
    return f"{free / 2**20:,.1f} MB free"


def is_disk_full(exc: BaseException) -> bool:
    """True if `exc` or anything it was raised from is a full disk or quota (any library's wording)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFull):
            return True
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(current)
        # pyarrow and SQLite (MLflow's store) do not always carry the errno
        if "No space left on device" in text or "database or disk is full" in text or "Disk quota exceeded" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full(path: Path) -> DiskFull:
    return DiskFull(f"no space left to write {path} ({free_space_text(path.parent)}): nothing half-written "
                    "was kept; free space on that disk and rerun the same command")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; fsync it and rename it over `path` only if the block succeeds.

    Fault-injection checkpoints (contract/faults.py): `writing:<name>` once the temporary file
    is complete but not yet renamed, `written:<name>` once the rename is durable.
    """
    tmp_path: Path | None = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            tmp_path = Path(tmp)
            yield tmp_path
            faults.checkpoint(f"writing:{path.name}")
            _fsync_file(tmp_path)
            os.replace(tmp_path, path)
            _fsync_dir(path.parent)
        except Exception as exc:
            if is_disk_full(exc) and not isinstance(exc, DiskFull):
                raise disk_full(path) from exc
            raise
        faults.checkpoint(f"written:{path.name}")
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def sweep_temps(root: Path) -> list[Path]:
    """Remove temporary files a killed writer left under `root` (call only while holding the
    lock of the zone, so that no live writer's temporary file is taken)."""
    removed = []
    if root.is_dir():
        for path in root.rglob(TEMP_GLOB):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
        # Data Docs are built in a hidden sibling folder and swapped in whole (pipelines/catalog/validation.py)
        for path in root.glob("runs/*/.data_docs.*"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


# (path, device, inode, size, mtime_ns, ctime_ns) -> SHA-256 of the file's bytes, for this process.
# An atomic replace gives a new inode and any in-place change moves ctime, so an unchanged status
# means unchanged bytes.
_DIGESTS: dict[tuple, str] = {}


def _stamp(path: Path) -> tuple:
    st = path.stat()
    return (str(path.absolute()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of the file (hashed once per process while its status is unchanged)."""
    stamp = _stamp(path)
    if stamp in _DIGESTS:
        return _DIGESTS[stamp]
    value = _hash(path)
    after = _stamp(path)
    # Remembered only if not written while hashed and settled for 2 s, so a coarse timestamp
    # clock cannot hide an in-place rewrite (as git does against "racy" index entries).
    settled = time.time_ns() - max(after[4], after[5]) > 2_000_000_000
    if settled and after == stamp:
        _DIGESTS[stamp] = value
    return value


def write_parquet(df: pd.DataFrame, path: Path) -> str:
    """Write `df` atomically; return the SHA-256 of the bytes committed (for the commit's record)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    # Deterministic bytes: no pandas metadata that records versions or index ranges.
    table = table.replace_schema_metadata(None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
        digest = _hash(tmp)
    # This process wrote these bytes: no need to hash them again when it reads them back.
    _DIGESTS[_stamp(path)] = digest
    return digest


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        return pq.read_table(path, columns=columns).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:   # missing, unreadable: not damage
            raise
        raise DataDamaged(damaged(path, ("ファイル", "file"), NOT_PARQUET, RERUN)) from exc


def write_json(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n",
                       encoding="utf-8")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataDamaged(damaged(path, ("ファイル", "file"), NOT_JSON, RERUN)) from exc


def write_text(text: str, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(data: bytes, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
