"""Registered approvers for tests: what `mimamori approver add` does, with a key derived from the
approver's id (so the golden run's release records, which name the key fingerprints, are
deterministic), kept beside the zones, never inside one."""
from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipelines.approvers import add_approver, registered
from pipelines.config import Config
from pipelines.release import approve

# The people the suites approve as: id → (name, role).
PEOPLE = {"A": ("承認者A", "高齢福祉課長"), "B": ("承認者B", "保健予防課長"), "C": ("承認者C", "福祉部長")}


def approver_key(ident: str) -> Ed25519PrivateKey:
    """A fixed key per test approver id."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"mimamori-test-approver:{ident}".encode()).digest())


def key_file(cfg: Config, ident: str) -> Path:
    """Where a test approver's private key lives: beside the custody zone, outside every zone."""
    return cfg.custody.parent / "approver-keys" / f"{ident}.key"


def registered_approver(cfg: Config, ident: str) -> Path:
    """Register the test approver `ident` (once) and return their key file."""
    if ident not in {a["id"] for a in registered(cfg)}:
        name, role = PEOPLE[ident]
        add_approver(cfg, ident, name, role, key_file(cfg, ident), private_key=approver_key(ident))
    return key_file(cfg, ident)


def approve_as(cfg: Config, month: str, ident: str, basis: str, purpose: str = "見守り訪問") -> dict:
    """A signed approval by the registered test approver `ident` (registering them first if needed)."""
    return approve(cfg, month, ident, registered_approver(cfg, ident), basis, purpose)
