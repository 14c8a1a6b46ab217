"""Synthetic ward generator: monthly extracts of the fictional 東京都みまもり区.

`generate_ward` simulates a ward month by month and writes the ten sources of the data contract
(docs: shared/design/data-contract.md) into an inbox, exactly as the pipeline ingests them. It is
used by the demo, the tests and the benchmarks; no real person is behind any row.

The simulation, in one paragraph: households are drawn from kinds calibrated to a Tokyo special
ward in the 2020s (half of households single-person, mean size ~1.9, ~22% aged 65+). Each month
people age, die by a Japanese life-table hazard, move out (mostly aged 20-39) and are replaced by
move-ins and births. A latent monthly Markov state `isolated` (never written to the inbox) rises
with age, living alone, male sex, no care certification, short residence and bereavement, and
drives noisy signals: fewer checkups, premium arrears, garbage-collection non-response, fewer
welfare contacts, worse outreach outcomes and adverse events. The ward visits by today's rule
(75+ living alone, oldest first) so the labels carry its selection bias.

Clean mode writes canonical UTF-8 CSV. Messy mode writes the same data the way vendor systems
do (CP932 or UTF-8 with BOM, Japanese header aliases, 和暦, full-width digits, Japanese codes);
every format choice comes from its own RNG so the data stream is identical in both modes.

Vectorised throughout: the state is a set of numpy arrays, one row per person (or household),
and a month is a few dozen array operations, so time and memory grow linearly with the ward.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from . import synth_names as names

# =============================================================================================
# Rates and structure. Sources are public aggregates, rounded; where none fits, the value is an
# assumption chosen so the ward reads true to a welfare analyst. Tests assert the resulting bands.
# =============================================================================================

# Months simulated before the first delivered month, so that the outreach rule, open cases and
# premium arrears already have a history when the inbox starts.
BURN_IN_MONTHS = 12

# ID ranges: 宛名番号 and 世帯番号 are both 10 digits, from disjoint ranges (assumption). Leading
# zeros are common for 宛名番号. Sequential with random gaps (other registrations in between).
RESIDENT_ID_BASE = 10_000_000          # -> "001xxxxxxx"
HOUSEHOLD_ID_BASE = 5_100_000_000      # -> "51xxxxxxxx"
ID_GAP_MAX = 9

# Household kinds: (builder, head-age bins (lo, hi, weight), share of households).
# Tuned so that the ward matches 2020 census 特別区部 shapes: ~50% one-person households, mean
# size ~1.9, 0-14 ~11%, 15-64 ~66%, 65-74 ~10%, 75+ ~12.5%, 90+ ~1.5%, 65+ living alone ~1/3.
ELDER_BINS = ((65, 69, .20), (70, 74, .24), (75, 79, .22), (80, 84, .17), (85, 89, .11),
              (90, 94, .05), (95, 99, .012), (100, 102, .002))
ELDER_COUPLE_BINS = ((65, 69, .26), (70, 74, .28), (75, 79, .23), (80, 84, .14), (85, 89, .07),
                     (90, 94, .02))
ELDER_SINGLE_BINS = ((65, 69, .13), (70, 74, .17), (75, 79, .20), (80, 84, .20), (85, 89, .17),
                     (90, 94, .095), (95, 99, .03), (100, 102, .005))
INITIAL_KINDS = (
    ("single", ((18, 22, .08), (23, 29, .22), (30, 39, .19), (40, 49, .15), (50, 59, .15),
                (60, 64, .10)), .37),
    ("single", ELDER_SINGLE_BINS, .14),
    ("couple", ((24, 34, .32), (35, 49, .23), (50, 59, .25), (60, 64, .20)), .075),
    ("couple", ELDER_COUPLE_BINS, .10),
    ("couple_children", ((30, 39, .22), (40, 49, .40), (50, 59, .30), (60, 64, .08)), .165),
    ("single_parent", ((30, 39, .30), (40, 54, .70)), .05),
    ("elder_with_child", ELDER_BINS[1:], .033),
    ("elder_couple_child", ELDER_COUPLE_BINS, .018),
    ("three_generation", ((35, 44, .5), (45, 56, .5)), .018),
    ("sharers", ((20, 29, .6), (30, 45, .4)), .02),
)
# Move-ins: mostly young singles, some families and some elderly (joining family nearby).
ARRIVAL_KINDS = (
    ("single", ((18, 22, .22), (23, 29, .45), (30, 39, .23), (40, 64, .10)), .52),
    ("single", ((65, 74, .45), (75, 89, .55)), .025),
    ("couple", ((25, 39, .8), (40, 64, .2)), .15),
    ("couple", ((65, 84, 1.0),), .025),
    ("couple_children", ((28, 34, .4), (35, 44, .45), (45, 54, .15)), .16),
    ("single_parent", ((28, 44, 1.0),), .03),
    ("sharers", ((20, 29, 1.0),), .03),
)
COUPLE_HEAD_MALE = 0.88          # 世帯主 of a married couple is usually the husband (住民票 practice)
CHILDREN_COUNT = {"couple_children": ((1, 2, 3), (.45, .43, .12)),
                  "single_parent": ((1, 2), (.65, .35)),
                  "three_generation": ((1, 2), (.5, .5))}
MOTHER_AGE_AT_BIRTH = (24, 42)   # Tokyo mean age at birth ~32-33 (人口動態統計)
SEX_UNKNOWN_SHARE = 0.0003       # sex `9`: very rare in 住民記録; kept so readers see the code
# Share of men among people living alone, by age: women outlive men (census 特別区 single households).
SINGLE_MALE_SHARE_AGES = (18, 50, 65, 75, 85, 95)
SINGLE_MALE_SHARE = (.58, .58, .50, .36, .24, .15)
# Years since moving in, exponential means by head age (assumption: Tokyo renters move often).
RESIDENCE_YEARS_MEAN = ((0, 3.0), (35, 10.0), (65, 25.0))
GIVEN_NAME_COHORT_BOUNDS = (1955, 1985)   # birth years splitting the given-name lists

# Addresses: lots per 丁目 and how many of them are apartment buildings (assumption).
BAN_MAX, GO_MAX = 30, 20
BUILDING_LOT_SHARE = 40          # percent of lots that are apartment buildings
BUILDING_WANTED = {"young": .90, "family": .50, "elderly": .35}
# Phones: landline for the household, mobile for the person; ~70% of residents have one on file.
LANDLINE_BY_HEAD_AGE = ((0, .08), (40, .35), (65, .70))
PHONE_ON_FILE = {"child": .05, "adult": .78, "elderly": .88}
MOBILE_PREFIXES, MOBILE_P = ("090", "080", "070"), (.45, .40, .15)

# Mortality: Gompertz fit to the 2022 Japanese life table (q at 60: men .0062, women .0026;
# doubling every ~6.6 / ~6.2 years), plus a floor for young ages; capped at .6 per year.
LT_LN_Q60 = {1: np.log(0.0062), 2: np.log(0.0026)}
LT_SLOPE = {1: 0.105, 2: 0.112}
LT_FLOOR, LT_CAP = 0.0003, 0.6
# Relative risk by care level (index = level + 1; uncertified first), averaging ~1 over the old.
CERT_MORTALITY = np.array([0.9, 1.0, 1.0, 1.2, 1.2, 1.8, 1.8, 1.8])

# Move-outs: ~0.7% of residents a month (Tokyo 特別区 転出 ~8%/year), mostly aged 20-39.
MOVE_OUT_RATE = 0.0068            # share of residents leaving with their whole household
MOVE_OUT_AGES = (0, 18, 22, 30, 40, 50, 65, 75, 90)
MOVE_OUT_MULT = (0.6, 0.8, 2.4, 2.0, 1.0, 0.55, 0.2, 0.2, 0.25)
CHILD_LEAVES_HOME = 0.004         # monthly, 子 aged 18-34 moving out of the ward alone
# 75+ living alone who move to a care facility or to family outside the ward (特養 入所 etc.).
ELDERLY_ALONE_LEAVES = 0.003
# Births: Tokyo 特別区 ~7 per 1000 residents a year (人口動態統計 2022).
BIRTH_MONTHLY = ((20, 0.002), (25, 0.010), (30, 0.012), (35, 0.008), (40, 0.002), (45, 0.0))

# Latent isolation: monthly entry hazard = logistic(intercept + terms), exit 3%/month baseline.
# Calibrated so that stationary prevalence is ~15-20% among 65+ living alone, ~3-5% among 65+
# with others, ~3-5% under 65 alone and ~1% under 65 with others (assumption; no official rate).
ISO_INTERCEPT = -8.25
ISO_ALONE = 1.3
ISO_ALONE_ELDERLY = 0.35        # living alone weighs more when old
ISO_ELDERLY = 1.25               # aged 65+
ISO_AGE_SLOPE = 0.03             # per year above 65
ISO_MALE = 0.35
ISO_NO_CERT_75 = 0.3             # 75+ without care certification: no care manager looks in
ISO_SHORT_RESIDENCE = 0.3        # moved in less than two years ago
ISO_BEREAVED = 1.2               # lost a household member in the last 12 months
ISO_SUPPORTED = -1.0             # while a case is open
ISO_MIN_AGE = 15
ISO_EXIT = 0.03
ISO_EXIT_SUPPORTED = 0.25        # support after a needs_support visit works, slowly
BEREAVED_MONTHS = 12

# Checkups (特定健診 40-74, 後期高齢者健診 75+): yearly attendance is a habit. Markov by last
# fiscal year's attendance, giving stationary rates ~0.55 (not isolated) vs ~0.12 (isolated).
CHECKUP_MIN_AGE = 40
CHECKUP_P = {(False, True): 0.80, (False, False): 0.28, (True, True): 0.35, (True, False): 0.07}
CANCER_SCREENING_EXTRA = 0.15    # also attends がん検診 on another day

# Care premiums (介護保険料): monthly amounts by income bracket (yen; ward 第9期 scale, rounded).
CARE_MONTHLY_YEN = np.array([3000, 3500, 4300, 5600, 6200, 6600, 7300, 8600, 9900, 11200, 12000])
CARE_BRACKET_P = np.array([.16, .08, .07, .13, .10, .10, .11, .10, .07, .05, .03])
SPECIAL_COLLECTION_PREF = 0.88   # pension deduction; ~85% overall once newcomers are counted
SPECIAL_COLLECTION_DELAY_DAYS = 183  # new 65-year-olds and newcomers pay ordinary for ~6 months
CARE_ARREARS_P = {False: 0.05, True: 0.45}
LATE_PAYMENT_P = {False: 0.22, True: 0.06}   # monthly chance an open bill is paid late
PREMIUM_PRESCRIPTION_MONTHS = 24  # 時効: 2 years
PENSION_DAY = 15
# NHI (国民健康保険): households without employment insurance, many retired (65-74).
NHI_BY_HEAD_AGE = ((0, .40), (25, .22), (60, .50), (65, .85), (75, .35))
NHI_BASE_YEN, NHI_PER_MEMBER_YEN = 1500, 1800
NHI_INCOME_YEN = np.array([0, 2000, 5000, 9000, 15000, 25000])
NHI_INCOME_P = np.array([.30, .20, .20, .15, .10, .05])
NHI_ARREARS_P = {False: 0.07, True: 0.40}

# Care certification (要介護認定) prevalence by age (厚労省 介護保険事業状況報告, rounded): ~30% of
# 75+, ~4% of 65-74. New certifications follow the slope of this curve.
CERT_AGES = (62, 67, 72, 77, 82, 87, 92, 97, 102)     # 5-year age-group midpoints
CERT_PREVALENCE = (0.0, .03, .06, .12, .26, .47, .67, .80, .87)
CERT_LEVELS = ("support_1", "support_2", "care_1", "care_2", "care_3", "care_4", "care_5")
CERT_LEVEL_P = np.array([.14, .14, .20, .17, .13, .12, .10])
CERT_NEW_LEVEL_P = np.array([.20, .17, .25, .15, .10, .08, .05])
CERT_PERIOD_MONTHS, CERT_PERIOD_P = np.array([12, 24, 36, 48]), np.array([.25, .25, .35, .15])
CERT_OPEN_END = 0.04             # valid_to left empty in the extract
CERT_WORSENS, CERT_IMPROVES = 0.25, 0.08   # at renewal
CERT_HAZARD_ISOLATED = 0.6       # isolated people are certified less often (hidden need)

# 訪問収集 (door-to-door garbage collection): ~4% of 75+, mostly the certified living alone.
GARBAGE_ENROL = {"certified": .18, "uncertified": .022}
GARBAGE_ENROL_NEW_CERT = 0.2
GARBAGE_ENROL_MONTHLY = 0.0008
GARBAGE_RESULT_P = {False: (.85, .12, .03), True: (.55, .20, .25)}  # collected/no_garbage/no_response

# Welfare contacts (見守り・相談): monthly contact probability.
CONTACT_P = {(True, False): .06, (True, True): .015, (False, False): .008, (False, True): .002}
CONTACT_P_OPEN_CASE = 0.6
CONTACT_SECOND = 0.2
CHANNEL_P = (("visit", "phone", "counter", "other"), (.40, .35, .15, .10))
STAFF_P = (("minsei", "houkatsu", "nurse", "other"), (.35, .40, .15, .10))
STAFF_P_OPEN_CASE = (("minsei", "houkatsu", "nurse", "other"), (.10, .60, .28, .02))

# Outreach by today's rule: 0.3% of residents a month, 75+ living alone, not visited in 180 days.
VISIT_CAPACITY_SHARE = 0.003
VISIT_MIN_AGE = 75
VISIT_GAP_DAYS = 180
OUTCOMES = ("needs_support", "no_concern", "not_home", "declined")
OUTCOME_P = {True: (.65, 0., .20, .15), False: (0., .80, .15, .05)}
CASE_DAYS = (120, 240)           # a case stays open ~4-8 months

# Adverse events (monthly hazards). Tokyo 監察医務院: ~4,000 people 65+ die alone at home a year
# in the 23 wards; with the prevalence above this gives the same order of magnitude.
EMERGENCY_P = {(True, True): .006, (True, False): .002, (False, True): .0002, (False, False): .00003}
ISOLATED_DEATH_P_75 = 0.002      # isolated, at 75; x exp(0.04 per year), capped
ISOLATED_DEATH_YOUNG = 0.0004    # isolated, under 65
ISOLATED_DEATH_NOT_ISOLATED = 0.0001  # 65+ living alone, not isolated
EMERGENCY_TO_INSTITUTION = 0.3
# Exclusions: objections by ~0.3% of older residents, long stays for ~1% of 85+.
OBJECTED_P = 0.003
INSTITUTION_P = ((75, .0004), (85, .0025))
INSTITUTION_MEAN_DAYS = 120
INSTITUTION_END_SHOWN = 0.6

# Codes for 続柄 (index into names.RELATIONSHIPS).
REL_HEAD, REL_WIFE, REL_HUSBAND, REL_CHILD, REL_MOTHER, REL_FATHER, REL_GRANDCHILD, REL_OTHER = range(8)
REL_HUSBANDS_MOTHER, REL_HUSBANDS_FATHER, REL_WIFES_MOTHER, REL_WIFES_FATHER = range(8, 12)

# =============================================================================================
# The contract's sources: columns in contract order, their kind, and their Japanese aliases.
# (Kept here rather than imported from contract.sources so the generator stands alone.)
# =============================================================================================
ID, STR, DATE, MONTH, INT, SEX = "id", "str", "date", "month", "int", "sex"
SOURCES: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "residents": [
        ("resident_id", ID, ("宛名番号",)), ("household_id", ID, ("世帯番号",)),
        ("name", STR, ("氏名",)), ("name_kana", STR, ("氏名カナ", "カナ氏名")),
        ("birth_date", DATE, ("生年月日",)), ("sex", SEX, ("性別",)), ("address", STR, ("住所",)),
        ("district", STR, ("地区", "地区コード")), ("relationship", STR, ("続柄",)),
        ("moved_in_date", DATE, ("住定日", "転入日")), ("phone", STR, ("電話番号",))],
    "checkups": [
        ("resident_id", ID, ("宛名番号",)), ("exam_date", DATE, ("受診日",)),
        ("program", STR, ("健診種別",))],
    "care_premiums": [
        ("resident_id", ID, ("宛名番号",)), ("billing_month", MONTH, ("賦課月", "調定月")),
        ("amount_due", INT, ("調定額",)), ("amount_paid", INT, ("収納額",)),
        ("paid_date", DATE, ("収納日",)), ("collection", "collection", ("徴収方法",))],
    "nhi_premiums": [
        ("household_id", ID, ("世帯番号",)), ("billing_month", MONTH, ("賦課月", "調定月")),
        ("amount_due", INT, ("調定額",)), ("amount_paid", INT, ("収納額",))],
    "care_certifications": [
        ("resident_id", ID, ("宛名番号",)), ("care_level", "care_level", ("要介護度",)),
        ("valid_from", DATE, ("有効開始日",)), ("valid_to", DATE, ("有効終了日",))],
    "garbage_pickups": [
        ("resident_id", ID, ("宛名番号",)), ("pickup_date", DATE, ("収集日",)),
        ("result", "result", ("収集結果",))],
    "welfare_contacts": [
        ("resident_id", ID, ("宛名番号",)), ("contact_date", DATE, ("対応日",)),
        ("channel", "channel", ("対応方法",)), ("staff_type", "staff_type", ("対応者",))],
    "outreach_outcomes": [
        ("resident_id", ID, ("宛名番号",)), ("visit_date", DATE, ("訪問日",)),
        ("outcome", "outcome", ("訪問結果",))],
    "adverse_events": [
        ("resident_id", ID, ("宛名番号",)), ("event_date", DATE, ("発生日",)),
        ("event_type", "event_type", ("事案種別",))],
    "exclusions": [
        ("resident_id", ID, ("宛名番号",)), ("reason", "reason", ("理由",)),
        ("valid_from", DATE, ("開始日",)), ("valid_to", DATE, ("終了日",))],
}

NAT = np.datetime64("NaT", "D")


# =============================================================================================
# Public API
# =============================================================================================
def generate_ward(inbox: Path, residents: int, months: int, end_month: str, seed: int,
                  messy: bool = False, truth: Path | None = None) -> dict:
    """Write <inbox>/<YYYY-MM>/<source>.csv for every month from end_month-(months-1) to end_month.
    Returns a summary dict: {"months": [...], "residents_last_month": int, "files": int,
    "isolated_last_month": int, "districts": {name: residents}}."""
    if residents < 1 or months < 1:
        raise ValueError("residents and months must be positive")
    inbox, last = Path(inbox), _month_index(end_month)
    first = last - months + 1
    if truth is not None and Path(truth).resolve().is_relative_to(inbox.resolve()):
        raise ValueError("the truth file holds the latent state and must not be written into the inbox")
    ward = _Ward(np.random.default_rng(seed), residents, first - BURN_IN_MONTHS)
    writer = _InboxWriter(inbox, messy, np.random.default_rng([seed, 1]))
    labels, files = [], 0
    for mi in range(first - BURN_IN_MONTHS, last + 1):
        tables = ward.step(mi)
        if mi < first:
            continue
        labels.append(_month_label(mi))
        for source in SOURCES:
            writer.write(labels[-1], source, tables[source])
            files += 1
    final = ward.final_state(last)
    if truth is not None:
        Path(truth).parent.mkdir(parents=True, exist_ok=True)
        final.to_csv(truth, index=False, encoding="utf-8", lineterminator="\n")
    district_names = [d[0] for d in names.DISTRICTS]
    counts = final["district"].value_counts()
    return {"months": labels, "residents_last_month": int(len(final)), "files": files,
            "isolated_last_month": int(final["isolated"].sum()),
            "districts": {d: int(counts.get(d, 0)) for d in district_names}}


# =============================================================================================
# Calendar helpers (a month is an int: year * 12 + month - 1)
# =============================================================================================
def _month_index(month: str) -> int:
    year, mon = month.split("-")
    if len(year) != 4 or not 1 <= int(mon) <= 12 or len(mon) != 2:
        raise ValueError(f"not a month in YYYY-MM form: {month!r}")
    return int(year) * 12 + int(mon) - 1


def _month_label(mi: int) -> str:
    return f"{mi // 12:04d}-{mi % 12 + 1:02d}"


def _month_start(mi: int) -> np.datetime64:
    return np.datetime64(_month_label(mi) + "-01", "D")


def _month_ends(mi: np.ndarray | int) -> np.ndarray:
    """Last day of each month index (vectorised)."""
    months = (np.asarray(mi, dtype=np.int64) - 1970 * 12 + 1).astype("datetime64[M]")
    return months.astype("datetime64[D]") - np.timedelta64(1, "D")


def _months_of(dates: np.ndarray) -> np.ndarray:
    return dates.astype("datetime64[M]").astype(np.int64) + 1970 * 12


def _weekday(dates: np.ndarray) -> np.ndarray:
    """Monday = 0 (1970-01-01 was a Thursday)."""
    return (dates.astype(np.int64) + 3) % 7


def _birth_parts(birth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(year, month*100+day) of each birth date, for fast age arithmetic."""
    months = birth.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    day = (birth - months.astype("datetime64[D]")).astype(np.int64) + 1
    mon = months.astype(np.int64) % 12 + 1
    return year.astype(np.int16), (mon * 100 + day).astype(np.int16)


