"""The golden run: what the monthly batch writes, reduced to one digest per file.

A fixed ward (the session's messy 6,000 × 14 ward, fixed key) is run end to end and released
to every recipient; every file under the work dir except MLflow's own store, and every
released sheet, is hashed after masking what legitimately changes between two runs of the
same program: MLflow run ids, wall-clock and CPU timings, memory peaks, the git commit, the
time of day of approvals and releases, and GX's run stamps. Two runs of the same code give
the same digests; a refactoring that changes any output changes one.

    python -m tests.golden record   # rewrite tests/golden/messy.json from a fresh run
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

GOLDEN = Path(__file__).with_name("golden") / "messy.json"

# 32-hex MLflow run ids and uuid4 forms; ISO datetimes (GX stamps, release times); git short
# hashes in "git abcdef0" form; timings in JSON.
_RUN_ID = re.compile(rb"\b[0-9a-f]{32}\b")
_UUID = re.compile(rb"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_STAMP = re.compile(rb"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
_COMPACT_STAMP = re.compile(rb"\d{8}T\d{6}(\.\d+)?Z?")
_GIT = re.compile(rb"git [0-9a-f]{7,12}|git unknown")
_SECONDS = re.compile(rb"<br>[0-9.]+ s<")
# JSON keys whose values are timings, times of day, or digests of files that hold run ids
# (the manifest's `outputs`), of workbooks (their zip stamps) or of the time-stamped audit chain.
_TIMING_KEYS = {"seconds", "cpu_seconds", "peak_rss_mb", "peak_mb", "since", "released", "approved_at",
                "at", "time", "started", "finished", "expires", "outputs", "audit_head"}


def _mask_json(value):
    if isinstance(value, dict):
        return {k: ("<masked>" if k in _TIMING_KEYS or k.endswith(".xlsx") else _mask_json(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    return value


def _mask_text(data: bytes, roots: list[Path]) -> bytes:
    for root in roots:   # where the ward was built and where it is now (a copy names its original)
        data = data.replace(str(root.resolve()).encode(), b"<root>").replace(str(root).encode(), b"<root>")
    for pattern, token in ((_RUN_ID, b"<run>"), (_UUID, b"<uuid>"), (_STAMP, b"<time>"),
                           (_COMPACT_STAMP, b"<time>"), (_GIT, b"git <commit>"), (_SECONDS, b"<br><s><")):
        data = pattern.sub(token, data)
    return data


def _xlsx_digest(path: Path) -> str:
    """A workbook's members except its creation/modification times (docProps/core.xml)."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as z:
        for name in sorted(z.namelist()):
            if name != "docProps/core.xml":
                digest.update(name.encode() + b"\0" + z.read(name))
    return digest.hexdigest()


def file_digest(path: Path, roots: list[Path]) -> str:
    if path.suffix == ".xlsx":
        return _xlsx_digest(path)
    data = path.read_bytes()
    if path.suffix in (".json", ".jsonl"):
        try:
            lines = [json.loads(line) for line in data.splitlines() if line.strip()] if path.suffix == ".jsonl" \
                else [json.loads(data)]
            data = b"\n".join(json.dumps(_mask_json(v), sort_keys=True, ensure_ascii=False).encode() for v in lines)
        except ValueError:
            pass
        return hashlib.sha256(_mask_text(data, roots)).hexdigest()
    if path.suffix in (".html", ".htm", ".txt", ".csv", ".md", ".css", ".js", ".xml"):
        return hashlib.sha256(_mask_text(data, roots)).hexdigest()
    return hashlib.sha256(data).hexdigest()


# Not hashed: MLflow's own store (run ids and times in its database and artifact folders) and
# lock files. Of the custody zone only the released sheets are hashed: its audit log chains
# times of day into its MACs. The Data Docs are hashed (built from the GX results,
# whose run times are the delivery's knowledge date, so they are deterministic).
SKIP_PARTS = {"mlflow"}


def digests(root: Path, *, under: str, built_at: Path | None = None) -> dict[str, str]:
    base = root / under
    out = {}
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base)
        if SKIP_PARTS & set(rel.parts) or path.name.endswith(".lock"):
            continue
        out[f"{under}/{rel.as_posix()}"] = file_digest(path, [root] + ([built_at] if built_at else []))
    return out


def golden_digests(ward_root: Path, built_at: Path | None = None) -> dict[str, str]:
    """Digests of the work dir and of the custody zone's released sheets, after two approvals
    and a release to every recipient (the caller's copy of the ward is changed)."""
    from pipelines.config import load_config
    from pipelines.release import RECIPIENTS, release
    from tests.approving import approve_as

    cfg = load_config(ward_root / "mimamori.toml", ward_root / "inbox", ward_root / "work", ward_root / "custody",
                      environ={})
    month = sorted(p.name for p in cfg.runs.iterdir() if (p / "manifest.json").exists())[-1]
    approve_as(cfg, month, "A", "個人情報保護法第69条第2項第2号", "見守り訪問")
    approve_as(cfg, month, "B", "社会福祉法第106条の6 支援会議", "見守り訪問")
    for recipient in RECIPIENTS:
        release(cfg, month, recipient)
    out = digests(ward_root, under="work", built_at=built_at)
    out |= {k: v for k, v in digests(ward_root, under="custody", built_at=built_at).items()
            if k.startswith("custody/releases/")}
    return out


if __name__ == "__main__":
    import sys
    import tempfile

    if sys.argv[1:] != ["record"]:
        raise SystemExit("usage: python -m tests.golden record")
    from tests.conftest import build_golden_ward

    with tempfile.TemporaryDirectory() as tmp:
        root = build_golden_ward(Path(tmp))
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(golden_digests(root), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
