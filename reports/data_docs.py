"""The month's Data Docs: a static site built from GX's validation results that opens offline.

GX's own site builder writes pages that load Bootstrap, jQuery, bootstrap-table, Font Awesome
and Vega from public CDNs (17 resources) and fill the index table with JavaScript, so on a
ward's offline PC the index is blank. These pages carry everything they need: one inline style
sheet, no script, no image, no font, nothing fetched. They say what an auditor checks: each
suite's expectations in Japanese and English, the rule, the observed value, the unexpected
count, the policy, and the rows quarantined with the reasons.

Only what GX's sanitised results hold reaches a page (expectations/results.py: counts and
aggregates, never values or row labels). Observed values are shown only where they are counts,
aggregates or the schema (column names, dtypes); an exception's message is never shown, since
it may quote a value. Pure: results in, HTML text out; the catalogue writes the files.
"""
from __future__ import annotations

from dataclasses import dataclass

import jinja2

from contract.messages import reason_ja
from contract.sources import SOURCES

INDEX = "index.html"
# Its own environment, not the report's: the report's module loads the models and plotting stack.
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined)

POLICIES = {"critical": ("重大", "critical: the month stops"),
            "quarantine": ("隔離", "quarantine: failing rows leave the table"),
            "warning": ("警告", "warning: reported only")}
# Expectations whose observed value is the table's schema (column names, a dtype), not a value.
_SCHEMA = ("expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list",
           "expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list")
# kwargs that configure GX rather than state the rule
_NOT_RULE = {"column", "column_A", "column_B", "column_list", "batch_id", "result_format", "catch_exceptions",
             "include_config", "meta"}


@dataclass(frozen=True)
class CheckRow:
    """One expectation of a suite as its page shows it."""

    number: int
    check: str
    description: str
    description_ja: str
    column: str
    rule: str
    policy: str
    success: bool
    raised: bool
    observed: str
    observed_number: bool                 # a count or aggregate (right-aligned), not the schema
    unexpected: int | None
    rows: int | None


@dataclass(frozen=True)
class Suite:
    """One validated table: its checks and what was quarantined from it."""

    name: str
    title_ja: str
    file: str | None
    success: bool
    checks: tuple[CheckRow, ...]
    rows: int | None                      # rows delivered (contract-quarantined ones included)
    quarantined_contract: int | None
    quarantined_validation: int | None
    reasons: tuple[tuple[str, str, int], ...]   # (reason, 理由, rows), contract then validation

    @property
    def page(self) -> str:
        return f"validations/{self.name}.html"

    def failed(self, policy: str) -> int:
        return sum(not c.success and c.policy == policy for c in self.checks)


def _text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,d}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


def _observed(kind: str, result: dict) -> str:
    value = result.get("observed_value")
    if value is None or (isinstance(value, (str, list)) and kind not in _SCHEMA):
        return "—"
    return _text(value)


def _column(kwargs: dict, meta: dict) -> str:
    column = meta.get("column") or kwargs.get("column") or kwargs.get("column_list") or (
        [kwargs["column_A"], kwargs["column_B"]] if "column_A" in kwargs else None)
    return _text(column) if column else "（表全体 / table）"


def check_row(number: int, result: dict) -> CheckRow:
    """A GX ExpectationValidationResult (as JSON) as one row of a suite page."""
    config = result["expectation_config"]
    kwargs, meta, outcome = config.get("kwargs", {}), config.get("meta", {}), result.get("result", {})
    rule = "; ".join(f"{k}={_text(v)}" for k, v in sorted(kwargs.items()) if k not in _NOT_RULE and v is not None)
    return CheckRow(number=number, check=meta.get("check", config["type"]),
                    description=meta.get("description", config["type"]), description_ja=meta.get("description_ja", ""),
                    column=_column(kwargs, meta), rule=f"{config['type']}({rule})", policy=meta.get("policy", "critical"),
                    success=bool(result.get("success")),
                    raised=bool(result.get("exception_info", {}).get("raised_exception")),
                    observed=_observed(config["type"], outcome),
                    observed_number=isinstance(outcome.get("observed_value"), (int, float)), unexpected=outcome.get("unexpected_count"),
                    rows=outcome.get("element_count"))


def suite(name: str, results: dict, delivered: dict | None) -> Suite:
    """One suite's page from its GX results and, for a delivered table, what the delivery record
    says of it: `file`, `rows`, `contract` and `validation` (rows quarantined by each) and the
    contract's `reasons` ({reason: rows}); validation's reasons are its failed quarantine checks."""
    delivered = delivered or {}
    checks = tuple(check_row(i, r) for i, r in enumerate(results.get("results", []), start=1))
    reasons = [(r, reason_ja(name, r), int(n)) for r, n in sorted(delivered.get("reasons", {}).items())]
    # worded as the quarantine files and the delivery record word them (expectations.policy.REASON_PREFIX)
    reasons += [(f"validation: {c.description}", f"検証：{c.description_ja or c.description}", int(c.unexpected or 0))
                for c in checks if c.policy == "quarantine" and not c.success and not c.raised]
    source = SOURCES.get(name)
    return Suite(name=name, title_ja=source.title_ja if source else ("特徴量表" if name == "features" else name),
                 file=delivered.get("file"), success=bool(results.get("success")), checks=checks,
                 rows=delivered.get("rows"), quarantined_contract=delivered.get("contract"),
                 quarantined_validation=delivered.get("validation"), reasons=tuple(reasons))


def data_docs_pages(month: str, results: dict[str, dict], defined: dict[str, int],
                    delivered: dict[str, dict]) -> dict[str, str]:
    """The site: relative path -> HTML. `results[suite]` is a suite's sanitised GX results,
    `defined[suite]` the number of expectations of every suite (those not validated this month
    are listed as such), `delivered[source]` the delivery record's facts (see `suite`)."""
    suites = [suite(name, results[name], delivered.get(name)) for name in sorted(results)]
    missing = [(name, SOURCES[name].title_ja if name in SOURCES else name, n)
               for name, n in sorted(defined.items()) if name not in results]
    pages = {INDEX: _ENV.get_template("data_docs.html.j2").render(
        month=month, page="index", suites=suites, missing=missing, policies=POLICIES, root="")}
    for s in suites:
        pages[s.page] = _ENV.get_template("data_docs.html.j2").render(
            month=month, page="suite", suite=s, policies=POLICIES, root="../")
    return pages