def _interp_steps(values: np.ndarray, table: tuple) -> np.ndarray:
    """Step function: value of the last (threshold, value) pair whose threshold <= value."""
    thresholds = np.array([t for t, _ in table])
    levels = np.array([v for _, v in table])
    return levels[np.searchsorted(thresholds, values, side="right") - 1]


def _choice(rng: np.random.Generator, options, p, size: int) -> np.ndarray:
    return np.asarray(options)[rng.choice(len(p), size=size, p=np.asarray(p) / np.sum(p))]


def _draw_ages(rng: np.random.Generator, bins: tuple, size: int) -> np.ndarray:
    """Ages from piecewise-uniform bins (lo, hi inclusive, weight)."""
    k = rng.choice(len(bins), size=size, p=np.array([b[2] for b in bins]) / sum(b[2] for b in bins))
    lo = np.array([b[0] for b in bins])[k]
    hi = np.array([b[1] for b in bins])[k]
    return rng.integers(lo, hi + 1)


class _Columns:
    """A growable table of equal-length numpy arrays (one row per person or per household).

    Rows are appended every month (births, move-ins), so storage grows by doubling and the
    columns handed out are views of the first `n` rows: appending stays amortised O(rows added).
    """

    def __init__(self) -> None:
        self._store: dict[str, np.ndarray] = {}
        self._n = 0

    def __getitem__(self, key: str) -> np.ndarray:
        return self._store[key][:self._n]

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        self._store[key][:self._n] = value

    def __len__(self) -> int:
        return self._n

    def extend(self, rows: dict[str, np.ndarray]) -> None:
        added = len(next(iter(rows.values())))
        if self._store and rows.keys() != self._store.keys():
            raise KeyError(sorted(set(rows) ^ set(self._store)))
        needed = self._n + added
        if not self._store or needed > len(next(iter(self._store.values()))):
            capacity = int(needed * 1.25) + 1024
            old, self._store = self._store, {}
            for key, value in rows.items():
                self._store[key] = np.empty(capacity, dtype=value.dtype)
                if old:
                    self._store[key][:self._n] = old[key][:self._n]
        for key, value in rows.items():
            self._store[key][self._n:needed] = value
        self._n = needed


