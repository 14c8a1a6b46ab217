"""Keyed pseudonyms (HMAC-SHA-256) and the custody of their key.

pid = HMAC-SHA-256(key, "resident:" + 宛名番号), hex, truncated to 128 bits; households use
"household:". A keyed MAC, not a plain hash: 宛名番号 are a small space that a plain hash
would let anyone enumerate (ENISA 2019; PPC guideline).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from contract.messages import exposed_secret, no_key, not_a_secret, wrong_key
from pipelines.catalog import lake

PSEUDONYM_HEX = 32  # 128 bits
KEY_BYTES = 32      # 256-bit key


class KeyProblem(Exception):
    """The key is missing or unusable; the message says where it was expected."""


def create_key(path: Path) -> None:
    """Write a new random 256-bit key with mode 0600; never overwrite an existing key."""
    if path.exists():
        raise KeyProblem(f"a key already exists at {path}; refusing to overwrite it "
                        "(rotating a key is `mimamori rekey`, which re-pseudonymises the lake)")
    if path.parent.exists() and not path.parent.is_dir():
        raise KeyProblem(f"{path.parent} is a file, not a folder: the custody zone must be a folder")
    # Every folder this creates is 0700, the custody zone's own folder included: mkdir's mode
    # applies only to the last folder of the path, and the umask of a library caller may be open.
    for folder in reversed([path.parent, *path.parent.parents]):
        if not folder.exists():
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")


def load_key(path: Path) -> bytes:
    """Read the key; refuse one that is missing, malformed or readable by anyone but its owner."""
    if not path.exists():
        raise KeyProblem(no_key(path))
    return read_secret(path, "key", KeyProblem, ("`mimamori rekey` を検討してください", "consider `mimamori rekey`"))


# What each custody secret is called in the messages: (Japanese, English).
SECRETS = {"key": ("仮名化の鍵", "key"), "audit key": ("監査ログの鍵", "audit key")}


def read_secret(path: Path, what: str, problem: type[KeyProblem], exposed: tuple[str, str] | None = None) -> bytes:
    """A 256-bit secret of the custody zone (hex), refused as `problem` when others may read it
    or it is malformed: one reader for the pseudonymisation key and the audit key."""
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        raise problem(exposed_secret(SECRETS[what], path, mode, exposed))
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except ValueError:
        secret = b""
    if len(secret) != KEY_BYTES:
        raise problem(not_a_secret(SECRETS[what], path))
    return secret


def check_lake_key(lake_dir: Path, key: bytes, key_file: Path, allowed: frozenset[str] = frozenset()) -> None:
    """Refuse a key that is not the one the lake was made with (its delivery records' key_id).

    Ingesting under another key would silently re-pseudonymise the lake: a second population of
    pids, no longer linkable to earlier lists. Only `mimamori rekey` changes keys (it passes its
    pending key in `allowed`).
    """
    current = key_id(key)
    found: dict[str, list[str]] = {}
    for month in lake.ingested_months(lake_dir):
        record = lake.delivery_record(lake_dir, month) or {}
        found.setdefault(str(record.get("key_id")), []).append(month)
    others = {k: v for k, v in found.items() if k != current and k not in allowed}
    if not others:
        return
    pending = key_file.with_name("hmac.key.pending")
    if pending.exists():
        try:
            pending_id = key_id(bytes.fromhex(pending.read_text().strip()))
        except ValueError:
            pending_id = ""
        if set(others) == {pending_id}:
            raise KeyProblem(f"a `mimamori rekey` was interrupted: {len(others[pending_id])} lake month(s) are "
                             f"under the pending key {pending_id}; rerun `mimamori rekey` to finish it")
    described = sorted(others.items())
    raise KeyProblem(wrong_key(key_file, current,
                               "、".join(f"{v[0]}〜{v[-1]}の{len(v)}か月は鍵ID {k}" for k, v in described),
                               "; ".join(f"key id {k} for {v[0]}…{v[-1]} ({len(v)} months)" for k, v in described)))


def key_id(key: bytes) -> str:
    """A short public fingerprint of the key, so lists and models can say which key made them."""
    return hmac.new(key, b"mimamori:key-id", hashlib.sha256).hexdigest()[:12]


def pseudonym(key: bytes, kind: str, identifier: str) -> str:
    return hmac.new(key, f"{kind}:{identifier}".encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104's B)


def _hmac_states(key: bytes) -> tuple["hashlib._Hash", "hashlib._Hash"]:
    """SHA-256 states after absorbing K^ipad and K^opad (RFC 2104), to copy for each message.

    Copying two bare hash states is about twice as fast per ID as `hmac.HMAC.copy()` (whose
    Python wrapper costs more than the hashing) and gives the same digest, which a test checks.
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
    return inner, outer


class _Known:
    """IDs already hashed by this process under one key, per kind: a pandas Index of IDs and
    an Arrow array of their pseudonyms in the same order.

    A backfill reads the same million 宛名番号 every month; looking them up here is a vectorised
    hash-table probe, where HMAC runs value by value in Python (about 5 s a month at 1M). Kept
    in memory only, like the key itself, and only for the newest key used: about 60 bytes per
    ID (≈ 100 MB for a ward of a million residents and their households).
    """

    def __init__(self) -> None:
        self.key_id = ""
        self.ids: dict[str, pd.Index] = {}
        self.pseudonyms: dict[str, pa.Array] = {}

    def slot(self, key: bytes, kind: str) -> tuple[pd.Index, pa.Array]:
        if key_id(key) != self.key_id:
            self.__init__()
            self.key_id = key_id(key)
        return (self.ids.get(kind, pd.Index([], dtype="str")),
                self.pseudonyms.get(kind, pa.array([], pa.string())))

    def add(self, kind: str, ids: pd.Index, pseudonyms: pa.Array) -> None:
        self.ids[kind] = ids
        self.pseudonyms[kind] = pseudonyms


_KNOWN = _Known()


def pseudonymise(ids: pd.Series, key: bytes, kind: str) -> pd.Series:
    """Pseudonymise a column of normalised IDs; each distinct ID is hashed once per process."""
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    known, pseudonyms = _KNOWN.slot(key, kind)
    uniques = pd.Index(uniques, dtype="str")
    positions = known.get_indexer(uniques)
    new = np.flatnonzero(positions < 0)
    if len(new):
        inner, outer = _hmac_states(key)
        prefix = f"{kind}:".encode()
        hashed = []
        # to_numpy: iterating an Arrow-backed Index value by value is slower than the hashing.
        for value in uniques[new].to_numpy(dtype=object):
            mac = inner.copy()
            mac.update(prefix + str(value).encode())
            final = outer.copy()
            final.update(mac.digest())
            hashed.append(final.digest()[: PSEUDONYM_HEX // 2].hex())
        positions[new] = len(known) + np.arange(len(new))
        known, pseudonyms = known.append(uniques[new]), pa.concat_arrays([pseudonyms, pa.array(hashed, pa.string())])
        _KNOWN.add(kind, known, pseudonyms)
    missing = codes < 0
    taken = pseudonyms.take(pa.array(np.where(missing, 0, positions[codes] if len(positions) else 0), mask=missing))
    return pd.Series(pd.array(taken, dtype="str"), index=ids.index, dtype="str")
