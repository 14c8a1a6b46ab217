"""The report's context as one typed structure: every section always present.

The template renders with jinja2.StrictUndefined, so a key that is missing is an error. Rather
than guess which keys a month happens to have (a cold-start month has no split plot, a first
month has no drift, a ward with no outcomes has no precision), every section is a frozen
dataclass whose fields always exist: what could not be computed is None, and beside it a
`Notice` says in words, Japanese with English alongside, what was not possible and why. The
report lists every notice at the top and again in its section.

Rows inside a section (metric rows, fairness rows, table cells) are built by the report from
fixed literals, so they too are always complete.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from features.catalog import EXPLORATION, NO_SINGLE_REASON


@dataclass(frozen=True)
class Notice:
    """What was not possible this month, and why, in both languages."""
    section: str        # the report section it belongs to (its anchor id)
    ja: str
    en: str

    def text(self) -> str:
        return f"{self.ja} / {self.en}"


@dataclass(frozen=True)
class Figure:
    """An embedded PNG (data URI), or None with the reason there is none."""
    uri: str | None
    why_not: Notice | None = None

    def __post_init__(self) -> None:
        if (self.uri is None) == (self.why_not is None):
            raise ValueError("a figure has either an image or a reason why not, never both or neither")


@dataclass(frozen=True)
class Metadata:
    rows: tuple[tuple[str, str], ...]
    inputs: tuple[dict, ...]
    stages: tuple[dict, ...]


@dataclass(frozen=True)
class DataQuality:
    sources: tuple[dict, ...]
    absent: tuple[str, ...]
    stray: tuple[str, ...]
    per_source: tuple[dict, ...]
    expectations: int
    failed: int
    critical: tuple[dict, ...]
    quarantined: tuple[dict, ...]
    warnings: tuple[dict, ...]
    data_docs: str | None
    empty_sources: tuple[str, ...]     # delivered sources with no rows this month


@dataclass(frozen=True)
class Coverage:
    """How few of the ranked holdout people have a known outcome (selective labels), as shown."""
    cohort: str
    labelled: str
    rate: str


@dataclass(frozen=True)
class Training:
    mode: str
    reason: str
    holdout_month: str | None
    train_months: tuple[str, ...]
    fit_months: tuple[str, ...]
    calibration_months: tuple[str, ...]
    label_counts: dict
    labels: tuple[tuple[str, str], ...]     # the label counts in words, as the disclosure pass shows them
    baseline: str
    model_version: str | None
    calibration: str | None
    criterion: str | None
    serving: str | None
    challenger_version: str | None
    champion_version: str | None
    coverage: Coverage | None
    why_not: Notice | None          # no model was trained this month (cold start)


@dataclass(frozen=True)
class MetricRow:
    """One ranker's figures at k, as the disclosure pass shows them (rates with their 95% interval)."""
    name: str
    used: bool
    k: int | None
    labelled: str
    positives: str
    precision: str
    recall: str
    precision_ties: str
    roc_auc: str
    average_precision: str
    brier: str


@dataclass(frozen=True)
class ModelTables:
    candidates: tuple[MetricRow, ...]
    districts: tuple[MetricRow, ...]
    points: tuple[str, ...]
    points_min: int


@dataclass(frozen=True)
class Images:
    splits: Figure
    pr_at_k: Figure
    calibration: Figure


@dataclass(frozen=True)
class Calibration:
    bins: tuple[dict, ...]
    brier: float | None


@dataclass(frozen=True)
class Evaluation:
    """The model-vs-baselines section: rows when a holdout was evaluated, else why not."""
    rows: tuple[MetricRow, ...]
    why_not: Notice | None           # no holdout evaluation at all
    precision_why_not: Notice | None  # a holdout, but no labelled person in it (or in the top k)


@dataclass(frozen=True)
class RemedyView:
    """§5's remedy (reports/remedy_section.py): which one the list used, and its effect on the holdout."""
    said: tuple[dict, ...]                   # sentences (ja, en)
    header: tuple[str, ...]                  # the effect per age band, without and with the remedy
    rows: tuple[tuple[str, ...], ...]
    why_not: Notice | None                   # a remedy is set, but there is no holdout to measure it on


@dataclass(frozen=True)
class Fairness:
    computed: tuple[dict, ...]        # this month's list, audited by the report (reports/fairness_tables.py)
    stored: tuple[dict, ...]          # the holdout audit of each ranker, recorded at training
    ratio: float                      # [fairness] ratio_bounds: the lower bound (recall)
    holdout_why_not: Notice | None    # holdout recall/FDR per group cannot be shown
    findings: tuple[dict, ...] = ()   # flagged groups and groups with nobody selected, in sentences (ja, en)
    high: float = 1.25                # the upper bound (false-discovery rate)
    remedy: RemedyView | None = None  # shown when a group's recall is named or a remedy is configured


@dataclass(frozen=True)
class Shap:
    reasons: tuple[dict, ...]
    image: str | None
    serving: bool
    version: str | None
    rows: tuple[dict, ...]
    base: float | None
    n: int | None
    why_not: Notice | None
    wordings: tuple[dict, ...] = ()          # the list's reasons as worded, ties collapsed with "×n"
    method: tuple[str, str] | None = None    # (ja, en) how the contributions were computed, per model kind
    reference: tuple[str, str] | None = None  # (ja, en) whom they were taken against: the eligible cohort
    rule: tuple[str, str] | None = None      # (ja, en) when a contribution counts as a reason


@dataclass(frozen=True)
class Drift:
    previous: str | None
    rows: tuple[dict, ...]
    flagged: int
    threshold: float
    why_not: Notice | None


@dataclass(frozen=True)
class ListSection:
    """Cohort counts and the list, with the districts where capacity could not be filled."""
    cohort: tuple[tuple[str, str], ...]
    capacity: int
    listed: int
    why_not: tuple[Notice, ...]


@dataclass(frozen=True)
class ReportContext:
    month: str
    threshold: int
    meta: Metadata
    quality: DataQuality
    delivery_notes: tuple[Notice, ...]
    training: Training
    evaluation: Evaluation
    model_tables: ModelTables
    images: Images
    calibration: Calibration
    listing: ListSection
    tables: tuple[dict, ...]
    fairness: Fairness
    shap: Shap
    drift: Drift
    list_path: Path
    mlflow_uri: str
    settings: dict
    explanations: Path | None = None
    model_card: str | None = None
    holdout: object | None = field(default=None, repr=False)   # reports.evaluation.Holdout, for the card
    disclosed: object | None = field(default=None, repr=False)  # reports.disclosure.Disclosed: every cell published

    @property
    def notices(self) -> tuple[Notice, ...]:
        """Every "not possible this month" sentence, in report order."""
        found: list[Notice] = []

        def add(value) -> None:
            if isinstance(value, Notice) and value not in found:
                found.append(value)
            elif isinstance(value, Figure):
                add(value.why_not)
            elif isinstance(value, tuple):
                for v in value:
                    add(v)
            elif hasattr(value, "__dataclass_fields__") and not isinstance(value, ReportContext):
                for f in fields(value):
                    add(getattr(value, f.name))

        for f in fields(self):
            if f.name not in ("holdout", "disclosed"):
                add(getattr(self, f.name))
        return tuple(found)

    def template_vars(self) -> dict:
        """The template's names: the fields (typed, not flattened) and the notices."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "notices": self.notices, "exploration": EXPLORATION, "no_single_reason": NO_SINGLE_REASON}