# =============================================================================================
# The ward: state and monthly step
# =============================================================================================
class _Ward:
    def __init__(self, rng: np.random.Generator, residents: int, start_mi: int) -> None:
        self.rng = rng
        self.people = _Columns()
        self.households = _Columns()
        self.next_rid = RESIDENT_ID_BASE + int(rng.integers(0, 1_000_000))
        self.next_hid = HOUSEHOLD_ID_BASE + int(rng.integers(0, 1_000_000))
        self.care_arrears = {"person": np.zeros(0, np.int64), "month": np.zeros(0, np.int64),
                             "due": np.zeros(0, np.int64)}
        self.nhi_arrears = {"household": np.zeros(0, np.int64), "month": np.zeros(0, np.int64),
                            "due": np.zeros(0, np.int64)}
        self.places = _Places()
        ref = _month_start(start_mi) - np.timedelta64(1, "D")
        self._populate(residents, ref)

    # ------------------------------------------------------------------ creating people
    def _populate(self, residents: int, ref: np.datetime64) -> None:
        """The initial ward: exactly `residents` people in households drawn from INITIAL_KINDS."""
        added = self._add_households(INITIAL_KINDS, int(residents / 1.85) + 10, ref, None, residents)
        while added < residents:  # top up with single households
            added += self._add_households(INITIAL_KINDS[:2], residents - added, ref, None,
                                          residents - added)
        self._init_latent(np.arange(len(self.people)), ref, initial=True)

    def _add_households(self, kinds: tuple, n: int, ref: np.datetime64,
                        arrival_month: int | None, max_people: int) -> int:
        """Draw n households (kept while their people fit in max_people); return people added."""
        rng = self.rng
        kind = rng.choice(len(kinds), size=n, p=np.array([k[2] for k in kinds]) / sum(k[2] for k in kinds))
        groups = []
        for k, (builder, bins, _) in enumerate(kinds):
            local = np.flatnonzero(kind == k)
            if len(local):
                head_age = _draw_ages(rng, bins, len(local))
                groups.extend(_MEMBER_BUILDERS[builder](rng, local, head_age))
        hh = np.concatenate([g[0] for g in groups])
        slot = np.concatenate([np.full(len(g[0]), i) for i, g in enumerate(groups)])
        order = np.lexsort((slot, hh))
        hh, age, sex, rel, own_name = (np.concatenate([g[j] for g in groups])[order] for j in range(5))
        sizes = np.bincount(hh, minlength=n)
        keep_hh = np.cumsum(sizes) <= max_people
        if not keep_hh.any():
            return 0
        keep = keep_hh[hh]
        new_index = np.cumsum(keep_hh) - 1
        hh, age, sex, rel, own_name = new_index[hh[keep]], age[keep], sex[keep], rel[keep], own_name[keep]
        n_hh = int(keep_hh.sum())

        if arrival_month is None:
            birth = ref - np.floor((age + rng.random(len(age))) * 365.2425).astype("timedelta64[D]")
        else:
            # Any day up to the 28th, which every month has.
            arrive = _month_start(arrival_month) + rng.integers(0, 28, n_hh).astype("timedelta64[D]")
            birth = arrive[hh] - np.floor((age + rng.random(len(age))) * 365.2425).astype("timedelta64[D]")
        head_age = np.zeros(n_hh, np.int64)
        head_age[hh[rel == REL_HEAD]] = age[rel == REL_HEAD]
        hh_cols = self._household_attributes(n_hh, head_age, hh)
        if arrival_month is None:
            years = rng.exponential(_interp_steps(head_age, RESIDENCE_YEARS_MEAN))
            hh_moved = ref - np.minimum(years * 365.25, 70 * 365).astype("timedelta64[D]")
        else:
            hh_moved = arrive
        hh_cols["moved_in"] = hh_moved
        offset = len(self.households)
        self.households.extend(hh_cols)
        self._add_people(hh + offset, birth, sex, rel, own_name, np.maximum(hh_moved[hh], birth), ref)
        return len(age)

    def _household_attributes(self, n_hh: int, head_age: np.ndarray,
                              hh: np.ndarray) -> dict[str, np.ndarray]:
        rng = self.rng
        size = np.bincount(hh, minlength=n_hh)
        profile = np.where(head_age >= 65, "elderly",
                           np.where((head_age < 40) & (size <= 2), "young", "family"))
        ids = self._take_ids("household", n_hh)
        district, town, address = self.places.draw(rng, profile)
        nhi = rng.random(n_hh) < _interp_steps(head_age, NHI_BY_HEAD_AGE)
        landline = rng.random(n_hh) < _interp_steps(head_age, LANDLINE_BY_HEAD_AGE)
        exchange = _choice(rng, ("3", "5", "6"), (.5, .3, .2), n_hh).astype(object)
        landline_s = np.where(landline, "03-" + exchange + _digits(rng, 3, n_hh) + "-" + _digits(rng, 4, n_hh), "")
        return {
            "hid": ids, "hid_s": _id_strings(ids), "district": district, "town": town,
            "address": address, "nhi": nhi,
            "nhi_income": rng.choice(len(NHI_INCOME_P), n_hh, p=NHI_INCOME_P).astype(np.int8),
            "surname": rng.choice(len(_SURNAME_P), n_hh, p=_SURNAME_P).astype(np.int16),
            "landline": landline_s.astype(object),
        }

    def _add_people(self, hh: np.ndarray, birth: np.ndarray, sex: np.ndarray, rel: np.ndarray,
                    own_name: np.ndarray, moved_in: np.ndarray, ref: np.datetime64) -> None:
        rng, n = self.rng, len(hh)
        H = self.households
        by, bmd = _birth_parts(birth)
        age = (_age_on(by, bmd, ref)).clip(0)
        surname = np.where(own_name, rng.choice(len(_SURNAME_P), n, p=_SURNAME_P), H["surname"][hh])
        name, kana = _person_names(rng, surname, sex, by)
        ids = self._take_ids("resident", n)
        has_phone = rng.random(n) < np.select([age < 18, age < 65], [PHONE_ON_FILE["child"],
                                               PHONE_ON_FILE["adult"]], PHONE_ON_FILE["elderly"])
        landline = H["landline"][hh]
        use_landline = (landline != "") & ((age >= 60) | (rng.random(n) < 0.3))
        mobile = (_choice(rng, MOBILE_PREFIXES, MOBILE_P, n).astype(object) + "-"
                  + _digits(rng, 4, n) + "-" + _digits(rng, 4, n))
        phone = np.where(has_phone, np.where(use_landline, landline, mobile), "").astype(object)
        # Objections were filed before the simulation (stable): older residents only.
        objected = (age >= 60) & (rng.random(n) < OBJECTED_P)
        span = np.maximum((ref - moved_in).astype(np.int64), 0)
        objected_from = np.where(objected, moved_in + (rng.random(n) * span).astype("timedelta64[D]"), NAT)
        cert, cert_from, cert_to = self._initial_certifications(age, ref)
        self.people.extend({
            "rid": ids, "rid_s": _id_strings(ids), "hh": hh.astype(np.int64), "birth": birth,
            "by": by, "bmd": bmd, "sex": sex.astype(np.int8), "rel": rel.astype(np.int8),
            "name": name, "kana": kana, "phone": phone, "moved_in": moved_in.astype("datetime64[D]"),
            "present": np.ones(n, bool), "isolated": np.zeros(n, bool),
            "bereaved_until": np.full(n, -1, np.int64),
            "income": rng.choice(len(CARE_BRACKET_P), n, p=CARE_BRACKET_P).astype(np.int8),
            "special_pref": rng.random(n) < SPECIAL_COLLECTION_PREF,
            "ck_slot": rng.integers(0, 12, n).astype(np.int8), "ck_last": np.zeros(n, bool),
            "ck_this": np.zeros(n, bool),
            "cert": cert, "cert_from": cert_from, "cert_to": cert_to,
            "garbage": np.zeros(n, bool), "garbage_wd": rng.integers(0, 5, n).astype(np.int8),
            "objected": objected, "objected_from": objected_from,
            "case_from": np.full(n, NAT), "case_to": np.full(n, NAT),
            "inst_from": np.full(n, NAT), "inst_end": np.full(n, NAT), "inst_to_shown": np.full(n, NAT),
            "last_visit": np.full(n, NAT),
        })

    def _initial_certifications(self, age: np.ndarray, ref: np.datetime64):
        rng, n = self.rng, len(age)
        has = rng.random(n) < np.interp(age, CERT_AGES, CERT_PREVALENCE, left=0.0)
        level = rng.choice(len(CERT_LEVEL_P), n, p=CERT_LEVEL_P)
        level = np.where((age >= 90) & (rng.random(n) < .2), np.minimum(level + 1, 6), level)
        period = rng.choice(CERT_PERIOD_MONTHS, n, p=CERT_PERIOD_P)
        ref_month = _months_of(np.array([ref]))[0]
        from_month = ref_month - rng.integers(0, period)  # the current period began in the past
        valid_from = (from_month - 1970 * 12).astype("datetime64[M]").astype("datetime64[D]")
        valid_to = _month_ends(from_month + period - 1)
        open_end = rng.random(n) < CERT_OPEN_END
        return (np.where(has, level, -1).astype(np.int8), np.where(has, valid_from, NAT),
                np.where(has & ~open_end, valid_to, NAT))

    def _take_ids(self, kind: str, n: int) -> np.ndarray:
        """Sequential 10-digit IDs with random gaps; never reused."""
        gaps = self.rng.integers(1, ID_GAP_MAX + 1, n)
        if kind == "resident":
            ids = self.next_rid + np.cumsum(gaps)
            self.next_rid = int(ids[-1]) if n else self.next_rid
        else:
            ids = self.next_hid + np.cumsum(gaps)
            self.next_hid = int(ids[-1]) if n else self.next_hid
        if n and ids[-1] >= 10**10:
            raise OverflowError("ID range exhausted")
        return ids.astype(np.int64)

    # ------------------------------------------------------------------ latent isolation
    def _init_latent(self, idx: np.ndarray, ref: np.datetime64, initial: bool) -> None:
        """Isolation, checkup habit and garbage enrolment drawn from their stationary shares."""
        rng, P = self.rng, self.people
        covariates = self._covariates(idx, ref, _months_of(np.array([ref]))[0])
        p_in = _isolation_entry(**covariates)
        stationary = p_in / (p_in + ISO_EXIT)
        iso = rng.random(len(idx)) < stationary
        P["isolated"][idx] = iso
        P["ck_last"][idx] = rng.random(len(idx)) < np.where(iso, _checkup_stationary(True),
                                                            _checkup_stationary(False))
        if initial:  # the months of the current fiscal year before the start already had checkups
            fy_month = (_months_of(np.array([ref]))[0] % 12 - 3) % 12
            attended = rng.random(len(idx)) < _checkup_probability(iso, P["ck_last"][idx])
            P["ck_this"][idx] = (P["ck_slot"][idx] <= fy_month) & attended & (covariates["age"] >= 40)
        age, alone = covariates["age"], covariates["alone"]
        elderly_only = self._elderly_only_households(ref)[P["hh"][idx]]
        certified = P["cert"][idx] >= 0
        enrol_p = np.where(certified, GARBAGE_ENROL["certified"], GARBAGE_ENROL["uncertified"])
        enrol_p = enrol_p * np.where(alone, 1.0, np.where(elderly_only, 0.5, 0.0)) * (age >= 75)
        P["garbage"][idx] = rng.random(len(idx)) < (enrol_p if initial else enrol_p * 0.3)

    def _covariates(self, idx: np.ndarray, on: np.datetime64, mi: int) -> dict[str, np.ndarray]:
        P = self.people
        size = self._household_sizes()
        case_open = (P["case_from"][idx] <= on) & (P["case_to"][idx] >= on)
        return {
            "age": _age_on(P["by"][idx], P["bmd"][idx], on),
            "alone": size[P["hh"][idx]] == 1,
            "male": P["sex"][idx] == 1,
            "certified": P["cert"][idx] >= 0,
            "short_residence": (on - P["moved_in"][idx]).astype(np.int64) < 730,
            "bereaved": P["bereaved_until"][idx] >= mi,
            "supported": case_open,
        }

    def _household_sizes(self) -> np.ndarray:
        P = self.people
        return np.bincount(P["hh"][P["present"]], minlength=len(self.households))

    def _elderly_only_households(self, on: np.datetime64) -> np.ndarray:
        P = self.people
        young = P["present"] & (_age_on(P["by"], P["bmd"], on) < 65)
        return np.bincount(P["hh"][young], minlength=len(self.households)) == 0

    # ------------------------------------------------------------------ one month
    def step(self, mi: int) -> dict[str, dict[str, np.ndarray]]:
        """Advance the ward through month mi and return that month's ten source tables."""
        rng, P = self.rng, self.people
        ms, me = _month_start(mi), _month_ends(mi)[()]
        asof = ms - np.timedelta64(1, "D")            # the previous delivery's knowledge date
        alive0 = np.flatnonzero(P["present"])
        cov = self._covariates(alive0, asof, mi)
        age0, alone0 = cov["age"], cov["alone"]

        # 1. latent state for this month
        iso_prev = P["isolated"][alive0]
        p_in = _isolation_entry(**cov)
        p_out = np.where(cov["supported"], ISO_EXIT_SUPPORTED, ISO_EXIT)
        u = rng.random(len(alive0))
        P["isolated"][alive0] = np.where(iso_prev, u >= p_out, u < p_in)
        iso0 = P["isolated"][alive0]

        # 2. adverse events, deaths and move-outs during the month
        adverse = self._adverse_events(rng, alive0, age0, alone0, iso0, ms, me)
        died = np.zeros(len(P), bool)
        died[adverse["person"][adverse["type"] == "isolated_death"]] = True
        q = _monthly_death_prob(age0, P["sex"][alive0]) * CERT_MORTALITY[P["cert"][alive0] + 1]
        died[alive0[(rng.random(len(alive0)) < q) & ~died[alive0]]] = True
        moved = self._move_outs(alive0, age0, died)
        leaving = died | moved

        # 3. households: bereavement, new heads, births and move-ins
        stay_mask = P["present"] & ~leaving
        lost = np.bincount(P["hh"][died], minlength=len(self.households)) > 0
        stayers_lost = stay_mask & lost[P["hh"]]
        P["bereaved_until"][stayers_lost] = mi + BEREAVED_MONTHS
        P["present"][leaving] = False
        self._rehead(leaving)
        n_births = self._births(mi, ms, me)
        n_target = int(rng.poisson(max(int(leaving.sum()) - n_births, 0)))
        first_new = len(P)
        if n_target:
            self._add_households(ARRIVAL_KINDS, n_target, me, mi, n_target)
        arrivals = np.arange(first_new, len(P))
        if len(arrivals):
            self._init_latent(arrivals, me, initial=False)
        stay = np.flatnonzero(P["present"])

        # 4. routine events of everyone present at the month's end
        age_me = _age_on(P["by"][stay], P["bmd"][stay], me)
        in_institution = (P["inst_from"][stay] <= me) & (P["inst_end"][stay] >= ms)
        tables = {
            "checkups": self._checkups(stay, age_me, in_institution, mi, ms),
            "care_premiums": self._care_premiums(stay, age_me, mi, ms, me),
            "nhi_premiums": self._nhi_premiums(stay, age_me, mi, ms, me),
            "garbage_pickups": self._garbage_pickups(stay, in_institution, ms, me),
            "welfare_contacts": self._welfare_contacts(stay, age_me, ms, me),
        }
        visits = self._outreach(alive0, age0, alone0, leaving, asof, ms, me)
        tables["outreach_outcomes"] = visits
        tables["adverse_events"] = self._rows(adverse["person"], adverse["date"],
                                              ("event_date", "event_type"), adverse["type"])

        # 5. services respond: open cases, institution stays, certifications, enrolments
        self._open_cases(visits["_person"][visits["outcome"] == "needs_support"],
                         visits["visit_date"][visits["outcome"] == "needs_support"])
        self._after_emergencies(adverse)
        self._institution_stays(stay, age_me, ms, me)
        self._certifications(stay, age_me, mi, ms, me)
        if mi % 12 == 2:  # March ends the fiscal year: this year's checkup becomes last year's
            P["ck_last"] = P["ck_this"].copy()
            P["ck_this"][:] = False
            P["ck_slot"] = rng.integers(0, 12, len(P)).astype(np.int8)

        # 6. snapshots at the month's end
        tables["residents"] = self._residents_snapshot(stay)
        tables["care_certifications"] = self._certification_snapshot(stay, me)
        tables["exclusions"] = self._exclusion_snapshot(stay, me)
        return tables

    # ------------------------------------------------------------------ population dynamics
    def _adverse_events(self, rng, alive0, age0, alone0, iso0, ms, me) -> dict[str, np.ndarray]:
        elderly = age0 >= 65
        p_death = np.where(
            iso0,
            np.where(elderly, np.minimum(ISOLATED_DEATH_P_75 * np.exp(0.04 * (age0 - 75)), 0.015),
                     ISOLATED_DEATH_YOUNG),
            np.where(elderly & alone0, ISOLATED_DEATH_NOT_ISOLATED, 0.0))
        p_emerg = np.select([iso0 & elderly, iso0 & ~elderly, ~iso0 & elderly],
                            [EMERGENCY_P[(True, True)], EMERGENCY_P[(True, False)],
                             EMERGENCY_P[(False, True)]], EMERGENCY_P[(False, False)])
        u = rng.random(len(alive0))
        is_death = u < p_death
        is_emerg = ~is_death & (u < p_death + p_emerg)
        hit = is_death | is_emerg
        person = alive0[hit]
        return {"person": person, "type": np.where(is_death[hit], "isolated_death", "emergency"),
                "date": _random_days(rng, ms, me, len(person))}

    def _move_outs(self, alive0: np.ndarray, age0: np.ndarray, died: np.ndarray) -> np.ndarray:
        """Whole households leave (rate by head age); some grown children leave alone."""
        rng, P = self.rng, self.people
        n_hh = len(self.households)
        heads = alive0[P["rel"][alive0] == REL_HEAD]
        head_age = np.zeros(n_hh)
        head_age[P["hh"][heads]] = age0[P["rel"][alive0] == REL_HEAD]
        size = np.bincount(P["hh"][alive0], minlength=n_hh)
        weight = np.interp(head_age, MOVE_OUT_AGES, MOVE_OUT_MULT) * (size > 0)
        base = MOVE_OUT_RATE * len(alive0) / max(float((weight * size).sum()), 1.0)
        leaves = rng.random(n_hh) < np.minimum(weight * base, 0.5)
        moved = np.zeros(len(P), bool)
        moved[alive0] = leaves[P["hh"][alive0]]
        child = (P["rel"][alive0] == REL_CHILD) & (age0 >= 18) & (age0 <= 34)
        moved[alive0[child & (rng.random(len(alive0)) < CHILD_LEAVES_HOME)]] = True
        old_alone = (age0 >= 75) & (size[P["hh"][alive0]] == 1)
        moved[alive0[old_alone & (rng.random(len(alive0)) < ELDERLY_ALONE_LEAVES)]] = True
        return moved & ~died

    def _rehead(self, leaving: np.ndarray) -> None:
        """A household whose head left gets a new 世帯主: the spouse, else the oldest member."""
        P = self.people
        lost_head = np.zeros(len(self.households), bool)
        lost_head[P["hh"][leaving & (P["rel"] == REL_HEAD)]] = True
        members = np.flatnonzero(P["present"] & lost_head[P["hh"]])
        if not len(members):
            return
        spouse = np.isin(P["rel"][members], (REL_WIFE, REL_HUSBAND))
        order = np.lexsort((P["birth"][members], ~spouse, P["hh"][members]))
        members = members[order]
        first = np.r_[True, P["hh"][members][1:] != P["hh"][members][:-1]]
        new_head_rel = np.repeat(P["rel"][members][first], np.diff(np.r_[np.flatnonzero(first), len(members)]))
        relation = _REHEAD[new_head_rel, P["rel"][members]]
        relation[first] = REL_HEAD
        P["rel"][members] = relation

    def _births(self, mi: int, ms, me) -> int:
        rng, P = self.rng, self.people
        present = np.flatnonzero(P["present"])
        spouse_hh = np.bincount(P["hh"][present][np.isin(P["rel"][present], (REL_WIFE, REL_HUSBAND))],
                                minlength=len(self.households)) > 0
        age = _age_on(P["by"][present], P["bmd"][present], ms)
        mother = (P["sex"][present] == 2) & np.isin(P["rel"][present], (REL_HEAD, REL_WIFE)) \
            & spouse_hh[P["hh"][present]]
        p = np.where(mother, _interp_steps(age, BIRTH_MONTHLY), 0.0)
        mothers = present[rng.random(len(present)) < p]
        n = len(mothers)
        if n:
            birth = _random_days(rng, ms, me, n)
            sex = rng.choice(np.array([1, 2], np.int8), n)
            self._add_people(P["hh"][mothers], birth, sex, np.full(n, REL_CHILD, np.int8),
                             np.zeros(n, bool), birth, me)
            new = np.arange(len(P) - n, len(P))
            self._init_latent(new, me, initial=False)
        return n

    # ------------------------------------------------------------------ event sources
    def _rows(self, person: np.ndarray, date: np.ndarray, columns: tuple[str, ...],
              *values: np.ndarray) -> dict[str, np.ndarray]:
        """An event table sorted by (resident, date), keeping the person index for later use."""
        order = np.lexsort((date, person))
        table = {"resident_id": self.people["rid_s"][person[order]], columns[0]: date[order]}
        for column, value in zip(columns[1:], values, strict=True):
            table[column] = np.asarray(value)[order]
        table["_person"] = person[order]
        return table

    def _checkups(self, stay, age_me, in_institution, mi, ms) -> dict[str, np.ndarray]:
        rng, P = self.rng, self.people
        fy_month = (mi % 12 - 3) % 12  # April = 0
        due = (P["ck_slot"][stay] == fy_month) & (age_me >= CHECKUP_MIN_AGE) & ~in_institution
        idx = stay[due]
        attend = rng.random(len(idx)) < _checkup_probability(P["isolated"][idx], P["ck_last"][idx])
        idx, age = idx[attend], age_me[due][attend]
        P["ck_this"][idx] = True
        program = np.where(age >= 75, "後期高齢者健診", "特定健診").astype(object)
        extra = idx[rng.random(len(idx)) < CANCER_SCREENING_EXTRA]
        person = np.concatenate([idx, extra])
        program = np.concatenate([program, np.full(len(extra), "がん検診", dtype=object)])
        return self._rows(person, _random_weekdays(rng, ms, len(person)), ("exam_date", "program"), program)

    def _care_premiums(self, stay, age_me, mi, ms, me) -> dict[str, np.ndarray]:
        rng, P = self.rng, self.people
        # Old bills paid late this month are delivered again under their original key.
        ledger = self.care_arrears
        still_here = P["present"][ledger["person"]]
        pay = still_here & (rng.random(len(ledger["person"])) <
                            np.where(P["isolated"][ledger["person"]], LATE_PAYMENT_P[True], LATE_PAYMENT_P[False]))
        late = {k: v[pay] for k, v in ledger.items()}
        keep = still_here & ~pay & (mi - ledger["month"] < PREMIUM_PRESCRIPTION_MONTHS)
        self.care_arrears = {k: v[keep] for k, v in ledger.items()}
        # This month's bills.
        idx = stay[age_me >= 65]
        settled = (ms - np.timedelta64(SPECIAL_COLLECTION_DELAY_DAYS, "D"))
        special = P["special_pref"][idx] & (_age_on(P["by"][idx], P["bmd"][idx], settled) >= 65) \
            & (P["moved_in"][idx] <= settled)
        due = CARE_MONTHLY_YEN[P["income"][idx]]
        arrears = ~special & (rng.random(len(idx)) <
                              np.where(P["isolated"][idx], CARE_ARREARS_P[True], CARE_ARREARS_P[False]))
        paid_date = np.where(special, _pension_day(ms), _random_days(rng, ms, me, len(idx)))
        paid_date = np.where(arrears, NAT, paid_date)
        self.care_arrears = {k: np.concatenate([self.care_arrears[k], v]) for k, v in
                             {"person": idx[arrears], "month": np.full(int(arrears.sum()), mi),
                              "due": due[arrears]}.items()}
        n_late = len(late["person"])
        person = np.concatenate([idx, late["person"]])
        month = np.concatenate([np.full(len(idx), mi), late["month"]])
        amount_due = np.concatenate([due, late["due"]])
        amount_paid = np.concatenate([np.where(arrears, 0, due), late["due"]])
        paid = np.concatenate([paid_date, _random_days(rng, ms, me, n_late)])
        collection = np.concatenate([np.where(special, "special", "ordinary"), np.full(n_late, "ordinary")])
        order = np.lexsort((month, person))
        return {"resident_id": P["rid_s"][person[order]], "billing_month": month[order],
                "amount_due": amount_due[order], "amount_paid": amount_paid[order],
                "paid_date": paid[order], "collection": collection[order].astype(object)}

    def _nhi_premiums(self, stay, age_me, mi, ms, me) -> dict[str, np.ndarray]:
        rng, P, H = self.rng, self.people, self.households
        n_hh = len(H)
        ledger = self.nhi_arrears
        any_iso = np.bincount(P["hh"][stay[P["isolated"][stay]]], minlength=n_hh) > 0
        alive_hh = np.bincount(P["hh"][stay], minlength=n_hh) > 0
        still_here = alive_hh[ledger["household"]]
        pay = still_here & (rng.random(len(ledger["household"])) <
                            np.where(any_iso[ledger["household"]], LATE_PAYMENT_P[True], LATE_PAYMENT_P[False]))
        late = {k: v[pay] for k, v in ledger.items()}
        keep = still_here & ~pay & (mi - ledger["month"] < PREMIUM_PRESCRIPTION_MONTHS)
        self.nhi_arrears = {k: v[keep] for k, v in ledger.items()}
        # 75+ are in 後期高齢者医療, not NHI: a household is billed for its members under 75.
        under75 = np.bincount(P["hh"][stay[age_me < 75]], minlength=n_hh)
        hh = np.flatnonzero(H["nhi"] & (under75 > 0))
        due = (np.round((NHI_BASE_YEN + NHI_PER_MEMBER_YEN * under75[hh]
                         + NHI_INCOME_YEN[H["nhi_income"][hh]]) / 100) * 100).astype(np.int64)
        arrears = rng.random(len(hh)) < np.where(any_iso[hh], NHI_ARREARS_P[True], NHI_ARREARS_P[False])
        self.nhi_arrears = {k: np.concatenate([self.nhi_arrears[k], v]) for k, v in
                            {"household": hh[arrears], "month": np.full(int(arrears.sum()), mi),
                             "due": due[arrears]}.items()}
        household = np.concatenate([hh, late["household"]])
        month = np.concatenate([np.full(len(hh), mi), late["month"]])
        order = np.lexsort((month, household))
        return {"household_id": H["hid_s"][household[order]], "billing_month": month[order],
                "amount_due": np.concatenate([due, late["due"]])[order],
                "amount_paid": np.concatenate([np.where(arrears, 0, due), late["due"]])[order]}

    def _garbage_pickups(self, stay, in_institution, ms, me) -> dict[str, np.ndarray]:
        rng, P = self.rng, self.people
        idx = stay[P["garbage"][stay] & ~in_institution]
        first = ms + ((P["garbage_wd"][idx] - _weekday(np.array([ms]))[0]) % 7).astype("timedelta64[D]")
        dates = first[:, None] + (7 * np.arange(5)).astype("timedelta64[D]")
        ok = dates <= me
        person = np.repeat(idx, ok.sum(axis=1))
        date = dates[ok]
        iso = P["isolated"][person]
        u = rng.random(len(person))
        p = np.array([GARBAGE_RESULT_P[False], GARBAGE_RESULT_P[True]])[iso.astype(int)]
        result = np.where(u < p[:, 0], "collected",
                          np.where(u < p[:, 0] + p[:, 1], "no_garbage", "no_response")).astype(object)
        return self._rows(person, date, ("pickup_date", "result"), result)

    def _welfare_contacts(self, stay, age_me, ms, me) -> dict[str, np.ndarray]:
        rng, P = self.rng, self.people
        iso = P["isolated"][stay]
        elderly = age_me >= 65
        case_open = (P["case_from"][stay] <= me) & (P["case_to"][stay] >= ms)
        p = np.select([elderly & ~iso, elderly & iso, ~elderly & ~iso],
                      [CONTACT_P[(True, False)], CONTACT_P[(True, True)], CONTACT_P[(False, False)]],
                      CONTACT_P[(False, True)])
        p = np.where(case_open, CONTACT_P_OPEN_CASE, p)
        contacted = rng.random(len(stay)) < p
        first, open_case = stay[contacted], case_open[contacted]
        # A second contact falls on another day, so (resident, date, channel, staff) stays a key.
        ndays = int((me - ms).astype(np.int64)) + 1
        day = rng.integers(0, ndays, len(first))
        again = rng.random(len(first)) < CONTACT_SECOND
        person = np.concatenate([first, first[again]])
        open_case = np.concatenate([open_case, open_case[again]])
        day = np.concatenate([day, (day[again] + rng.integers(1, ndays, int(again.sum()))) % ndays])
        n = len(person)
        channel = _choice(rng, *CHANNEL_P, n)
        staff = np.where(open_case, _choice(rng, *STAFF_P_OPEN_CASE, n), _choice(rng, *STAFF_P, n))
        return self._rows(person, ms + day.astype("timedelta64[D]"), ("contact_date", "channel", "staff_type"),
                          channel.astype(object), staff.astype(object))

    def _outreach(self, alive0, age0, alone0, leaving, asof, ms, me) -> dict[str, np.ndarray]:
        """Today's rule: the oldest 75+ living alone, not visited in 180 days, not excluded."""
        rng, P = self.rng, self.people
        excluded = P["objected"][alive0] \
            | ((P["case_from"][alive0] <= asof) & (P["case_to"][alive0] >= asof)) \
            | ((P["inst_from"][alive0] <= asof) & (P["inst_end"][alive0] >= asof))
        last = P["last_visit"][alive0]
        recent = ~np.isnat(last) & (last > asof - np.timedelta64(VISIT_GAP_DAYS, "D"))
        eligible = (age0 >= VISIT_MIN_AGE) & alone0 & ~excluded & ~recent & ~leaving[alive0]
        capacity = int(round(VISIT_CAPACITY_SHARE * len(alive0)))
        candidates = np.flatnonzero(eligible)
        order = np.lexsort((rng.random(len(candidates)), -age0[candidates]))
        chosen = alive0[candidates[order][:capacity]]
        n = len(chosen)
        iso = P["isolated"][chosen]
        u = rng.random(n)
        cum = np.cumsum(np.array([OUTCOME_P[False], OUTCOME_P[True]])[iso.astype(int)], axis=1)
        outcome = np.asarray(OUTCOMES, dtype=object)[(u[:, None] >= cum).sum(axis=1).clip(max=3)]
        date = _random_weekdays(rng, ms, n)
        P["last_visit"][chosen] = date
        table = self._rows(chosen, date, ("visit_date", "outcome"), outcome)
        return table

    # ------------------------------------------------------------------ service responses
    def _open_cases(self, person: np.ndarray, start: np.ndarray) -> None:
        days = self.rng.integers(CASE_DAYS[0], CASE_DAYS[1] + 1, len(person)).astype("timedelta64[D]")
        self.people["case_from"][person] = start
        self.people["case_to"][person] = start + days

    def _after_emergencies(self, adverse: dict[str, np.ndarray]) -> None:
        rng = self.rng
        emergency = adverse["type"] == "emergency"
        person, date = adverse["person"][emergency], adverse["date"][emergency]
        to_inst = rng.random(len(person)) < EMERGENCY_TO_INSTITUTION
        self._open_cases(person[~to_inst], date[~to_inst])
        self._start_stays(person[to_inst], date[to_inst])

    def _start_stays(self, person: np.ndarray, start: np.ndarray) -> None:
        rng, P = self.rng, self.people
        days = np.clip(rng.exponential(INSTITUTION_MEAN_DAYS, len(person)), 14, 720).astype("timedelta64[D]")
        P["inst_from"][person] = start
        P["inst_end"][person] = start + days
        P["inst_to_shown"][person] = np.where(rng.random(len(person)) < INSTITUTION_END_SHOWN,
                                              start + days, NAT)

    def _institution_stays(self, stay, age_me, ms, me) -> None:
        P = self.people
        free = np.isnat(P["inst_end"][stay]) | (P["inst_end"][stay] < ms)
        p = np.where(age_me >= 75, _interp_steps(np.maximum(age_me, 75), INSTITUTION_P), 0.0)
        start = stay[free & (self.rng.random(len(stay)) < p)]
        self._start_stays(start, _random_days(self.rng, ms, me, len(start)))

    def _certifications(self, stay, age_me, mi, ms, me) -> None:
        rng, P = self.rng, self.people
        # Renewals: the next period starts the day after the old one ended, level may change.
        level, valid_to = P["cert"][stay], P["cert_to"][stay]
        renew = stay[(level >= 0) & ~np.isnat(valid_to) & (valid_to < me)]
        start = P["cert_to"][renew] + np.timedelta64(1, "D")
        period = rng.choice(CERT_PERIOD_MONTHS, len(renew), p=CERT_PERIOD_P)
        u = rng.random(len(renew))
        change = np.where(u < CERT_WORSENS, 1, np.where(u < CERT_WORSENS + CERT_IMPROVES, -1, 0))
        P["cert"][renew] = np.clip(P["cert"][renew] + change, 0, 6)
        P["cert_from"][renew] = start
        P["cert_to"][renew] = _month_ends(_months_of(start) + period - 1)
        # New certifications follow the slope of the prevalence curve.
        candidates = stay[(level < 0) & (age_me >= 65)]
        age = age_me[(level < 0) & (age_me >= 65)]
        prev_now = np.interp(age, CERT_AGES, CERT_PREVALENCE)
        prev_next = np.interp(age + 1, CERT_AGES, CERT_PREVALENCE)
        hazard = ((prev_next - prev_now) / (1 - prev_now) + 0.02 * prev_now) / 12
        hazard = np.where(P["isolated"][candidates], hazard * CERT_HAZARD_ISOLATED, hazard)
        new = candidates[rng.random(len(candidates)) < hazard]
        P["cert"][new] = rng.choice(len(CERT_NEW_LEVEL_P), len(new), p=CERT_NEW_LEVEL_P)
        P["cert_from"][new] = _random_days(rng, ms, me, len(new))
        P["cert_to"][new] = _month_ends(np.full(len(new), mi + 12))
        # 訪問収集 enrolment: at certification, or rarely otherwise, for 75+ living alone.
        size = self._household_sizes()
        new_alone = (size[P["hh"][new]] == 1) & (_age_on(P["by"][new], P["bmd"][new], me) >= 75)
        P["garbage"][new[new_alone & (rng.random(len(new)) < GARBAGE_ENROL_NEW_CERT)]] = True
        alone_old = stay[(size[P["hh"][stay]] == 1) & (age_me >= 75) & ~P["garbage"][stay]]
        P["garbage"][alone_old[rng.random(len(alone_old)) < GARBAGE_ENROL_MONTHLY]] = True

    # ------------------------------------------------------------------ snapshots
    def _residents_snapshot(self, stay: np.ndarray) -> dict[str, np.ndarray]:
        P, H = self.people, self.households
        hh = P["hh"][stay]
        return {
            "resident_id": P["rid_s"][stay], "household_id": H["hid_s"][hh],
            "name": P["name"][stay], "name_kana": P["kana"][stay], "birth_date": P["birth"][stay],
            "sex": P["sex"][stay], "address": H["address"][hh],
            "district": _DISTRICT_NAMES[H["district"][hh]],
            "relationship": _RELATIONSHIPS[P["rel"][stay]], "moved_in_date": P["moved_in"][stay],
            "phone": P["phone"][stay],
        }

    def _certification_snapshot(self, stay: np.ndarray, me) -> dict[str, np.ndarray]:
        P = self.people
        idx = stay[(P["cert"][stay] >= 0) & (P["cert_from"][stay] <= me)]
        return {"resident_id": P["rid_s"][idx],
                "care_level": np.asarray(CERT_LEVELS, dtype=object)[P["cert"][idx]],
                "valid_from": P["cert_from"][idx], "valid_to": P["cert_to"][idx]}

    def _exclusion_snapshot(self, stay: np.ndarray, me) -> dict[str, np.ndarray]:
        P = self.people
        objected = stay[P["objected"][stay]]
        case = stay[(P["case_from"][stay] <= me) & (P["case_to"][stay] >= me)]
        inst = stay[(P["inst_from"][stay] <= me) & (P["inst_end"][stay] >= me)]
        person = np.concatenate([objected, case, inst])
        reason = np.concatenate([np.full(len(objected), "objected", dtype=object),
                                 np.full(len(case), "case_open", dtype=object),
                                 np.full(len(inst), "institution", dtype=object)])
        valid_from = np.concatenate([P["objected_from"][objected], P["case_from"][case], P["inst_from"][inst]])
        valid_to = np.concatenate([np.full(len(objected), NAT), P["case_to"][case], P["inst_to_shown"][inst]])
        order = np.lexsort((valid_from, person))
        return {"resident_id": P["rid_s"][person[order]], "reason": reason[order],
                "valid_from": valid_from[order], "valid_to": valid_to[order]}

    def final_state(self, mi: int) -> pd.DataFrame:
        """The latent truth for everyone in the last snapshot (never part of the inbox)."""
        P, H = self.people, self.households
        stay = np.flatnonzero(P["present"])
        size = self._household_sizes()
        return pd.DataFrame({
            "resident_id": P["rid_s"][stay],
            "isolated": P["isolated"][stay].astype(np.int8),
            "age": _age_on(P["by"][stay], P["bmd"][stay], _month_ends(mi)[()]),
            "living_alone": (size[P["hh"][stay]] == 1).astype(np.int8),
            "district": _DISTRICT_NAMES[H["district"][P["hh"][stay]]],
        })


