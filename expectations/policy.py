"""mimamori's severity policy over GX results (GX stores `severity` but does not act on it).

Pure functions: they take each expectation's outcome (from the GX result, see validate.py) and
decide, per source, what is critical, which rows are quarantined, and what is only reported.

- `critical`: the month stops before anything is committed.
- `quarantine`: the failing rows (GX index labels, i.e. positions in the table) leave the
  table; if contract quarantine (pipelines/reading.py) and validation quarantine together exceed
  `quarantine_limit` of the rows delivered (and more than `quarantine_min_rows` rows), that
  becomes a critical failure. A quarantine check that failed without naming its rows (it raised)
  is critical too: rows we cannot name cannot be moved.
- `warning`: reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from contract.messages import bilingual


# Quarantine reasons of validation, beside the contract's "<column>: <problem>" reasons.
REASON_PREFIX = "validation: "


class ValidationFailed(Exception):
    """A critical expectation failed; the message lists them in plain words (never values)."""

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = summary


@dataclass(frozen=True)
class Outcome:
    """One expectation's result, reduced to what the policy and the report need (no values)."""

    check: str
    expectation: str
    column: str | list | None
    description: str
    description_ja: str
    policy: str
    success: bool
    unexpected: int
    rows: int | None
    index: np.ndarray | None = None  # positions of failing rows (column-map expectations)
    observed: object = None  # observed value of table/aggregate expectations (counts, means)


def outcome(kind: str, kwargs: dict, meta: dict, success: bool, result: dict, raised: bool,
            index: list | None, history: bool) -> Outcome:
    """An Outcome from the parts of a GX ExpectationValidationResult."""
    policy = meta.get("policy", "critical")
    if not history:
        policy = meta.get("policy_without_history", policy)
    column = meta.get("column") or kwargs.get("column") or kwargs.get("column_list") or kwargs.get("column_A")
    unexpected = result.get("unexpected_count")
    if unexpected is None:
        unexpected = 0 if success else 1
    positions = None
    if index is not None and not raised:
        positions = np.asarray(index, dtype=np.int64)
    observed = result.get("observed_value")
    if isinstance(observed, (np.generic,)):
        observed = observed.item()
    return Outcome(check=meta.get("check", kind), expectation=kind, column=column,
                   description=meta.get("description", kind), description_ja=meta.get("description_ja", ""),
                   policy=policy, success=bool(success), unexpected=int(unexpected),
                   rows=result.get("element_count"), index=positions,
                   observed=observed if isinstance(observed, (int, float, str, type(None))) else None)


def entry(source: str, o: Outcome, severity: str | None = None) -> dict:
    """The summary line of a failing expectation (the delivery record and report render these)."""
    line = {"source": source, "expectation": o.expectation, "check": o.check, "column": o.column,
            "description": o.description, "description_ja": o.description_ja,
            "severity": severity or o.policy, "success": o.success, "unexpected": o.unexpected, "rows": o.rows}
    if o.observed is not None:
        line["observed"] = o.observed
    if severity is not None and severity != o.policy:
        line["policy"] = o.policy
    return line


@dataclass
class Verdict:
    """The policy applied to one table."""

    source: str
    expectations: int
    failed: int
    critical: list[dict] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    # One row per table row to quarantine: position, the checks it failed and their descriptions.
    moved: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"row": [], "expectation": [], "reason": []}))
    delivered: int = 0
    contract_quarantined: int = 0

    @property
    def share(self) -> float:
        return (self.contract_quarantined + len(self.moved)) / self.delivered if self.delivered else 0.0

    def counts(self) -> dict:
        return {"expectations": self.expectations, "failed": self.failed, "rows": self.delivered,
                "quarantined_contract": self.contract_quarantined, "quarantined_validation": len(self.moved),
                "quarantine_share": round(self.share, 6)}


