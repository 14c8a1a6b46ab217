"""The custody zone's append-only audit log: JSON lines in an HMAC chain, sealed by an anchor.

Each entry carries
  seq   its 1-based position in the log,
  prev  HMAC-SHA-256(audit key, the previous line's bytes) (GENESIS for the first entry),
  mac   HMAC-SHA-256(audit key, the entry's canonical JSON without "mac").
The audit key is a custody secret of its own (custody/key/audit.key, 0600), never the
pseudonymisation key: whoever can read the log cannot append a well-chained forgery without it.
An edited, deleted, inserted or reordered entry breaks a MAC or the chain. The chain cannot show
that its *last* lines were cut off, so every append also rewrites the anchor (custody/audit.anchor:
count of entries and the link after the last one, itself MACed) under the same lock, and release
records seal the head they saw; `verify` compares the log with both.

Logs written before the chain was keyed (entries without "mac", prev = SHA-256 of the previous
line) still verify: their hash chain is checked, and the first keyed entry's prev seals them.
"""
from __future__ import annotations

import fcntl
import getpass
import hashlib
import hmac
import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from contract.storage import read_json
from pipelines.custody import private_dir
from pipelines.pseudonymise import KeyProblem, read_secret

GENESIS = "0" * 64
SECRET_BYTES = 32


class AuditProblem(KeyProblem):
    """The audit log cannot be appended to safely (its key or anchor is missing or does not match).

    A KeyProblem, so the CLI reports it as one line and exits 2: the batch stops rather than
    writing past a log that was shortened or whose key was lost.
    """


def secret_path(log: Path) -> Path:
    """custody/key/audit.key beside custody/audit.jsonl."""
    return log.parent / "key" / "audit.key"


def anchor_path(log: Path) -> Path:
    """custody/audit.anchor beside custody/audit.jsonl."""
    return log.with_suffix(".anchor")


def create_secret(log: Path) -> Path:
    """Write a new audit key (0600) if none exists; returns its path. Never overwrites."""
    path = secret_path(log)
    if path.exists():
        return path
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:   # another process made it first
        return path
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(SECRET_BYTES) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path


def _load_secret(log: Path) -> bytes | None:
    path = secret_path(log)
    if not path.exists():
        return None
    return read_secret(path, "audit key", AuditProblem)


def _link(secret: bytes, line: bytes) -> str:
    return hmac.new(secret, b"mimamori:audit-link:" + line, hashlib.sha256).hexdigest()


def _canonical(entry: dict) -> bytes:
    body = {k: v for k, v in entry.items() if k != "mac"}
    return json.dumps(body, ensure_ascii=False, sort_keys=True).encode()


def _entry_mac(secret: bytes, entry: dict) -> str:
    return hmac.new(secret, b"mimamori:audit-entry:" + _canonical(entry), hashlib.sha256).hexdigest()


def _anchor_mac(secret: bytes, entries: int, head: str) -> str:
    return hmac.new(secret, f"mimamori:audit-anchor:{entries}:{head}".encode(), hashlib.sha256).hexdigest()


def _read_anchor(log: Path) -> dict | None:
    path = anchor_path(log)
    if not path.exists():
        return None
    try:
        anchor = json.loads(path.read_text(encoding="utf-8"))
        return {"entries": int(anchor["entries"]), "head": str(anchor["head"]), "mac": str(anchor["mac"])}
    except (ValueError, KeyError, TypeError):
        return {"entries": -1, "head": "", "mac": ""}