# =============================================================================================
# Household composition builders: each returns member groups
#   (household index, age, sex, relationship, own surname?) for the households `local`.
# =============================================================================================
def _group(local, age, sex, rel, own_name=False):
    n = len(local)
    return (local, np.asarray(age, np.int64), np.asarray(sex, np.int8),
            np.full(n, rel, np.int8) if np.isscalar(rel) else np.asarray(rel, np.int8),
            np.full(n, own_name, bool))


def _single_sex(rng, age):
    male = rng.random(len(age)) < np.interp(age, SINGLE_MALE_SHARE_AGES, SINGLE_MALE_SHARE)
    sex = np.where(male, 1, 2)
    return np.where(rng.random(len(age)) < SEX_UNKNOWN_SHARE, 9, sex)


def _couple(rng, local, head_age):
    """Head and spouse; the husband is usually 世帯主 and ~2 years older."""
    n = len(local)
    head_male = rng.random(n) < COUPLE_HEAD_MALE
    gap = np.round(rng.normal(2.0, 3.0, n)).astype(np.int64)
    spouse_age = np.clip(np.where(head_male, head_age - gap, head_age + gap), 18, 102)
    head = _group(local, head_age, np.where(head_male, 1, 2), REL_HEAD)
    spouse = _group(local, spouse_age, np.where(head_male, 2, 1), np.where(head_male, REL_WIFE, REL_HUSBAND))
    mother_age = np.where(head_male, spouse_age, head_age)
    return [head, spouse], mother_age


