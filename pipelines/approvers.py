"""Approvers are people the custodian registers, each with an Ed25519 key of their own.

`mimamori approver add` makes a key pair: the public key goes into the custody zone's registry
(<custody>/approvers.json) and the audit log; the private key is written once, 0600, to a file
for that approver alone (never inside the inbox, work dir or custody zone, so neither the
analyst nor the custodian holds it). `approve` signs a canonical statement (month, the list's
SHA-256, the lake and key it depends on, basis, purpose, time) with that key; `release` checks
every signature against the registry, so a second typed name or a hand-edited approval is not a
second person. A registry entry counts only if the audit log (MACed) recorded its registration
with the same fingerprint; a revocation in either the registry or the log ends it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contract.messages import bilingual
from contract.storage import read_json, write_json
from pipelines import audit
from pipelines.config import Config
from pipelines.custody import private_dir

_ID = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")
# What a signed approval states, in this order of meaning; the signature covers exactly these.
STATEMENT_FIELDS = ("statement", "approver_id", "fingerprint", "month", "list_sha256", "lake_fingerprint", "key_id",
                    "basis", "purpose", "time", "review_sha256")
# Signed only when present: an approval of a month with no submitted review states none
# (pipelines/review.py), and its bytes stay those of approvals made before reviews existed.
OPTIONAL_FIELDS = ("review_sha256",)
STATEMENT = "mimamori approval v1"


class ApproverProblem(ValueError):
    """An approver identity, key file or signature is not what it must be; the message says what to do.
    A ValueError, so the CLI prints it as one line and exits 2."""


def registry_file(cfg: Config) -> Path:
    """<custody>/approvers.json: the registered approvers and their public keys."""
    return cfg.custody / "approvers.json"


def normal_id(text: str) -> str:
    """An approver id as registered: NFKC, stripped, upper case (`a01` and `Ａ01` are A01)."""
    value = unicodedata.normalize("NFKC", text).strip().upper()
    if not _ID.fullmatch(value):
        raise ApproverProblem(bilingual(f"承認者IDとして使えない文字列です：{text!r}。英数字で始まる英数字・-・_ の32文字以内にしてください（例：A01）",
                                        f"{text!r} is not an approver id: use up to 32 letters, digits, - or _, "
                                        "starting with a letter or digit (e.g. A01)"))
    return value


def person_key(name: str) -> str:
    """The form in which two registered names are compared: NFKC, stripped, inner whitespace
    collapsed, casefolded (so one person cannot hold two identities by retyping a name)."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


