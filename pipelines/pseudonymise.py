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

import pandas as pd

PSEUDONYM_HEX = 32  # 128 bits
KEY_BYTES = 32      # 256-bit key


class KeyProblem(Exception):
    """The key is missing or unusable; the message says where it was expected."""


def create_key(path: Path) -> None:
    """Write a new random 256-bit key with mode 0600; never overwrite an existing key."""
    if path.exists():
        raise KeyProblem(f"a key already exists at {path}; refusing to overwrite it "
                        "(rotating a key is `mimamori rekey`, which re-pseudonymises the lake)")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")


def load_key(path: Path) -> bytes:
    if not path.exists():
        raise KeyProblem(f"no pseudonymisation key at {path}: run `mimamori keygen` in the custody zone first")
    key = bytes.fromhex(path.read_text().strip())
    if len(key) != KEY_BYTES:
        raise KeyProblem(f"the key at {path} is not a 256-bit key")
    return key


def key_id(key: bytes) -> str:
    """A short public fingerprint of the key, so lists and models can say which key made them."""
    return hmac.new(key, b"mimamori:key-id", hashlib.sha256).hexdigest()[:12]


def pseudonym(key: bytes, kind: str, identifier: str) -> str:
    return hmac.new(key, f"{kind}:{identifier}".encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def pseudonymise(ids: pd.Series, key: bytes, kind: str) -> pd.Series:
    """Pseudonymise a column of normalised IDs; each distinct ID is hashed once."""
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    base = hmac.new(key, digestmod=hashlib.sha256)
    prefix = f"{kind}:".encode()
    hashed = []
    for value in uniques:
        mac = base.copy()
        mac.update(prefix + str(value).encode())
        hashed.append(mac.hexdigest()[:PSEUDONYM_HEX])
    table = pd.array(hashed + [pd.NA], dtype="str")
    return pd.Series(table.take(codes), index=ids.index, dtype="str")