def _children(rng, local, mother_age, kind):
    counts, p = CHILDREN_COUNT[kind]
    k = rng.choice(np.asarray(counts), len(local), p=p)
    owner = np.repeat(local, k)
    m_age = np.repeat(mother_age, k)
    age = m_age - rng.integers(*MOTHER_AGE_AT_BIRTH, len(owner))
    fallback = rng.integers(0, np.maximum(m_age - 22, 1))
    age = np.where(age < 0, fallback, age)
    sex = np.where(rng.random(len(owner)) < SEX_UNKNOWN_SHARE, 9, rng.choice([1, 2], len(owner)))
    return _group(owner, age, sex, REL_CHILD)


def _adult_child(rng, local, parent_age):
    age = np.maximum(parent_age - rng.integers(25, 41, len(local)), 18)
    return _group(local, age, np.where(rng.random(len(local)) < .55, 1, 2), REL_CHILD)


def _build_single(rng, local, head_age):
    return [_group(local, head_age, _single_sex(rng, head_age), REL_HEAD)]


def _build_couple(rng, local, head_age):
    return _couple(rng, local, head_age)[0]


def _build_couple_children(rng, local, head_age):
    members, mother_age = _couple(rng, local, head_age)
    return members + [_children(rng, local, mother_age, "couple_children")]


