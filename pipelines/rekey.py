"""Key rotation: re-pseudonymise the whole lake under a new key, as one logged event.

The lake is derived from the inbox, so rotation re-ingests every inbox month under the new key
(one code path for pseudonymisation, no mapping table). Order matters for crash safety:
the new key is written beside the old one, the lake is rebuilt with it, and only then are the
keys swapped; a crash before the swap leaves the old key in force, and the next batch simply
re-ingests the months whose records name another key. Rerunning `rekey` resumes with the
pending key. The old key is destroyed (the point of rotating after a leak is that old
pseudonyms can no longer be linked), and output made under it is marked.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from pipelines import audit
from pipelines.catalog import registry
from pipelines.config import Config
from pipelines.ingest import ingest_month
from pipelines.catalog.runs import inbox_months
from pipelines.pseudonymise import KeyProblem, check_lake_key, create_key, key_id, load_key
from contract.storage import read_json, write_json


def _pending(cfg: Config) -> Path:
    return cfg.key_file.with_name("hmac.key.pending")


def _destroy(path: Path) -> None:
    """Overwrite, then remove: the retired key must not be recoverable from the custody dir."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.write(os.urandom(size))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def mark_retired(cfg: Config, old_key_id: str) -> dict:
    """Mark runs and registered models made under the old key (they can no longer be released)."""
    marked_runs = []
    for manifest_path in sorted(cfg.runs.glob("*/manifest.json")):
        manifest = read_json(manifest_path)
        if manifest.get("key_id") == old_key_id:
            manifest["key_retired"] = True
            write_json(manifest, manifest_path)
            marked_runs.append(manifest_path.parent.name)
    marked_models = []
    if cfg.mlflow_db.exists():
        client = registry.client(cfg)
        for version in client.search_model_versions(f"name='{registry.registered_model(cfg)}'"):
            if version.tags.get("key_id") == old_key_id:
                client.set_model_version_tag(registry.registered_model(cfg), version.version, "key_retired", "true")
                marked_models.append(version.version)
    return {"runs": marked_runs, "model_versions": sorted(marked_models, key=int)}


def rekey(cfg: Config, progress: Callable[[str], None] = lambda _: None) -> dict:
    old = load_key(cfg.key_file)
    pending = _pending(cfg)
    # Rotation starts from the lake's own key (or resumes one interrupted under the pending key):
    # rotating away from a wrong key would leave the lists made under the right one unmarked.
    resumed = frozenset({key_id(load_key(pending))}) if pending.exists() else frozenset()
    check_lake_key(cfg.lake, old, cfg.key_file, allowed=resumed)
    if not pending.exists():
        create_key(pending)
    new = load_key(pending)
    if new == old:
        raise KeyProblem("the pending key equals the current key; remove it and rerun")
    months = inbox_months(cfg)
    for month in months:
        progress(f"re-pseudonymise {month}")
        ingest_month(cfg, month, new, force=True, new_key=True)
    retired = cfg.key_file.with_name(f"retired-{key_id(old)}.key")
    os.replace(cfg.key_file, retired)
    os.replace(pending, cfg.key_file)
    _destroy(retired)
    marked = mark_retired(cfg, key_id(old))
    entry = {"old_key_id": key_id(old), "new_key_id": key_id(new), "months": months,
             "marked_runs": marked["runs"], "marked_model_versions": marked["model_versions"]}
    audit.append(cfg.audit_log, "rekey", **entry)
    return entry
