"""The data contract (docs: /work/shared/design/data-contract.md) as data.

Every source the ward delivers is described here once; readers, ingest and validation
derive their behaviour from these objects instead of re-stating column lists.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Mapping

ColumnType = Literal["id", "text", "date", "month", "int", "bool", "enum"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False
    aliases: tuple[str, ...] = ()
    # enum only: every accepted spelling (NFKC-normalised) -> canonical value.
    # Lookups are case-insensitive for ASCII and ignore whitespace (see parsing.parse_enums).
    values: Mapping[str, str] | None = None
    # A direct identifier never leaves the custodian's zone (pseudonymisation drops it).
    identifier: bool = False
    # Yen amounts: a negative value is a data error, not a refund.
    nonnegative: bool = False
    # Validity periods (valid_from / valid_to) legitimately lie after the delivery month:
    # a certification delivered in October may run until next March. Every other date or
    # month is an observation and cannot be later than the delivery month's end.
    may_be_future: bool = False

    def __post_init__(self) -> None:
        if (self.type == "enum") != (self.values is not None):
            raise ValueError(f"{self.name}: values are given exactly for enum columns")
        if self.nonnegative and self.type != "int":
            raise ValueError(f"{self.name}: only int columns can be nonnegative")
        if self.may_be_future and self.type not in ("date", "month"):
            raise ValueError(f"{self.name}: only dates and months can lie in the future")


@dataclass(frozen=True)
class Source:
    name: str
    title_ja: str
    kind: Literal["snapshot", "event"]
    required: bool
    columns: tuple[Column, ...]
    # Identity of a row: unique in a snapshot file; for events, a later delivery with the
    # same key replaces the earlier row.
    key: tuple[str, ...]
    # The row's own date column (None for residents). May be optional (exclusions.valid_from).
    date_column: str | None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate column names")
        by_name = {c.name: c for c in self.columns}
        # An optional key column takes part with its value, missing included (two checkups
        # on one day are legitimate when their programmes differ), but the key must be
        # anchored on required columns.
        for name in self.key:
            if name not in by_name:
                raise ValueError(f"{self.name}: key column {name} is not a column")
        if not by_name[self.key[0]].required:
            raise ValueError(f"{self.name}: the first key column must be required")
        if self.date_column is not None and (
            self.date_column not in by_name or by_name[self.date_column].type not in ("date", "month")
        ):
            raise ValueError(f"{self.name}: date column {self.date_column} must be a date or month")

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")


def _enum(*groups: tuple[str, tuple[str, ...]]) -> Mapping[str, str]:
    """Map each canonical value and its listed spellings to the canonical value.

    The canonical value is accepted too, so a canonical table written back to CSV reads again.
    """
    values: dict[str, str] = {}
    for canonical, spellings in groups:
        for spelling in (canonical, *spellings):
            key = unicodedata.normalize("NFKC", spelling)
            if values.setdefault(key, canonical) != canonical:
                raise ValueError(f"spelling {spelling!r} maps to two values")
    return MappingProxyType(values)


SEX = _enum(
    # 男性/女性 are not in the contract table but are how many vendor systems print sex.
    ("male", ("1", "男", "M", "男性")),
    ("female", ("2", "女", "F", "女性")),
    ("other", ("9", "X")),
)
CARE_LEVEL = _enum(
    ("support_1", ("要支援1",)),
    ("support_2", ("要支援2",)),
    *((f"care_{n}", (f"要介護{n}",)) for n in range(1, 6)),
)
COLLECTION = _enum(
    # 特徴/普徴 are the standard abbreviations in 介護保険 systems.
    ("special", ("特別徴収", "特徴")),
    ("ordinary", ("普通徴収", "普徴")),
)
PICKUP_RESULT = _enum(
    ("collected", ("収集済",)),
    ("no_garbage", ("ごみ出しなし",)),
    ("no_response", ("応答なし",)),
)
CHANNEL = _enum(("visit", ("訪問",)), ("phone", ("電話",)), ("counter", ("窓口",)), ("other", ("その他",)))
STAFF_TYPE = _enum(
    ("minsei", ("民生委員",)),
    ("houkatsu", ("地域包括",)),
    ("nurse", ("保健師",)),
    ("other", ("その他",)),
)
OUTCOME = _enum(
    ("needs_support", ("要支援",)),
    ("no_concern", ("問題なし",)),
    ("not_home", ("不在",)),
    ("declined", ("拒否",)),
    # Found on the visit, and not a label (models/labels.py): the person could not be assessed.
    ("hospitalised", ("入院中",)),
    ("moved", ("転居",)),
    ("institution", ("施設入所",)),
    ("deceased", ("死亡",)),
    ("other", ("その他",)),
)
EVENT_TYPE = _enum(("isolated_death", ("孤立死",)), ("emergency", ("緊急対応",)))
EXCLUSION_REASON = _enum(
    ("objected", ("申出",)),
    ("case_open", ("支援中",)),
    ("institution", ("入院入所",)),
)

RESIDENT_ID = Column("resident_id", "id", required=True, aliases=("宛名番号",))
HOUSEHOLD_ID = Column("household_id", "id", required=True, aliases=("世帯番号",))
BILLING_MONTH = Column("billing_month", "month", required=True, aliases=("賦課月", "調定月"))
AMOUNT_DUE = Column("amount_due", "int", required=True, aliases=("調定額",), nonnegative=True)
AMOUNT_PAID = Column("amount_paid", "int", required=True, aliases=("収納額",), nonnegative=True)

_SOURCES = (
    Source(
        "residents", "住民記録", "snapshot", True,
        (
            RESIDENT_ID,
            HOUSEHOLD_ID,
            Column("name", "text", required=True, aliases=("氏名",), identifier=True),
            Column("name_kana", "text", aliases=("氏名カナ", "カナ氏名"), identifier=True),
            Column("birth_date", "date", required=True, aliases=("生年月日",), identifier=True),
            Column("sex", "enum", required=True, aliases=("性別",), values=SEX),
            Column("address", "text", required=True, aliases=("住所",), identifier=True),
            Column("district", "text", required=True, aliases=("地区", "地区コード")),
            Column("relationship", "text", aliases=("続柄",)),
            Column("moved_in_date", "date", aliases=("住定日", "転入日")),
            Column("phone", "text", aliases=("電話番号",), identifier=True),
        ),
        key=("resident_id",), date_column=None,
    ),
    Source(
        "checkups", "健診受診", "event", True,
        (
            RESIDENT_ID,
            Column("exam_date", "date", required=True, aliases=("受診日",)),
            Column("program", "text", aliases=("健診種別",)),
        ),
        key=("resident_id", "exam_date", "program"), date_column="exam_date",
    ),
    Source(
        "care_premiums", "介護保険料 収納", "event", True,
        (
            RESIDENT_ID,
            BILLING_MONTH,
            AMOUNT_DUE,
            AMOUNT_PAID,
            Column("paid_date", "date", aliases=("収納日",)),
            Column("collection", "enum", aliases=("徴収方法",), values=COLLECTION),
        ),
        key=("resident_id", "billing_month"), date_column="billing_month",
    ),
    Source(
        "nhi_premiums", "国民健康保険料 収納", "event", False,
        (HOUSEHOLD_ID, BILLING_MONTH, AMOUNT_DUE, AMOUNT_PAID),
        key=("household_id", "billing_month"), date_column="billing_month",
    ),
    Source(
        "care_certifications", "要介護認定", "snapshot", False,
        (
            RESIDENT_ID,
            Column("care_level", "enum", required=True, aliases=("要介護度",), values=CARE_LEVEL),
            Column("valid_from", "date", required=True, aliases=("有効開始日",), may_be_future=True),
            Column("valid_to", "date", aliases=("有効終了日",), may_be_future=True),
        ),
        key=("resident_id", "valid_from"), date_column="valid_from",
    ),
    Source(
        "garbage_pickups", "訪問収集", "event", False,
        (
            RESIDENT_ID,
            Column("pickup_date", "date", required=True, aliases=("収集日",)),
            Column("result", "enum", required=True, aliases=("収集結果",), values=PICKUP_RESULT),
        ),
        key=("resident_id", "pickup_date"), date_column="pickup_date",
    ),
    Source(
        "welfare_contacts", "見守り・相談記録", "event", False,
        (
            RESIDENT_ID,
            Column("contact_date", "date", required=True, aliases=("対応日",)),
            Column("channel", "enum", aliases=("対応方法",), values=CHANNEL),
            Column("staff_type", "enum", aliases=("対応者",), values=STAFF_TYPE),
        ),
        key=("resident_id", "contact_date", "channel", "staff_type"), date_column="contact_date",
    ),
    Source(
        # The contract makes this source required only once lists have been released; that
        # depends on run history, so ingest enforces it, not the static contract.
        "outreach_outcomes", "訪問結果", "event", False,
        (
            RESIDENT_ID,
            Column("visit_date", "date", required=True, aliases=("訪問日",)),
            Column("outcome", "enum", required=True, aliases=("訪問結果",), values=OUTCOME),
            # The visitor's free note (特記事項 on the sheet) may name anyone: it stays in the
            # custody zone's delivery like a name does, and never reaches the lake.
            Column("note", "text", aliases=("特記事項",), identifier=True),
        ),
        key=("resident_id", "visit_date"), date_column="visit_date",
    ),
    Source(
        "adverse_events", "重大事案", "event", False,
        (
            RESIDENT_ID,
            Column("event_date", "date", required=True, aliases=("発生日",)),
            Column("event_type", "enum", required=True, aliases=("事案種別",), values=EVENT_TYPE),
        ),
        key=("resident_id", "event_date"), date_column="event_date",
    ),
    Source(
        "exclusions", "除外", "snapshot", False,
        (
            RESIDENT_ID,
            Column("reason", "enum", required=True, aliases=("理由",), values=EXCLUSION_REASON),
            Column("valid_from", "date", aliases=("開始日",), may_be_future=True),
            Column("valid_to", "date", aliases=("終了日",), may_be_future=True),
        ),
        key=("resident_id", "reason"), date_column="valid_from",
    ),
)

SOURCES: Mapping[str, Source] = MappingProxyType({s.name: s for s in _SOURCES})