def _build_single_parent(rng, local, head_age):
    sex = np.where(rng.random(len(local)) < .85, 2, 1)
    return [_group(local, head_age, sex, REL_HEAD), _children(rng, local, head_age, "single_parent")]


def _build_elder_with_child(rng, local, head_age):
    """The 8050 household: an old parent and a middle-aged child."""
    sex = np.where(rng.random(len(local)) < .3, 1, 2)
    return [_group(local, head_age, sex, REL_HEAD), _adult_child(rng, local, head_age)]


def _build_elder_couple_child(rng, local, head_age):
    members, mother_age = _couple(rng, local, head_age)
    return members + [_adult_child(rng, local, mother_age)]


def _build_three_generation(rng, local, head_age):
    members, mother_age = _couple(rng, local, head_age)
    kids = _children(rng, local, mother_age, "three_generation")
    is_mother = rng.random(len(local)) < .72
    parent_age = np.minimum(head_age + rng.integers(25, 38, len(local)), 100)
    parent = _group(local, parent_age, np.where(is_mother, 2, 1), np.where(is_mother, REL_MOTHER, REL_FATHER))
    return members + [kids, parent]


def _build_sharers(rng, local, head_age):
    """Two or three unrelated adults (relationship その他, own surnames)."""
    head = _group(local, head_age, _single_sex(rng, head_age), REL_HEAD)
    k = np.where(rng.random(len(local)) < .85, 1, 2)
    owner = np.repeat(local, k)
    age = np.maximum(np.repeat(head_age, k) + rng.integers(-5, 6, len(owner)), 18)
    return [head, _group(owner, age, _single_sex(rng, age), REL_OTHER, own_name=True)]