def judge(source: str, outcomes: list[Outcome], table_rows: int, contract_quarantined: int = 0,
          limit: float = 0.02, min_rows: int = 0) -> Verdict:
    """Apply the policy to one table's outcomes (in suite order)."""
    verdict = Verdict(source, len(outcomes), sum(not o.success for o in outcomes),
                      delivered=table_rows + contract_quarantined, contract_quarantined=contract_quarantined)
    failing: list[tuple[Outcome, np.ndarray]] = []
    for o in outcomes:
        if o.success:
            continue
        if o.policy == "critical":
            verdict.critical.append(entry(source, o))
        elif o.policy == "warning":
            verdict.warnings.append(entry(source, o))
        elif o.index is None or (o.unexpected and not len(o.index)):
            line = entry(source, o, severity="critical")
            line["description"] += " (the failing rows could not be identified)"
            line["description_ja"] += "（該当行を特定できない）"
            verdict.critical.append(line)
        else:
            verdict.quarantined.append(entry(source, o))
            failing.append((o, o.index))
    if failing:
        rows = np.concatenate([index for _, index in failing])
        which = np.concatenate([np.full(len(index), i) for i, (_, index) in enumerate(failing)])
        pairs = pd.DataFrame({"row": rows, "i": which}).drop_duplicates().sort_values(["row", "i"], kind="stable")
        checks = np.array([o.check for o, _ in failing], dtype=object)[pairs["i"].to_numpy()]
        words = np.array([f"{REASON_PREFIX}{o.description}" for o, _ in failing], dtype=object)[pairs["i"].to_numpy()]
        moved = pd.DataFrame({"row": pairs["row"].to_numpy(dtype=np.int64), "expectation": checks, "reason": words})
        if not moved["row"].is_unique:  # a row failing several checks names them all
            moved = moved.groupby("row", sort=True, as_index=False).agg({"expectation": "; ".join, "reason": "; ".join})
        verdict.moved = moved.reset_index(drop=True)
    quarantined = contract_quarantined + len(verdict.moved)
    if verdict.delivered and quarantined > min_rows and verdict.share > limit:
        verdict.critical.append({
            "source": source, "expectation": "quarantine_share", "check": f"{source}.quarantine.share",
            "column": None,
            "description": f"no more than {limit:.1%} of the rows delivered are quarantined "
                           f"(contract and validation together: {quarantined} of {verdict.delivered})",
            "description_ja": f"隔離された行が提供された行の{limit:.1%}以下である"
                              f"（契約検査と検証の合計：{verdict.delivered}行中{quarantined}行）",
            "severity": "critical", "success": False, "unexpected": quarantined, "rows": verdict.delivered,
            "observed": round(verdict.share, 6)})
    return verdict


def summarise(verdicts: list[Verdict], data_docs: str | None) -> dict:
    """The validation summary kept in the delivery record (keys are rendered by the report)."""
    return {
        "sources": {v.source: v.counts() for v in verdicts},
        "critical_failures": [e for v in verdicts for e in v.critical],
        "quarantined": [e for v in verdicts for e in v.quarantined],
        "warnings": [e for v in verdicts for e in v.warnings],
        "data_docs": data_docs,
    }


def _count_ja(e: dict) -> str:
    return f"（{e['rows']:,d}行中{e['unexpected']:,d}行）" if e.get("rows") is not None else ""


def _count_en(e: dict) -> str:
    return f" ({e['unexpected']:,d} of {e['rows']:,d} rows)" if e.get("rows") is not None else ""


REDELIVER = bilingual("対処：提供元の部署に抽出の修正と再提供を依頼してください（詳細は Data Docs）",
                      "What to do: ask the department to correct the extract and deliver it again "
                      "(details in the Data Docs)")
RAISE_LIMIT = bilingual("対処：提供元の部署に抽出の修正と再提供を依頼してください。原因が分かっていて受け入れる場合は、"
                        "mimamori.toml の validation.quarantine_limit を上げて取り込み直してください",
                        "What to do: ask the department to correct the extract and deliver it again, or, if the "
                        "cause is understood and acceptable, raise validation.quarantine_limit in mimamori.toml "
                        "and ingest again")


