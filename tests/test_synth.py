"""The synthetic ward: what a user of the demo, the tests and the benchmarks relies on.

The generator is checked from the outside, through the files it writes: the contract's layout and
headers, dates inside their delivery month, realistic population shares, a latent isolation
state that the signals really depend on, and a messy inbox that carries the same data as the
clean one. The contract reader below is deliberately independent of pipelines/ (a second opinion).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from synth import names as synth_names
from synth.ward import generate_ward

END = "2024-10"
MONTHS = 14
RESIDENTS = 3000

# Canonical columns in contract order (shared/design/data-contract.md), with each column's kind.
CONTRACT = {
    "residents": [("resident_id", "id"), ("household_id", "id"), ("name", "str"),
                  ("name_kana", "str"), ("birth_date", "date"), ("sex", "sex"), ("address", "str"),
                  ("district", "str"), ("relationship", "str"), ("moved_in_date", "date"),
                  ("phone", "str")],
    "checkups": [("resident_id", "id"), ("exam_date", "date"), ("program", "str")],
    "care_premiums": [("resident_id", "id"), ("billing_month", "month"), ("amount_due", "int"),
                      ("amount_paid", "int"), ("paid_date", "date"), ("collection", "enum")],
    "nhi_premiums": [("household_id", "id"), ("billing_month", "month"), ("amount_due", "int"),
                     ("amount_paid", "int")],
    "care_certifications": [("resident_id", "id"), ("care_level", "enum"), ("valid_from", "date"),
                            ("valid_to", "date")],
    "garbage_pickups": [("resident_id", "id"), ("pickup_date", "date"), ("result", "enum")],
    "welfare_contacts": [("resident_id", "id"), ("contact_date", "date"), ("channel", "enum"),
                         ("staff_type", "enum")],
    "outreach_outcomes": [("resident_id", "id"), ("visit_date", "date"), ("outcome", "enum")],
    "adverse_events": [("resident_id", "id"), ("event_date", "date"), ("event_type", "enum")],
    "exclusions": [("resident_id", "id"), ("reason", "enum"), ("valid_from", "date"),
                   ("valid_to", "date")],
}
ALIASES = {
    "宛名番号": "resident_id", "世帯番号": "household_id", "氏名": "name", "氏名カナ": "name_kana",
    "カナ氏名": "name_kana", "生年月日": "birth_date", "性別": "sex", "住所": "address",
    "地区": "district", "地区コード": "district", "続柄": "relationship", "住定日": "moved_in_date",
    "転入日": "moved_in_date", "電話番号": "phone", "受診日": "exam_date", "健診種別": "program",
    "賦課月": "billing_month", "調定月": "billing_month", "調定額": "amount_due",
    "収納額": "amount_paid", "収納日": "paid_date", "徴収方法": "collection",
    "要介護度": "care_level", "有効開始日": "valid_from", "有効終了日": "valid_to",
    "収集日": "pickup_date", "収集結果": "result", "対応日": "contact_date", "対応方法": "channel",
    "対応者": "staff_type", "訪問日": "visit_date", "訪問結果": "outcome", "発生日": "event_date",
    "事案種別": "event_type", "理由": "reason", "開始日": "valid_from", "終了日": "valid_to",
}
JAPANESE_CODES = {
    "要支援1": "support_1", "要支援2": "support_2", "要介護1": "care_1", "要介護2": "care_2",
    "要介護3": "care_3", "要介護4": "care_4", "要介護5": "care_5", "特別徴収": "special",
    "普通徴収": "ordinary", "収集済": "collected", "ごみ出しなし": "no_garbage",
    "応答なし": "no_response", "訪問": "visit", "電話": "phone", "窓口": "counter",
    "その他": "other", "民生委員": "minsei", "地域包括": "houkatsu", "保健師": "nurse",
    "要支援": "needs_support",
    "問題なし": "no_concern", "不在": "not_home", "拒否": "declined", "孤立死": "isolated_death",
    "緊急対応": "emergency", "申出": "objected", "支援中": "case_open", "入院入所": "institution",
}
SEX_CODES = {"1": "1", "男": "1", "M": "1", "2": "2", "女": "2", "F": "2", "9": "9", "X": "9"}
ERA_START = {"M": date(1868, 10, 23), "T": date(1912, 7, 30), "S": date(1926, 12, 25),
             "H": date(1989, 1, 8), "R": date(2019, 5, 1)}
ERA_LETTER = {"明治": "M", "大正": "T", "昭和": "S", "平成": "H", "令和": "R"}
EVENT_DATES = {"checkups": "exam_date", "care_premiums": "paid_date", "garbage_pickups": "pickup_date",
               "welfare_contacts": "contact_date", "outreach_outcomes": "visit_date",
               "adverse_events": "event_date"}


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def wards(tmp_path_factory):
    """Clean, same-seed, other-seed and messy versions of one small ward."""
    root = tmp_path_factory.mktemp("synth")
    out = {}
    for key, seed, messy in (("clean", 11, False), ("again", 11, False), ("other", 12, False),
                             ("messy", 11, True)):
        truth = root / f"{key}-truth.csv"
        summary = generate_ward(root / key, RESIDENTS, MONTHS, END, seed, messy=messy, truth=truth)
        out[key] = {"inbox": root / key, "truth": truth, "summary": summary}
    return out


@pytest.fixture(scope="module")
def clean(wards):
    return wards["clean"]


@pytest.fixture(scope="module")
def bigger(tmp_path_factory):
    """A larger ward, so that rates conditional on the latent state are not just noise."""
    root = tmp_path_factory.mktemp("synth-big")
    summary = generate_ward(root / "inbox", 10000, 14, END, 5, truth=root / "truth.csv")
    return {"inbox": root / "inbox", "truth": root / "truth.csv", "summary": summary}


def read(inbox: Path, month: str, source: str) -> pd.DataFrame:
    return pd.read_csv(inbox / month / f"{source}.csv", dtype=str, keep_default_na=False,
                       encoding="utf-8")


def month_end(month: str) -> date:
    return (pd.Period(month, freq="M").end_time).date()


def ages_on(birth_dates: pd.Series, on: date) -> pd.Series:
    born = pd.to_datetime(birth_dates)
    before_birthday = (on.month * 100 + on.day) < (born.dt.month * 100 + born.dt.day)
    return on.year - born.dt.year - before_birthday.astype(int)


def truth_with_months(ward) -> tuple[pd.DataFrame, list[str]]:
    truth = pd.read_csv(ward["truth"], dtype={"resident_id": str})
    return truth, ward["summary"]["months"]


# ------------------------------------------------------------------ layout and determinism
def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(wards):
    files = sorted(p.relative_to(wards["clean"]["inbox"]) for p in wards["clean"]["inbox"].rglob("*.csv"))
    assert files == sorted(p.relative_to(wards["again"]["inbox"]) for p in wards["again"]["inbox"].rglob("*.csv"))
    for rel in files:
        assert (wards["clean"]["inbox"] / rel).read_bytes() == (wards["again"]["inbox"] / rel).read_bytes(), rel
    assert wards["clean"]["truth"].read_bytes() == wards["again"]["truth"].read_bytes()
    mine, other = (wards[key]["inbox"] / END / "residents.csv" for key in ("clean", "other"))
    assert mine.read_bytes() != other.read_bytes()


def test_every_month_has_all_ten_sources_with_canonical_headers(clean):
    months = clean["summary"]["months"]
    assert months == [str(pd.Period(END, freq="M") - i) for i in range(MONTHS - 1, -1, -1)]
    assert sorted(p.name for p in clean["inbox"].iterdir()) == months
    for month in months:
        assert sorted(p.name for p in (clean["inbox"] / month).iterdir()) == sorted(f"{s}.csv" for s in CONTRACT)
        for source, columns in CONTRACT.items():
            raw = (clean["inbox"] / month / f"{source}.csv").read_bytes()
            assert not raw.startswith(b"\xef\xbb\xbf"), "clean files are UTF-8 without BOM"
            assert raw.decode("utf-8").split("\n", 1)[0] == ",".join(c for c, _ in columns)
    assert clean["summary"]["files"] == 10 * MONTHS


def test_summary_describes_the_last_month(clean):
    summary = clean["summary"]
    residents = read(clean["inbox"], END, "residents")
    assert summary["residents_last_month"] == len(residents)
    assert summary["districts"] == residents["district"].value_counts().reindex(
        list(summary["districts"]), fill_value=0).to_dict()
    assert 10 <= len(summary["districts"]) <= 14
    sizes = sorted(summary["districts"].values())
    assert sizes[-1] >= 2.5 * sizes[0], "districts are clearly unequal in size"
    truth = pd.read_csv(clean["truth"], dtype={"resident_id": str})
    assert summary["isolated_last_month"] == int(truth["isolated"].sum())


def test_no_event_date_after_its_delivery_month(clean):
    for month in clean["summary"]["months"]:
        first, last = pd.Period(month, freq="M").start_time.date(), month_end(month)
        for source, column in EVENT_DATES.items():
            table = read(clean["inbox"], month, source)
            dates = pd.to_datetime(table[column][table[column] != ""]).dt.date
            assert dates.between(first, last).all(), (month, source)
        for source in ("care_premiums", "nhi_premiums"):
            billed = read(clean["inbox"], month, source)["billing_month"]
            assert (billed <= month).all() and billed.str.fullmatch(r"\d{4}-\d{2}").all()
        residents = read(clean["inbox"], month, "residents")
        assert (pd.to_datetime(residents["birth_date"]).dt.date <= last).all()
        assert (pd.to_datetime(residents["moved_in_date"]).dt.date <= last).all()
        for source in ("care_certifications", "exclusions"):
            snapshot = read(clean["inbox"], month, source)
            assert (pd.to_datetime(snapshot["valid_from"]).dt.date <= last).all(), (month, source)


def test_late_premium_payments_are_redelivered_under_their_original_key(clean):
    months = clean["summary"]["months"]
    premiums = {m: read(clean["inbox"], m, "care_premiums") for m in months}
    late = pd.concat([p[p["billing_month"] < m].assign(delivered=m) for m, p in premiums.items()])
    assert len(late) > 0, "some arrears are paid late"
    assert (late["amount_paid"] == late["amount_due"]).all() and (late["paid_date"] != "").all()
    assert (late["paid_date"].str[:7] == late["delivered"]).all()
    earlier = pd.concat(premiums.values())
    unpaid = earlier[(earlier["amount_paid"] == "0")].set_index(["resident_id", "billing_month"]).index
    seen = late[late["billing_month"] >= months[0]].set_index(["resident_id", "billing_month"]).index
    assert seen.isin(unpaid).all(), "a late payment settles a bill first delivered unpaid"


def test_every_file_is_unique_on_its_contract_key(clean):
    """Duplicate keys would be quarantined by the reader (the contract's per-source keys)."""
    keys = {"residents": ["resident_id"], "checkups": ["resident_id", "exam_date", "program"],
            "care_premiums": ["resident_id", "billing_month"],
            "nhi_premiums": ["household_id", "billing_month"],
            "care_certifications": ["resident_id", "valid_from"],
            "garbage_pickups": ["resident_id", "pickup_date"],
            "welfare_contacts": ["resident_id", "contact_date", "channel", "staff_type"],
            "outreach_outcomes": ["resident_id", "visit_date"],
            "adverse_events": ["resident_id", "event_date"], "exclusions": ["resident_id", "reason"]}
    for month in clean["summary"]["months"]:
        for source, key in keys.items():
            assert not read(clean["inbox"], month, source).duplicated(key).any(), (month, source)


# ------------------------------------------------------------------ identifiers
def test_resident_ids_are_ten_digits_unique_and_never_reused(clean):
    gone, previous = set(), set()
    for month in clean["summary"]["months"]:
        residents = read(clean["inbox"], month, "residents")
        ids = residents["resident_id"]
        assert ids.str.fullmatch(r"\d{10}").all() and ids.is_unique
        assert residents["household_id"].str.fullmatch(r"\d{10}").all()
        assert not set(ids) & set(residents["household_id"]), "households come from another range"
        current = set(ids)
        assert not current & gone, "a person absent from a snapshot never returns"
        gone |= previous - current
        previous = current
    assert any(i.startswith("00") for i in ids), "leading zeros occur"


def test_no_twelve_digit_number_anywhere(wards):
    long_digits = re.compile(r"\d{11,}")
    for key in ("clean", "messy"):
        for path in wards[key]["inbox"].rglob("*.csv"):
            raw = path.read_bytes()
            text = raw.decode("utf-8-sig") if raw.startswith(b"\xef\xbb\xbf") or key == "clean" else raw.decode("cp932")
            assert not long_digits.search(unicodedata.normalize("NFKC", text)), path


# ------------------------------------------------------------------ realism
def test_population_looks_like_a_tokyo_special_ward(clean):
    residents = read(clean["inbox"], END, "residents")
    age = ages_on(residents["birth_date"], month_end(END))
    share = lambda mask: float(mask.mean())  # noqa: E731
    assert 0.08 <= share(age <= 14) <= 0.14
    assert 0.60 <= share((age >= 15) & (age <= 64)) <= 0.72
    assert 0.07 <= share((age >= 65) & (age <= 74)) <= 0.13
    assert 0.10 <= share(age >= 75) <= 0.16
    assert 0.006 <= share(age >= 90) <= 0.03 and age.max() <= 106
    sizes = residents.groupby("household_id").size()
    assert 1.7 <= sizes.mean() <= 2.1
    assert 0.42 <= (sizes == 1).mean() <= 0.60
    alone = residents["household_id"].map(sizes) == 1
    assert 0.25 <= alone[age >= 65].mean() <= 0.42
    assert 0.60 <= (residents["phone"] != "").mean() <= 0.80
    assert set(residents["sex"]) <= {"1", "2", "9"}


def test_population_stays_roughly_stable(clean):
    months = clean["summary"]["months"]
    first, last = (len(read(clean["inbox"], m, "residents")) for m in (months[0], months[-1]))
    assert abs(last - first) / first < 0.05


def test_households_are_consistent(clean):
    residents = read(clean["inbox"], END, "residents")
    residents["age"] = ages_on(residents["birth_date"], month_end(END))
    by_household = residents.groupby("household_id")
    assert (by_household["relationship"].apply(lambda r: (r == "世帯主").sum()) == 1).all()
    assert (by_household["address"].nunique() == 1).all() and (by_household["district"].nunique() == 1).all()
    assert (residents.loc[residents["relationship"] == "妻", "sex"] == "2").all()
    assert (residents.loc[residents["relationship"] == "夫", "sex"] == "1").all()
    head_age = residents[residents["relationship"] == "世帯主"].set_index("household_id")["age"]
    children = residents[residents["relationship"] == "子"]
    assert (children["household_id"].map(head_age) - children["age"] >= 10).all()
    surname = residents["name"].str.split("\u3000").str[0]
    family = residents[residents["relationship"].isin(["世帯主", "妻", "夫", "子"])]
    assert (surname[family.index].groupby(family["household_id"]).nunique() == 1).all()


def test_names_and_addresses_look_japanese_and_fit_cp932(clean):
    residents = read(clean["inbox"], END, "residents")
    assert residents["name"].str.fullmatch(r"\S+\u3000\S+").all()
    assert residents["name_kana"].str.fullmatch(r"[ァ-ヶー]+\u3000[ァ-ヶー]+").all()
    assert residents["address"].str.match(r"東京都みまもり区\D+\d+丁目\d+番\d+号").all()
    phones = residents.loc[residents["phone"] != "", "phone"]
    assert phones.str.fullmatch(r"0[3789]0?-\d{4}-\d{4}").all()
    assert len(synth_names.SURNAMES) >= 60
    assert all(sum(len(c) for c in given) >= 60 for given in (synth_names.GIVEN_MALE, synth_names.GIVEN_FEMALE))
    for column in ("name", "name_kana", "address", "district", "relationship"):
        "".join(residents[column]).encode("cp932")


# ------------------------------------------------------------------ the latent state and its signals
def test_isolation_is_most_common_among_the_old_living_alone(clean):
    truth, _ = truth_with_months(clean)
    residents = read(clean["inbox"], END, "residents")
    assert list(truth.columns) == ["resident_id", "isolated", "age", "living_alone", "district"]
    assert sorted(truth["resident_id"]) == sorted(residents["resident_id"])
    old_alone = truth[(truth["age"] >= 75) & (truth["living_alone"] == 1)]["isolated"].mean()
    young_with_others = truth[(truth["age"] < 65) & (truth["living_alone"] == 0)]["isolated"].mean()
    assert 0.08 <= old_alone <= 0.35
    assert young_with_others <= 0.03
    assert old_alone > 4 * young_with_others


def test_truth_file_is_refused_inside_the_inbox(tmp_path):
    with pytest.raises(ValueError):
        generate_ward(tmp_path / "inbox", 200, 1, END, 1, truth=tmp_path / "inbox" / "truth.csv")


def test_signals_depend_on_the_latent_state(bigger):
    truth, months = truth_with_months(bigger)
    isolated = set(truth.loc[truth["isolated"] == 1, "resident_id"])
    last_year = months[-12:]
    events = {s: pd.concat([read(bigger["inbox"], m, s) for m in last_year])
              for s in ("checkups", "care_premiums", "garbage_pickups", "welfare_contacts")}

    eligible = truth[truth["age"] >= 41]
    attended = eligible["resident_id"].isin(events["checkups"]["resident_id"])
    rate = attended.groupby(eligible["isolated"]).mean()
    assert rate[1] < 0.6 * rate[0], f"checkups: isolated {rate[1]:.2f} vs {rate[0]:.2f}"

    bills = events["care_premiums"]
    bills = bills[(bills["collection"] == "ordinary") & (bills["billing_month"].isin(last_year[-6:]))]
    unpaid = (bills["amount_paid"] == "0").groupby(bills["resident_id"].isin(isolated)).mean()
    assert unpaid[True] > 2 * unpaid[False], f"arrears: {unpaid.to_dict()}"

    pickups = events["garbage_pickups"][events["garbage_pickups"]["pickup_date"] >= last_year[-6]]
    no_response = (pickups["result"] == "no_response").groupby(pickups["resident_id"].isin(isolated)).mean()
    assert no_response[True] > 2 * no_response[False], f"garbage: {no_response.to_dict()}"

    old = truth[truth["age"] >= 65]
    contacted = old["resident_id"].isin(events["welfare_contacts"]["resident_id"])
    contact_rate = contacted.groupby(old["isolated"]).mean()
    assert contact_rate[1] < contact_rate[0]


def test_outreach_follows_todays_rule(clean):
    months = clean["summary"]["months"]
    visited_at: dict[str, date] = {}
    for previous, month in zip(months[:-1], months[1:], strict=True):
        residents = read(clean["inbox"], previous, "residents")
        excluded = set(read(clean["inbox"], previous, "exclusions")["resident_id"])
        age = ages_on(residents["birth_date"], month_end(previous))
        sizes = residents.groupby("household_id").size()
        alone = residents["household_id"].map(sizes) == 1
        eligible = set(residents.loc[(age >= 75) & alone, "resident_id"]) - excluded
        visits = read(clean["inbox"], month, "outreach_outcomes")
        assert len(visits) <= round(0.003 * len(residents)) and len(visits) > 0
        assert set(visits["resident_id"]) <= eligible
        for rid, day in zip(visits["resident_id"], pd.to_datetime(visits["visit_date"]).dt.date, strict=True):
            assert rid not in visited_at or day - visited_at[rid] > timedelta(days=180)
            visited_at[rid] = day
        assert set(visits["outcome"]) <= {"needs_support", "no_concern", "not_home", "declined"}


# ------------------------------------------------------------------ the messy inbox
@lru_cache(maxsize=None)
def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


@lru_cache(maxsize=None)
def parse_date(text: str) -> str:
    """Any date form the contract accepts -> ISO (checks that 和暦 stays inside its era)."""
    text = nfkc(text)
    if not text:
        return ""
    if m := re.fullmatch(r"(\d{4})(?:-|/)?(\d{1,2})(?:-|/)?(\d{1,2})", text):
        return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    m = (re.fullmatch(r"(明治|大正|昭和|平成|令和)(元|\d{1,2})年(\d{1,2})月(\d{1,2})日", text)
         or re.fullmatch(r"([MTSHR])(\d{1,2})[./](\d{1,2})[./](\d{1,2})", text))
    assert m, f"not a contract date: {text!r}"
    letter = ERA_LETTER.get(m[1], m[1])
    year = ERA_START[letter].year + (1 if m[2] == "元" else int(m[2])) - 1
    day = date(year, int(m[3]), int(m[4]))
    eras = sorted(ERA_START.values())
    following = [start for start in eras if start > ERA_START[letter]]
    assert ERA_START[letter] <= day and (not following or day < following[0]), f"{text} outside its era"
    return day.isoformat()


@lru_cache(maxsize=None)
def parse_month(text: str) -> str:
    text = nfkc(text)
    if m := re.fullmatch(r"(\d{4})[-/]?(\d{2})", text):
        return f"{m[1]}-{m[2]}"
    m = (re.fullmatch(r"(明治|大正|昭和|平成|令和)(元|\d{1,2})年(\d{1,2})月", text)
         or re.fullmatch(r"([MTSHR])(\d{1,2})\.(\d{1,2})", text))
    assert m, f"not a contract month: {text!r}"
    letter = ERA_LETTER.get(m[1], m[1])
    year = ERA_START[letter].year + (1 if m[2] == "元" else int(m[2])) - 1
    return f"{year:04d}-{int(m[3]):02d}"


def read_like_the_contract(path: Path, source: str) -> pd.DataFrame:
    """A minimal contract reader: detect the encoding, map headers, normalise every value."""
    raw = path.read_bytes()
    encoding = "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "cp932"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    kinds = dict(CONTRACT[source])
    renamed = {}
    for header in frame.columns:
        name = nfkc(header)
        renamed[header] = ALIASES.get(name, name)
    frame = frame.rename(columns=renamed)
    assert sorted(frame.columns) == sorted(kinds), (path, list(frame.columns))
    for column, kind in kinds.items():
        values = frame[column]
        if kind == "id":
            frame[column] = values.map(nfkc)
        elif kind == "date":
            frame[column] = values.map(parse_date)
        elif kind == "month":
            frame[column] = values.map(parse_month)
        elif kind == "int":
            frame[column] = values.map(lambda v: nfkc(v).replace(",", ""))
        elif kind == "sex":
            frame[column] = values.map(lambda v: SEX_CODES[nfkc(v)])
        elif kind == "enum":
            frame[column] = values.map(lambda v: JAPANESE_CODES.get(v, v))
    return frame[[c for c, _ in CONTRACT[source]]]


def test_messy_inbox_decodes_and_carries_the_same_rows(wards):
    clean_inbox, messy_inbox = wards["clean"]["inbox"], wards["messy"]["inbox"]
    encodings = set()
    for month in wards["clean"]["summary"]["months"]:
        for source in CONTRACT:
            raw = (messy_inbox / month / f"{source}.csv").read_bytes()
            if raw.startswith(b"\xef\xbb\xbf"):
                text = raw.decode("utf-8-sig")
                encodings.add("utf-8-sig")
            else:
                text = raw.decode("cp932")
                encodings.add("cp932")
            clean_text = (clean_inbox / month / f"{source}.csv").read_text(encoding="utf-8")
            assert len(text.splitlines()) == len(clean_text.splitlines()), (month, source)
        clean_ids = set(read(clean_inbox, month, "residents")["resident_id"])
        messy = read_like_the_contract(messy_inbox / month / "residents.csv", "residents")
        assert set(messy["resident_id"]) == clean_ids
    assert encodings == {"cp932", "utf-8-sig"}
    assert wards["messy"]["summary"] == wards["clean"]["summary"]
    assert wards["messy"]["truth"].read_bytes() == wards["clean"]["truth"].read_bytes()


def test_a_contract_reader_gets_the_same_table_from_messy_and_clean(wards):
    clean_inbox, messy_inbox = wards["clean"]["inbox"], wards["messy"]["inbox"]
    seen_forms = set()
    for month in wards["clean"]["summary"]["months"]:
        for source in CONTRACT:
            messy = read_like_the_contract(messy_inbox / month / f"{source}.csv", source)
            expected = read(clean_inbox, month, source)
            pd.testing.assert_frame_equal(messy, expected, obj=f"{month}/{source}")
        raw = (messy_inbox / month / "residents.csv").read_bytes()
        text = raw.decode("utf-8-sig") if raw.startswith(b"\xef\xbb\xbf") else raw.decode("cp932")
        seen_forms |= {form for form, pattern in (("kanji era", "年"), ("full-width", "０"),
                                                  ("alias", "宛名番号")) if pattern in text}
    assert seen_forms == {"kanji era", "full-width", "alias"}, "the messy inbox is actually messy"