_MEMBER_BUILDERS = {
    "single": _build_single, "couple": _build_couple, "couple_children": _build_couple_children,
    "single_parent": _build_single_parent, "elder_with_child": _build_elder_with_child,
    "elder_couple_child": _build_elder_couple_child, "three_generation": _build_three_generation,
    "sharers": _build_sharers,
}


def _rehead_table() -> np.ndarray:
    """_REHEAD[new head's old relationship, member's old relationship] -> member's new one."""
    table = np.full((12, 12), REL_OTHER, np.int8)
    for spouse, parent_of_spouse in ((REL_WIFE, (REL_HUSBANDS_MOTHER, REL_HUSBANDS_FATHER)),
                                     (REL_HUSBAND, (REL_WIFES_MOTHER, REL_WIFES_FATHER))):
        # The surviving spouse heads: children and grandchildren keep theirs, the late head's
        # parents become the parents-in-law of the new head.
        table[spouse, REL_CHILD] = REL_CHILD
        table[spouse, REL_GRANDCHILD] = REL_GRANDCHILD
        table[spouse, REL_MOTHER], table[spouse, REL_FATHER] = parent_of_spouse
    table[REL_CHILD, REL_GRANDCHILD] = REL_CHILD     # approximately: the new head's own child
    for parent in (REL_MOTHER, REL_FATHER):
        table[parent, REL_CHILD] = REL_GRANDCHILD
    return table


_REHEAD = _rehead_table()
_RELATIONSHIPS = np.asarray(names.RELATIONSHIPS, dtype=object)
_DISTRICT_NAMES = np.asarray([d[0] for d in names.DISTRICTS], dtype=object)


# =============================================================================================
# Hazards
# =============================================================================================
def _isolation_entry(age, alone, male, certified, short_residence, bereaved, supported) -> np.ndarray:
    """Monthly probability of becoming isolated (0 for children)."""
    elderly = age >= 65
    logit = (ISO_INTERCEPT + ISO_ALONE * alone + ISO_ELDERLY * elderly + ISO_ALONE_ELDERLY * (alone & elderly)
             + ISO_AGE_SLOPE * np.maximum(age - 65, 0) + ISO_MALE * male
             + ISO_NO_CERT_75 * ((age >= 75) & ~certified) + ISO_SHORT_RESIDENCE * short_residence
             + ISO_BEREAVED * bereaved + ISO_SUPPORTED * supported)
    return np.where(age >= ISO_MIN_AGE, 1.0 / (1.0 + np.exp(-logit)), 0.0)


def _checkup_probability(isolated: np.ndarray, attended_last_year: np.ndarray) -> np.ndarray:
    return np.select([~isolated & attended_last_year, ~isolated & ~attended_last_year,
                      isolated & attended_last_year],
                     [CHECKUP_P[(False, True)], CHECKUP_P[(False, False)], CHECKUP_P[(True, True)]],
                     CHECKUP_P[(True, False)])


def _checkup_stationary(isolated: bool) -> float:
    """Long-run yearly attendance of the checkup Markov chain."""
    start, keep = CHECKUP_P[(isolated, False)], CHECKUP_P[(isolated, True)]
    return start / (start + 1 - keep)


def _monthly_death_prob(age: np.ndarray, sex: np.ndarray) -> np.ndarray:
    a = age.astype(float) - 60
    male = np.exp(LT_LN_Q60[1] + LT_SLOPE[1] * a)
    female = np.exp(LT_LN_Q60[2] + LT_SLOPE[2] * a)
    q = np.where(sex == 1, male, np.where(sex == 2, female, (male + female) / 2))
    q = np.clip(q + LT_FLOOR, 0, LT_CAP)
    return 1 - (1 - q) ** (1 / 12)


def _age_on(by: np.ndarray, bmd: np.ndarray, on: np.datetime64) -> np.ndarray:
    """Age in whole years on a date, from birth (year, month*100+day)."""
    day = pd.Timestamp(on)
    return (day.year - by.astype(np.int64)) - ((day.month * 100 + day.day) < bmd)


# =============================================================================================
# Random dates and strings
# =============================================================================================
def _random_days(rng: np.random.Generator, ms, me, n: int) -> np.ndarray:
    days = int((me - ms).astype(np.int64)) + 1
    return ms + rng.integers(0, days, n).astype("timedelta64[D]")


def _random_weekdays(rng: np.random.Generator, ms, n: int) -> np.ndarray:
    """Office work (checkups, visits) happens on weekdays."""
    days = ms + np.arange(int((_month_ends(_months_of(np.array([ms]))[0]) - ms).astype(np.int64)) + 1)
    weekdays = days[_weekday(days) < 5]
    return weekdays[rng.integers(0, len(weekdays), n)]


def _pension_day(ms) -> np.datetime64:
    """Pensions are paid on the 15th, or the weekday before when it falls on a weekend."""
    day = ms + np.timedelta64(PENSION_DAY - 1, "D")
    back = {5: 1, 6: 2}.get(int(_weekday(np.array([day]))[0]), 0)
    return day - np.timedelta64(back, "D")


def _digits(rng: np.random.Generator, width: int, n: int) -> np.ndarray:
    return np.char.zfill(rng.integers(0, 10**width, n).astype(str), width).astype(object)


def _id_strings(ids: np.ndarray) -> np.ndarray:
    return np.char.zfill(ids.astype(str), 10).astype(object)


def _person_names(rng, surname: np.ndarray, sex: np.ndarray, birth_year: np.ndarray):
    """Kanji and katakana names; given names come from the person's birth cohort."""
    cohort = np.searchsorted(GIVEN_NAME_COHORT_BOUNDS, birth_year, side="right")
    female = (sex == 2) | ((sex == 9) & (rng.random(len(sex)) < .5))
    pick = rng.integers(0, 25, len(sex))
    kanji, kana = _GIVEN_KANJI[female.astype(int), cohort, pick], _GIVEN_KANA[female.astype(int), cohort, pick]
    name = _SURNAME_KANJI[surname] + "\u3000" + kanji
    name_kana = _SURNAME_KANA[surname] + "\u3000" + kana
    return name, name_kana


_SURNAME_P = 1.0 / np.arange(1, len(names.SURNAMES) + 1) ** 0.9  # Zipf over the rank order
_SURNAME_P /= _SURNAME_P.sum()
_SURNAME_KANJI = np.asarray([s[0] for s in names.SURNAMES], dtype=object)
_SURNAME_KANA = np.asarray([s[1] for s in names.SURNAMES], dtype=object)
_GIVEN_KANJI = np.asarray([[[g[0] for g in c] for c in names.GIVEN_MALE],
                           [[g[0] for g in c] for c in names.GIVEN_FEMALE]], dtype=object)
_GIVEN_KANA = np.asarray([[[g[1] for g in c] for c in names.GIVEN_MALE],
                          [[g[1] for g in c] for c in names.GIVEN_FEMALE]], dtype=object)