def failure_message(what: str, summary: dict, consequence: str = "nothing was stored", *,
                    what_ja: str | None = None, consequence_ja: str = "何も保存していません",
                    evidence: dict[str, dict] | None = None, top: int = 3, action: str | None = None) -> str:
    """The refusal of a table for its critical failures, in Japanese with English, never a value.

    `evidence[source]` (optional, from the caller that holds the rows) names the delivered
    `file` and its quarantine `reasons` as (reason, reason_ja, rows, example line), most rows
    first: a quarantine-share refusal then says why the rows were quarantined and where to look.
    """
    evidence = evidence or {}
    lines = [bilingual(f"{what_ja or what}は重大な検証に失敗したため受け付けませんでした。{consequence_ja}",
                       f"{what} failed critical expectations; {consequence}")]
    share = False
    for f in summary["critical_failures"]:
        found = evidence.get(f["source"], {})
        name = found.get("file", f["source"])
        if f.get("expectation") == "quarantine_share":
            share = True
            lines.append(f"  - {name}: " + bilingual(f"隔離された行が多すぎます{_count_ja(f)}",
                                                       f"too many rows quarantined{_count_en(f)}"))
            lines.extend("      " + line for line in _reason_lines(found, top))
        else:
            lines.append(f"  - {name}: " + bilingual(f"{f.get('description_ja') or f['description']}{_count_ja(f)}",
                                                       f"{f['description']}{_count_en(f)}"))
    lines.append(action or (RAISE_LIMIT if share else REDELIVER))
    return "\n".join(lines)


def _reason_lines(found: dict, top: int) -> list[str]:
    """Why a file's rows were quarantined, most rows first: rows, the rule, an example line."""
    return [bilingual(f"{n:,d}行：{reason_ja}（例：{line}行目）", f"{n:,d} rows: {reason} (e.g. line {line})")
            for reason, reason_ja, n, line in found.get("reasons", [])[:top]]


# How summary_lines heads each kind of failing expectation: (Japanese, English).
_KINDS = {"critical_failures": ("重大", "critical"), "quarantined": ("隔離", "quarantined"), "warnings": ("警告", "warning")}


def summary_lines(summary: dict, evidence: dict[str, dict] | None = None, top: int = 3) -> list[str]:
    """Lines for the command line, in Japanese with English: every failing expectation with its
    file and counts; with `evidence` (as for failure_message) the causes of a quarantine share
    and an example line of each quarantining check; what to do when something is critical."""
    evidence = evidence or {}
    out = []
    for key, (kind_ja, kind_en) in _KINDS.items():
        for e in summary.get(key, []):
            found = evidence.get(e["source"], {})
            count_ja, count_en = _count_ja(e), _count_en(e)
            if e.get("rows") is None and e.get("observed") is not None:
                count_ja, count_en = f"（観測値 {e['observed']}）", f" (observed {e['observed']})"
            out.append(f"{kind_ja}／{kind_en} {found.get('file', e['source'])}: "
                       + bilingual(f"{e.get('description_ja') or e['description']}{count_ja}", f"{e['description']}{count_en}"))
            if e.get("expectation") == "quarantine_share":
                out.extend("    " + line for line in _reason_lines(found, top))
            elif key == "quarantined":
                lines = [line for reason, _, _, line in found.get("reasons", []) if reason == REASON_PREFIX + e["description"]]
                out.extend(["    " + bilingual(f"例：{lines[0]}行目", f"e.g. line {lines[0]}")] if lines else [])
    critical = summary.get("critical_failures", [])
    if critical:
        out.append(RAISE_LIMIT if any(e.get("expectation") == "quarantine_share" for e in critical) else REDELIVER)
    if summary.get("data_docs"):
        out.append(f"Data Docs: {summary['data_docs']}")
    return out