def fingerprint(public: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, as 64 hex digits."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def short_fingerprint(value: str) -> str:
    """The first 16 hex digits in groups of four, for reading aloud (e.g. 3f2a:09bc:…)."""
    return ":".join(value[i:i + 4] for i in range(0, 16, 4))


def _read_registry(cfg: Config) -> dict[str, dict]:
    path = registry_file(cfg)
    return read_json(path).get("approvers", {}) if path.exists() else {}


def _logged(cfg: Config) -> tuple[dict[str, set[str]], set[str]]:
    """({approver id: fingerprints the audit log saw registered}, {ids the log saw revoked})."""
    added: dict[str, set[str]] = {}
    revoked: set[str] = set()
    for e in audit.entries(cfg.audit_log):
        if e.get("event") == "approver_add":
            added.setdefault(str(e.get("approver_id")), set()).add(str(e.get("fingerprint")))
        elif e.get("event") == "approver_revoke":
            revoked.add(str(e.get("approver_id")))
    return added, revoked


def _outside_zones(cfg: Config, path: Path) -> Path:
    """Refuse a private key file inside the inbox, work dir (lake, runs, MLflow) or custody zone."""
    target = path.expanduser().resolve()
    for zone, label_ja, label_en in ((cfg.inbox, "受信フォルダ", "inbox"), (cfg.work, "作業フォルダ", "work dir"),
                                     (cfg.custody, "保管区域", "custody zone")):
        root = zone.expanduser().resolve()
        if target == root or root in target.parents:
            raise ApproverProblem(bilingual(
                f"承認者の秘密鍵 {path} を{label_ja} {zone} の中に置くことはできません。承認者本人だけが読める場所（例：~/.mimamori/）を指定してください",
                f"an approver's private key {path} may not be inside the {label_en} {zone}: "
                "choose a place only that approver can read (e.g. ~/.mimamori/)"))
    return path


def add_approver(cfg: Config, approver_id: str, name: str, role: str, key_out: Path,
                 private_key: Ed25519PrivateKey | None = None) -> dict:
    """Register an approver and write their private key to `key_out` (0600, never overwritten).

    `private_key` is an approver's own key (e.g. made on their machine); default: a new one.
    """
    ident = normal_id(approver_id)
    if not person_key(name) or not role.strip():
        raise ApproverProblem(bilingual("承認者の登録には氏名と役職が必要です", "registering an approver needs a name and a role"))
    registry = _read_registry(cfg)
    if ident in registry:
        raise ApproverProblem(bilingual(f"承認者ID {ident} は登録済みです（失効したIDも再利用しません）。別のIDを指定してください",
                                        f"approver id {ident} is already registered (a revoked id is never reused): choose another id"))
    same = [i for i, a in registry.items() if not a.get("revoked") and person_key(a["name"]) == person_key(name)]
    if same:
        raise ApproverProblem(bilingual(f"同じ氏名の承認者が有効なID {same[0]} で登録済みです。一人が二つのIDを持つことはできません。"
                                        f"鍵を替えるときは先に `mimamori approver revoke --id {same[0]}` を実行してください",
                                        f"an approver with this name is registered as {same[0]}: one person holds one identity; "
                                        f"to replace their key, `mimamori approver revoke --id {same[0]}` first"))
    _outside_zones(cfg, key_out)
    key = private_key or Ed25519PrivateKey.generate()
    public = key.public_key()
    entry = {"name": " ".join(name.split()), "role": " ".join(role.split()), "fingerprint": fingerprint(public),
             "public_key": public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex(),
             "added": datetime.now(timezone.utc).isoformat(timespec="seconds"), "revoked": None}
    if any(a["fingerprint"] == entry["fingerprint"] for a in registry.values()):
        raise ApproverProblem(bilingual("この鍵は別の承認者IDで登録済みです", "this key is already registered under another approver id"))
    private_dir(key_out.parent)
    try:
        fd = os.open(key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ApproverProblem(bilingual(f"{key_out} は既にあります。上書きしません。別の場所を指定してください",
                                        f"{key_out} exists: refusing to overwrite it; choose another path")) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    # logged first: a registration the log does not hold does not count (see verified_approver)
    audit.append(cfg.audit_log, "approver_add", approver_id=ident, approver=entry["name"], role=entry["role"],
                 fingerprint=entry["fingerprint"], public_key=entry["public_key"])
    private_dir(cfg.custody)
    write_json({"approvers": registry | {ident: entry}}, registry_file(cfg))
    return {"id": ident, **entry, "key_file": str(key_out)}


def revoke_approver(cfg: Config, approver_id: str, reason: str) -> dict:
    """Revoke an approver: their approvals stop counting, including ones already given."""
    ident = normal_id(approver_id)
    registry = _read_registry(cfg)
    if ident not in registry:
        raise ApproverProblem(unknown_message(ident))
    entry = registry[ident]
    if entry.get("revoked"):
        raise ApproverProblem(bilingual(f"承認者 {ident} は {entry['revoked']['time']} に失効済みです",
                                        f"approver {ident} was already revoked at {entry['revoked']['time']}"))
    revoked = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "reason": reason.strip()}
    audit.append(cfg.audit_log, "approver_revoke", approver_id=ident, approver=entry["name"], role=entry["role"],
                 fingerprint=entry["fingerprint"], reason=revoked["reason"])
    write_json({"approvers": registry | {ident: entry | {"revoked": revoked}}}, registry_file(cfg))
    return {"id": ident, **entry, "revoked": revoked}


def registered(cfg: Config) -> list[dict]:
    """Every registry entry with its status: active, revoked, or not in the audit log."""
    added, revoked = _logged(cfg)
    out = []
    for ident, a in sorted(_read_registry(cfg).items()):
        status = ("revoked" if a.get("revoked") or ident in revoked
                  else "active" if a["fingerprint"] in added.get(ident, set()) else "unlogged")
        out.append({"id": ident, **a, "status": status})
    return out


def unknown_message(ident: str) -> str:
    return bilingual(f"承認者ID {ident} は登録されていません。保管責任者が `mimamori approver add --id {ident} ...` で登録してください"
                     "（登録済みの一覧は `mimamori approver list`）",
                     f"approver id {ident} is not registered: the custodian registers approvers with "
                     f"`mimamori approver add --id {ident} ...` (see `mimamori approver list`)")


def active_approver(cfg: Config, approver_id: str) -> dict:
    """The registered, logged, unrevoked approver with this id; else ApproverProblem saying why."""
    ident = normal_id(approver_id)
    found = {a["id"]: a for a in registered(cfg)}.get(ident)
    if found is None:
        raise ApproverProblem(unknown_message(ident))
    if found["status"] == "revoked":
        raise ApproverProblem(bilingual(f"承認者 {ident}（{found['name']}）の登録は失効しています。失効した承認者は承認できません",
                                        f"approver {ident} ({found['name']}) has been revoked and can no longer approve"))
    if found["status"] == "unlogged":
        raise ApproverProblem(bilingual(f"承認者 {ident} の登録が監査ログにありません（登録簿 {registry_file(cfg)} が手で書き換えられた可能性があります）。"
                                        "保管責任者に確認してください",
                                        f"approver {ident}'s registration is not in the audit log (the registry "
                                        f"{registry_file(cfg)} was edited by hand?): ask the custodian"))
    return found


def load_signing_key(path: Path, approver: dict) -> Ed25519PrivateKey:
    """The approver's private key from `path`, if only its owner can read it and it is theirs."""
    if not path.is_file():
        raise ApproverProblem(bilingual(f"鍵ファイル {path} がありません", f"the key file {path} does not exist"))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ApproverProblem(bilingual(f"鍵ファイル {path} は本人以外も読めます。`chmod 600 {path}` を実行し、誰が読んだか確認してください",
                                        f"the key file {path} is readable by group or others: `chmod 600 {path}` "
                                        "and check who has read it"))
    return signing_key_of(path.read_bytes(), approver, str(path))


def signing_key_of(pem: bytes, approver: dict, where: str = "the uploaded key") -> Ed25519PrivateKey:
    """The approver's private key from its PEM bytes (a key file's, or one the web app's approver
    uploaded for this one approval and did not keep), if it is that approver's."""
    ident, path = approver["id"], where
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise ApproverProblem(bilingual(f"{path} は承認者の鍵ファイル（Ed25519、PEM）として読めません",
                                        f"{path} is not an approver key file (Ed25519, PEM)"))
    if fingerprint(key.public_key()) != approver["fingerprint"]:
        raise ApproverProblem(bilingual(f"鍵ファイル {path} は承認者 {ident} の鍵ではありません（登録された指紋 {short_fingerprint(approver['fingerprint'])}）。"
                                        "本人の鍵ファイルを指定してください",
                                        f"the key file {path} is not approver {ident}'s key (registered fingerprint "
                                        f"{short_fingerprint(approver['fingerprint'])}): give that approver's own key file"))
    return key


def statement_bytes(approval: dict) -> bytes:
    """The canonical bytes an approval's signature covers."""
    body = {k: approval.get(k) for k in STATEMENT_FIELDS if k not in OPTIONAL_FIELDS or approval.get(k) is not None}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def signed(statement: dict, key: Ed25519PrivateKey) -> dict:
    """The statement with its Ed25519 signature (hex)."""
    body = {"statement": STATEMENT, **statement}
    return body | {"signature": key.sign(statement_bytes(body)).hex()}


def signature_holds(approval: dict, public_hex: str) -> bool:
    """Whether the approval's signature verifies under the registered public key."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(str(approval.get("signature"))), statement_bytes(approval))
    except (InvalidSignature, ValueError):
        return False
    return True