class _Places:
    """Districts, towns and address lots of the ward (fixed: the same ward for every seed)."""

    def __init__(self) -> None:
        self.town_names, self.town_district, self.town_chome, town_weight = [], [], [], []
        for d, (_, towns, *_rest) in enumerate(names.DISTRICTS):
            for town, chome in towns:
                self.town_names.append(town)
                self.town_district.append(d)
                self.town_chome.append(chome)
                town_weight.append(chome)
        self.town_names = np.asarray(self.town_names, dtype=object)
        self.town_district = np.asarray(self.town_district)
        self.town_chome = np.asarray(self.town_chome)
        self.town_weight = np.asarray(town_weight, float)
        size = np.array([d[2] for d in names.DISTRICTS])
        self.district_p = {
            "elderly": size * np.array([d[3] for d in names.DISTRICTS]),
            "young": size * np.array([d[4] for d in names.DISTRICTS]),
            "family": size,
        }
        # A building is named "{prefix}{町名}" or "{町名}{suffix}".
        self.building_prefix = np.asarray(names.BUILDING_PREFIXES + [""] * len(names.BUILDING_SUFFIXES),
                                          dtype=object)
        self.building_suffix = np.asarray([""] * len(names.BUILDING_PREFIXES) + names.BUILDING_SUFFIXES,
                                          dtype=object)

    def draw(self, rng: np.random.Generator, profile: np.ndarray):
        """District, town and full address string for each household profile."""
        n = len(profile)
        district = np.zeros(n, np.int8)
        for kind, weight in self.district_p.items():
            sel = np.flatnonzero(profile == kind)
            district[sel] = rng.choice(len(weight), len(sel), p=weight / weight.sum())
        town = np.zeros(n, np.int64)
        for d in range(len(names.DISTRICTS)):
            sel = np.flatnonzero(district == d)
            towns = np.flatnonzero(self.town_district == d)
            w = self.town_weight[towns]
            town[sel] = towns[rng.choice(len(towns), len(sel), p=w / w.sum())]
        wants_building = rng.random(n) < np.select([profile == k for k in BUILDING_WANTED],
                                                   list(BUILDING_WANTED.values()))
        chome = rng.integers(1, self.town_chome[town] + 1)
        ban, go = rng.integers(1, BAN_MAX + 1, n), rng.integers(1, GO_MAX + 1, n)
        for _ in range(12):  # redraw the lot until it is the kind of dwelling wanted
            wrong = (_lot_hash(town, chome, ban, go, 1) % 100 < BUILDING_LOT_SHARE) != wants_building
            if not wrong.any():
                break
            ban[wrong] = rng.integers(1, BAN_MAX + 1, wrong.sum())
            go[wrong] = rng.integers(1, GO_MAX + 1, wrong.sum())
        building = _lot_hash(town, chome, ban, go, 1) % 100 < BUILDING_LOT_SHARE
        pattern = _lot_hash(town, chome, ban, go, 2) % len(self.building_prefix)
        floors = 2 + _lot_hash(town, chome, ban, go, 3) % 9
        room = (rng.integers(1, floors + 1)).astype(str).astype(object) \
            + np.char.zfill(rng.integers(1, 9, n).astype(str), 2).astype(object)
        town_s = self.town_names[town]
        building_s = (self.building_prefix[pattern] + town_s + self.building_suffix[pattern])[building]
        address = (names.WARD + town_s + chome.astype(str).astype(object) + "丁目"
                   + ban.astype(str).astype(object) + "番" + go.astype(str).astype(object) + "号")
        address[building] = address[building] + "\u3000" + building_s + room[building]
        return district, town, address


def _lot_hash(town, chome, ban, go, salt: int) -> np.ndarray:
    """A fixed pseudo-random number per address lot (so a lot is always the same building)."""
    x = (town.astype(np.uint64) * np.uint64(1_000_003) + chome.astype(np.uint64) * np.uint64(10_007)
         + ban.astype(np.uint64) * np.uint64(101) + go.astype(np.uint64) + np.uint64(salt * 7_919))
    x = (x * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(33)
    return (x % np.uint64(1 << 30)).astype(np.int64)


# =============================================================================================
# Writing the inbox: clean (canonical) or messy (vendor-style) CSV
# =============================================================================================
DATE_STYLES = ("iso", "slash_padded", "slash", "compact", "wareki_kanji", "wareki_dot", "wareki_slash")
MONTH_STYLES = ("iso", "slash", "compact", "wareki_kanji", "wareki_dot")
_ERAS = [(dt.date.fromisoformat(start), letter, kanji) for letter, kanji, start in names.ERAS]
_FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
_FULLWIDTH_ASCII = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}


class _InboxWriter:
    """Renders typed month tables to CSV files; the clean form is canonical, the messy one varies."""

    def __init__(self, inbox: Path, messy: bool, fmt_rng: np.random.Generator) -> None:
        self.inbox, self.messy, self.rng = inbox, messy, fmt_rng
        self._formatted: dict[tuple, dict] = {}   # (kind, style) -> {value: text}, reused monthly

    def write(self, month: str, source: str, table: dict[str, np.ndarray]) -> Path:
        folder = self.inbox / month
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{source}.csv"
        spec = SOURCES[source]
        style = self._messy_style(spec) if self.messy else None
        order = style["order"] if style else range(len(spec))
        headers = [style["headers"][k] if style else spec[k][0] for k in order]
        columns = [self._render(table[spec[k][0]], spec[k][1], style) for k in order]
        quote_all = bool(style and style["quote_all"])
        lines = [",".join(_csv_field(h, quote_all) for h in headers)]
        lines += map(",".join, zip(*(_csv_column(c, quote_all) for c in columns), strict=True))
        newline = style["newline"] if style else "\n"
        text = newline.join(lines) + newline
        path.write_bytes(text.encode(style["encoding"] if style else "utf-8"))  # utf-8-sig: BOM
        return path

    def _render(self, values: np.ndarray, kind: str, style: dict | None) -> np.ndarray:
        """Typed column -> strings, canonically (style None) or in a vendor style."""
        if kind == STR:
            return values
        if kind == ID:
            return _fullwidth(values) if style and style["fullwidth_ids"] else values
        if kind == DATE:
            form = style["date"] if style else "iso"
            return self._via_uniques(values.astype(np.int64), (DATE, form),
                                     lambda d: _format_date(np.int64(d).astype("datetime64[D]"), form))
        if kind == MONTH:
            form = style["month"] if style else "iso"
            return self._via_uniques(values, (MONTH, form), lambda m: _format_month(int(m), form))
        if kind == INT:
            form = (bool(style and style["fullwidth_amounts"]), bool(style and style["commas"]))
            return self._via_uniques(values, (INT, form), lambda v: _format_amount(int(v), *form))
        if kind == SEX:
            mapping = style["sex"] if style else names.SEX_STYLES[0]
            return self._via_uniques(values, (SEX, tuple(mapping.values())), lambda v: mapping[int(v)])
        if style and style["japanese_enums"]:
            return self._via_uniques(values, (kind, "ja"), names.ENUM_JA[kind].__getitem__)
        return values

    def _via_uniques(self, values: np.ndarray, key: tuple, fmt) -> np.ndarray:
        """Format each distinct value once, and remember it for the next months."""
        if len(values) == 0:
            return np.asarray(values, dtype=object)
        cache = self._formatted.setdefault(key, {})
        uniq, inverse = np.unique(values, return_inverse=True)
        texts = []
        for value in uniq.tolist():
            text = cache.get(value)
            if text is None:
                text = cache[value] = fmt(value)
            texts.append(text)
        return np.asarray(texts, dtype=object)[inverse.reshape(-1)]

    def _messy_style(self, spec) -> dict:
        """One vendor system's habits for one file, drawn from the format RNG only."""
        rng = self.rng
        cp932 = rng.random() < 0.6
        fullwidth_amounts = rng.random() < 0.2
        return {
            "encoding": "cp932" if cp932 else "utf-8-sig",
            "newline": "\r\n" if rng.random() < (0.8 if cp932 else 0.3) else "\n",
            "quote_all": rng.random() < 0.25,
            "date": DATE_STYLES[rng.integers(len(DATE_STYLES))],
            "month": MONTH_STYLES[rng.integers(len(MONTH_STYLES))],
            "fullwidth_ids": rng.random() < 0.25,
            "fullwidth_amounts": fullwidth_amounts,
            "commas": (not fullwidth_amounts) and rng.random() < 0.5,
            "japanese_enums": rng.random() < 0.7,
            "sex": names.SEX_STYLES[rng.integers(len(names.SEX_STYLES))],
            "order": rng.permutation(len(spec)),
            "headers": [_messy_header(column, aliases, rng) for column, _, aliases in spec],
        }


def _messy_header(column: str, aliases: tuple[str, ...], rng: np.random.Generator) -> str:
    if rng.random() < 0.8:
        header = aliases[rng.integers(len(aliases))]
    else:
        header = column.translate(_FULLWIDTH_ASCII) if rng.random() < 0.5 else column
    if rng.random() < 0.25:
        pad = ("\u0020", "\u0020\u0020", "\u3000")
        header = pad[rng.integers(3)] + header + pad[rng.integers(3)]
    return header


def _csv_field(text: str, quote: bool) -> str:
    """RFC 4180 quoting of one field (the header)."""
    if quote or any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_column(values: np.ndarray, quote_all: bool) -> list[str]:
    """RFC 4180 quoting for a whole column: quoted when asked to or when any field needs it
    (amounts written with thousands separators); joining lists is much faster than csv.writer."""
    values = values.tolist() if isinstance(values, np.ndarray) else list(values)
    joined = "".join(values)
    if not quote_all and not any(ch in joined for ch in ',"\r\n'):
        return values
    if '"' in joined:
        values = [v.replace('"', '""') for v in values]
    return ['"' + v + '"' for v in values]


def _fullwidth(values: np.ndarray) -> np.ndarray:
    return pd.Series(values, dtype=object).str.translate(_FULLWIDTH_DIGITS).to_numpy(dtype=object)


def _format_amount(value: int, fullwidth: bool, commas: bool) -> str:
    if fullwidth:
        return str(value).translate(_FULLWIDTH_DIGITS)
    return f"{value:,}" if commas else str(value)


def _era(day: dt.date) -> tuple[str, str, int]:
    """(letter, kanji, era year) of a date; the first year of an era is year 1."""
    for start, letter, kanji in reversed(_ERAS):
        if day >= start:
            return letter, kanji, day.year - start.year + 1
    raise ValueError(f"date before 明治: {day}")


def _format_date(value: np.datetime64, style: str) -> str:
    if np.isnat(value):
        return ""
    day = value.astype(dt.date)
    if style == "iso":
        return day.isoformat()
    if style == "slash_padded":
        return f"{day.year}/{day.month:02d}/{day.day:02d}"
    if style == "slash":
        return f"{day.year}/{day.month}/{day.day}"
    if style == "compact":
        return f"{day.year}{day.month:02d}{day.day:02d}"
    letter, kanji, year = _era(day)
    if style == "wareki_kanji":
        return f"{kanji}{'元' if year == 1 else year}年{day.month}月{day.day}日"
    if style == "wareki_dot":
        return f"{letter}{year}.{day.month}.{day.day}"
    return f"{letter}{year:02d}/{day.month:02d}/{day.day:02d}"  # wareki_slash


def _format_month(mi: int, style: str) -> str:
    year, month = mi // 12, mi % 12 + 1
    if style == "iso":
        return f"{year:04d}-{month:02d}"
    if style == "slash":
        return f"{year:04d}/{month:02d}"
    if style == "compact":
        return f"{year:04d}{month:02d}"
    letter, kanji, era_year = _era(dt.date(year, month, 1))
    if style == "wareki_kanji":
        return f"{kanji}{'元' if era_year == 1 else era_year}年{month}月"
    return f"{letter}{era_year}.{month}"  # wareki_dot
