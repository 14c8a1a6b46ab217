"""The synthetic ward's calibration: every rate and structural number, with its source.

Sources are public aggregates, rounded; where none fits, the value is an assumption chosen so the
ward reads true to a welfare analyst. Tests (tests/test_synth.py) assert the resulting bands. The
hazards at the end turn these numbers into each person's monthly probabilities.
"""
from __future__ import annotations

import numpy as np


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


# =============================================================================================
# Hazards and step tables
# =============================================================================================
def isolation_entry_probability(age, alone, male, certified, short_residence, bereaved,
                                supported) -> np.ndarray:
    """Monthly probability of becoming isolated (0 for children)."""
    elderly = age >= 65
    logit = (ISO_INTERCEPT + ISO_ALONE * alone + ISO_ELDERLY * elderly + ISO_ALONE_ELDERLY * (alone & elderly)
             + ISO_AGE_SLOPE * np.maximum(age - 65, 0) + ISO_MALE * male
             + ISO_NO_CERT_75 * ((age >= 75) & ~certified) + ISO_SHORT_RESIDENCE * short_residence
             + ISO_BEREAVED * bereaved + ISO_SUPPORTED * supported)
    return np.where(age >= ISO_MIN_AGE, 1.0 / (1.0 + np.exp(-logit)), 0.0)


def checkup_probability(isolated: np.ndarray, attended_last_year: np.ndarray) -> np.ndarray:
    return np.select([~isolated & attended_last_year, ~isolated & ~attended_last_year,
                      isolated & attended_last_year],
                     [CHECKUP_P[(False, True)], CHECKUP_P[(False, False)], CHECKUP_P[(True, True)]],
                     CHECKUP_P[(True, False)])


def checkup_stationary_share(isolated: bool) -> float:
    """Long-run yearly attendance of the checkup Markov chain."""
    start, keep = CHECKUP_P[(isolated, False)], CHECKUP_P[(isolated, True)]
    return start / (start + 1 - keep)


def monthly_death_probability(age: np.ndarray, sex: np.ndarray) -> np.ndarray:
    a = age.astype(float) - 60
    male = np.exp(LT_LN_Q60[1] + LT_SLOPE[1] * a)
    female = np.exp(LT_LN_Q60[2] + LT_SLOPE[2] * a)
    q = np.where(sex == 1, male, np.where(sex == 2, female, (male + female) / 2))
    q = np.clip(q + LT_FLOOR, 0, LT_CAP)
    return 1 - (1 - q) ** (1 / 12)


def step_values(values: np.ndarray, table: tuple) -> np.ndarray:
    """Step function: value of the last (threshold, value) pair whose threshold <= value."""
    thresholds = np.array([t for t, _ in table])
    levels = np.array([v for _, v in table])
    return levels[np.searchsorted(thresholds, values, side="right") - 1]