def _write_anchor(log: Path, secret: bytes, entries: int, head: str) -> None:
    path = anchor_path(log)
    tmp = path.with_name(f".{path.name}.tmp")
    body = {"entries": entries, "head": head, "mac": _anchor_mac(secret, entries, head)}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(body, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _is_keyed(line: bytes) -> bool:
    if b'"mac"' not in line:
        return False
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and "mac" in entry


def _head(lines: list[bytes], secret: bytes) -> str:
    """The link after the last line: the next entry's prev (keyed, whatever the last line was)."""
    return _link(secret, lines[-1]) if lines else GENESIS


def _keyed(lines: list[bytes]) -> bool:
    return any(_is_keyed(line) for line in lines)


def _appendable(path: Path, lines: list[bytes], create: bool) -> bytes:
    """The audit key, if an entry may be appended after `lines`; else AuditProblem naming why."""
    secret = _load_secret(path)
    if secret is None:
        if _keyed(lines) or anchor_path(path).exists():
            raise AuditProblem(f"the audit key {secret_path(path)} is missing but the audit log is keyed: "
                               "restore the key from the custody backup (a new key would break the chain)")
        if not create:
            return b""
        create_secret(path)
        secret = _load_secret(path)
        assert secret is not None
    anchor = _read_anchor(path)
    if anchor is None:
        if _keyed(lines):
            raise AuditProblem(f"the audit anchor {anchor_path(path)} is missing: run `mimamori audit verify` "
                               "and restore the anchor from the custody backup before anything more is logged")
        return secret   # a new or pre-anchor log: the anchor starts here (trust on first use)
    n = anchor["entries"]
    ok = (anchor["mac"] == _anchor_mac(secret, n, anchor["head"]) and 0 <= n <= len(lines)
          and _head(lines[:n], secret) == anchor["head"])
    if ok and len(lines) == n + 1:
        # one entry past the anchor is a crash between the two writes of an append, if that
        # entry is genuine (its MAC and link verify); a forged last line is not
        try:
            last = json.loads(lines[-1])
            ok = (isinstance(last, dict) and last.get("prev") == anchor["head"]
                  and hmac.compare_digest(str(last.get("mac")), _entry_mac(secret, last)))
        except ValueError:
            ok = False
    elif ok:
        ok = len(lines) == n
    if not ok:
        raise AuditProblem(f"the audit log {path} does not match its anchor {anchor_path(path)}: "
                           "it was shortened, emptied or rewritten; run `mimamori audit verify` and "
                           "restore both from the custody backup")
    return secret


def ready(path: Path) -> None:
    """Raise AuditProblem now if an append would be refused, before a step does what it must log."""
    lines = path.read_bytes().splitlines() if path.exists() else []
    _appendable(path, lines, create=False)


def append(path: Path, event: str, **details: Any) -> dict:
    """Append one entry; details must hold no identifier (pseudonyms and counts only)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as handle:
        # Two processes may append at once (ingest ahead, or two commands): the lock keeps
        # "read the head, write after it, move the anchor" whole, so the chain cannot fork.
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        lines = handle.read().splitlines()
        secret = _appendable(path, lines, create=True)
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "event": event,
            "user": getpass.getuser(),
            **details,
            "seq": len(lines) + 1,
            "prev": _head(lines, secret),
        }
        entry["mac"] = _entry_mac(secret, entry)
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode()
        handle.write(line + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
        _write_anchor(path, secret, len(lines) + 1, _link(secret, line))
    return entry


def head(path: Path) -> dict:
    """The anchor's count and head link, to seal into a release record: {"entries", "head"}."""
    anchor = _read_anchor(path)
    if anchor is None:
        return {"entries": 0, "head": GENESIS}
    return {"entries": anchor["entries"], "head": anchor["head"]}


def verify(path: Path, seals: Iterable[tuple[str, dict]] = ()) -> list[str]:
    """Return the problems found (empty when the chain, its anchor and the seals agree).

    `seals` are (where, {"entries": n, "head": link}) pairs recorded elsewhere (release records):
    the log must still hold n entries whose last link is `head`.
    """
    problems: list[str] = []
    anchor = _read_anchor(path)
    lines = path.read_bytes().splitlines() if path.exists() else []
    try:
        secret = _load_secret(path)
    except AuditProblem as exc:
        return [str(exc)]
    if not path.exists():
        if anchor is not None and anchor["entries"] > 0:
            problems.append(f"the audit log {path} is missing, but its anchor says {anchor['entries']} entries existed")
    elif not lines and anchor is not None and anchor["entries"] > 0:
        problems.append(f"the audit log is empty, but its anchor says {anchor['entries']} entries existed")
    if secret is None:
        if _keyed(lines) or anchor is not None:
            return problems + [f"the audit key {secret_path(path)} is missing: the keyed chain cannot be checked; "
                               "restore the key from the custody backup"]
    seen_keyed = False
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError
        except ValueError:
            problems.append(f"line {number}: not a JSON entry")
            continue
        if "mac" in entry:
            seen_keyed = True
            if secret is None or not hmac.compare_digest(str(entry["mac"]), _entry_mac(secret, entry)):
                problems.append(f"line {number}: MAC does not match (the entry was edited or forged)")
            if entry.get("seq") != number:
                problems.append(f"line {number}: sequence number {entry.get('seq')} (entries removed, inserted or moved)")
        elif seen_keyed:
            problems.append(f"line {number}: entry without a MAC after the keyed chain began (forged or edited)")
        # a keyed entry links to the line before it by HMAC; a legacy one by plain SHA-256
        if number == 1:
            expected = GENESIS
        elif "mac" in entry and secret is not None:
            expected = _link(secret, lines[number - 2])
        else:
            expected = hashlib.sha256(lines[number - 2]).hexdigest()
        if entry.get("prev") != expected:
            problems.append(f"line {number}: chain broken (an entry before it was edited, removed or moved)")
    if secret is not None and anchor is not None:
        if anchor["mac"] != _anchor_mac(secret, anchor["entries"], anchor["head"]):
            problems.append(f"the anchor {anchor_path(path)} was altered (its MAC does not match)")
        elif len(lines) < anchor["entries"]:
            if lines:
                problems.append(f"the audit log has {len(lines)} entries but its anchor says {anchor['entries']}: "
                                "its last entries were removed")
        elif _head(lines[: anchor["entries"]], secret) != anchor["head"]:
            problems.append(f"the audit log's entry {anchor['entries']} is not the one its anchor sealed "
                            "(entries were replaced or the log rewritten)")
        # More lines than the anchor counts, all with valid MACs, is a crash between the two
        # writes of one append; the lines themselves were checked above.
        elif len(lines) > anchor["entries"] + 1:
            problems.append(f"the audit log has {len(lines) - anchor['entries']} entries after its anchor "
                            "(appended without the anchor: forged or copied in)")
    elif secret is not None and anchor is None and _keyed(lines):
        problems.append(f"the audit anchor {anchor_path(path)} is missing (deleted to hide a shortened log?)")
    for where, seal in seals:
        n, link = int(seal.get("entries", 0)), seal.get("head")
        if secret is None:
            break
        if len(lines) < n:
            problems.append(f"{where} sealed the log at {n} entries; it now has {len(lines)} (entries removed)")
        elif _head(lines[:n], secret) != link:
            problems.append(f"{where} sealed entry {n} of the log, which is no longer the same entry (log rewritten)")
    return problems


def release_seals(releases_dir: Path) -> list[tuple[str, dict]]:
    """(record path, sealed head) of every release record: each sealed the head of the log it saw,
    so `verify` catches a log cut back below one."""
    return [(str(p), read_json(p)["audit_head"]) for p in sorted(releases_dir.glob("*/release*.json"))
            if "audit_head" in read_json(p)]


def entries(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
