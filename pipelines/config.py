"""Configuration: shipped defaults, a ward's mimamori.toml, environment, command line.

One frozen object is built once per command and passed down; only this module reads the
environment, so a stage's behaviour is fully described by its arguments.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.messages import bilingual

DEFAULTS = Path(__file__).with_name("defaults.toml")
ENV_PATHS = {"inbox": "MIMAMORI_INBOX", "work": "MIMAMORI_WORK", "custody": "MIMAMORI_CUSTODY"}
WARD_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")   # it names folders: no dots, slashes or spaces


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        # a ward's own capacity table or minimum shares replace the shipped ones whole
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("districts", "min_share"):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Config:
    inbox: Path
    work: Path
    custody: Path
    settings: dict[str, Any] = field(repr=False)
    # the ward of `[wards.<name>]` these zones belong to (None: a one-ward installation); it
    # names the ward's MLflow registered model and tags its runs
    ward: str | None = None

    def get(self, section: str, key: str) -> Any:
        return self.settings[section][key]

    @property
    def config_hash(self) -> str:
        """Hash of every setting that changes results (paths, memory, engine and web-app settings
        excluded: every engine gives the same bytes), for the audit trail."""
        body = {k: v for k, v in self.settings.items() if k not in ("paths", "wards", "scale", "engine", "web")}
        fairness = dict(body.get("fairness", {}))
        if fairness.get("remedy", "none") == "none":
            # no remedy changes no list: the shares it would use (shown in the report as an offer)
            # stay out of the hash, so a ward's hash is the same as before the remedy existed
            fairness.pop("remedy", None)
            fairness.pop("min_share", None)
            body["fairness"] = fairness
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def with_settings(self, section: str, **values: Any) -> "Config":
        """This configuration with `values` set in `section` (None leaves a setting as it is):
        command-line options that win over mimamori.toml."""
        given = {k: v for k, v in values.items() if v is not None}
        return Config(self.inbox, self.work, self.custody,
                      {**self.settings, section: {**self.settings.get(section, {}), **given}}, self.ward)

    # Derived locations, in one place so that no stage invents its own layout.
    @property
    def lake(self) -> Path:
        return self.work / "lake"

    @property
    def runs(self) -> Path:
        return self.work / "runs"

    @property
    def features_dir(self) -> Path:
        return self.work / "features"

    @property
    def mlflow_db(self) -> Path:
        return self.work / "mlflow" / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.work / "mlflow" / "artifacts"

    @property
    def key_file(self) -> Path:
        return self.custody / "key" / "hmac.key"

    @property
    def audit_log(self) -> Path:
        return self.custody / "audit.jsonl"

    @property
    def audit_key_file(self) -> Path:
        """The audit log's HMAC key (pipelines/audit.secret_path), not the pseudonymisation key."""
        return self.custody / "key" / "audit.key"

    @property
    def audit_anchor(self) -> Path:
        """Count and head link of the audit log (pipelines/audit.anchor_path)."""
        return self.custody / "audit.anchor"

    @property
    def approvals_dir(self) -> Path:
        return self.custody / "approvals"

    @property
    def releases_dir(self) -> Path:
        return self.custody / "releases"

    @property
    def custody_quarantine(self) -> Path:
        """Quarantined rows as delivered (identified), <custody>/quarantine/<month>/<source>.parquet;
        the analyst zone's <work>/quarantine keeps only line numbers, reasons and pseudonyms."""
        return self.custody / "quarantine"

    @property
    def leakscan_cache(self) -> Path:
        """Identifier needles of each residents extract, so the leak guard reads only new ones."""
        return self.custody / "leakscan"


def _overlap(one: Path, other: Path) -> bool:
    return one == other or one.is_relative_to(other) or other.is_relative_to(one)


def ward_zones(wards: dict[str, dict], base_dir: Path, ward: str) -> dict[str, Path]:
    """The inbox, work and custody zones of one ward of `[wards.<name>]` (each zone given there,
    relative to the config file's folder, or `wards/<name>/<zone>`).

    Refused (ValueError): an unknown ward, and any two wards whose zones are the same folder or
    one inside the other. The key lives in the custody zone, so wards sharing one would share
    the key, and a pseudonym of one ward could be joined with another's.
    """
    if ward not in wards:
        known = ", ".join(sorted(wards)) or "—"
        raise ValueError(bilingual(f"区 {ward!r} は mimamori.toml の [wards] にありません（設定済み: {known}）",
                                   f"ward {ward!r} is not configured in mimamori.toml's [wards] (configured: {known})"))
    every = {}
    for name, table in wards.items():
        if not WARD_NAME.fullmatch(name):
            raise ValueError(bilingual(f"[wards.{name}] の名前は英小文字・数字・-・_ で書いてください",
                                       f"[wards.{name}]: a ward's name is lowercase letters, digits, - and _"))
        every[name] = {zone: (base_dir / table.get(zone, f"wards/{name}/{zone}")).resolve() for zone in ENV_PATHS}
    names = sorted(every)
    for i, one in enumerate(names):
        for other in names[i + 1:]:
            for zone in ENV_PATHS:
                for their in ENV_PATHS:
                    if _overlap(every[one][zone], every[other][their]):
                        raise ValueError(bilingual(
                            f"区 {one} の {zone} と区 {other} の {their} が同じフォルダー（または入れ子）です。区ごとに別のフォルダーにしてください（鍵と仮名を区ごとに分けるため）",
                            f"ward {one}'s {zone} zone and ward {other}'s {their} zone are the same folder or nested: "
                            "give every ward its own folders (so that keys and pseudonyms stay per ward)"))
    return every[ward]


def load_config(
    config_file: Path | None = None,
    inbox: Path | None = None,
    work: Path | None = None,
    custody: Path | None = None,
    environ: dict[str, str] | None = None,
    ward: str | None = None,
) -> Config:
    """Build the configuration: defaults < mimamori.toml < environment < command line.

    `ward`: one ward of an installation serving several (`[wards.<name>]`); its zones win over
    the environment (which describes a one-ward installation), the command line still wins.
    """
    environ = dict(os.environ) if environ is None else environ
    settings = tomllib.loads(DEFAULTS.read_text(encoding="utf-8"))
    base_dir = Path.cwd()
    if config_file is None and Path("mimamori.toml").exists():
        config_file = Path("mimamori.toml")
    if config_file is not None:
        settings = _merge(settings, tomllib.loads(Path(config_file).read_text(encoding="utf-8")))
        base_dir = Path(config_file).resolve().parent
    given = {"inbox": inbox, "work": work, "custody": custody}
    zones = None if ward is None else ward_zones(settings.get("wards", {}), base_dir, ward)
    paths: dict[str, Path] = {}
    for name, env_name in ENV_PATHS.items():
        if given[name] is not None:
            paths[name] = Path(given[name])
        elif zones is not None:
            paths[name] = zones[name]
        elif environ.get(env_name):
            paths[name] = Path(environ[env_name])
        else:
            paths[name] = base_dir / settings["paths"][name]
    return Config(**{k: v.resolve() for k, v in paths.items()}, settings=settings, ward=ward)
