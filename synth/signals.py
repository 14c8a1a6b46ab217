"""What the departments see of a month: the ten source tables, drawn from the latent state.

Isolation drives noisy signals: fewer checkups, premium arrears, garbage-collection
non-response, fewer welfare contacts and worse outreach outcomes. The ward visits by today's rule
(75+ living alone, oldest first), so the labels carry its selection bias. Each function returns
one typed table (columns of numpy arrays) in contract order, sorted by its key; writer.py turns
them into CSV.
"""
from __future__ import annotations

import numpy as np

from . import names
from .calendar import NAT, age_on, weekday
from .draws import choices, random_days, random_weekdays
from .population import DISTRICT_NAMES, Population
from .rates import CANCER_SCREENING_EXTRA, CARE_ARREARS_P, CARE_MONTHLY_YEN, CERT_LEVELS, CHANNEL_P, \
    CHECKUP_MIN_AGE, CONTACT_P, CONTACT_P_OPEN_CASE, CONTACT_SECOND, GARBAGE_RESULT_P, LATE_PAYMENT_P, \
    NHI_ARREARS_P, NHI_BASE_YEN, NHI_INCOME_YEN, NHI_PER_MEMBER_YEN, OUTCOME_P, OUTCOMES, PENSION_DAY, \
    PREMIUM_PRESCRIPTION_MONTHS, SPECIAL_COLLECTION_DELAY_DAYS, STAFF_P, STAFF_P_OPEN_CASE, VISIT_CAPACITY_SHARE, \
    VISIT_GAP_DAYS, VISIT_MIN_AGE, checkup_probability

_RELATIONSHIPS = np.asarray(names.RELATIONSHIPS, dtype=object)


def event_table(pop: Population, person: np.ndarray, date: np.ndarray, columns: tuple[str, ...],
                *values: np.ndarray) -> dict[str, np.ndarray]:
    """An event table sorted by (resident, date), keeping the person index for later use."""
    order = np.lexsort((date, person))
    table = {"resident_id": pop.people["rid_s"][person[order]], columns[0]: date[order]}
    for column, value in zip(columns[1:], values, strict=True):
        table[column] = np.asarray(value)[order]
    table["_person"] = person[order]
    return table


# ------------------------------------------------------------------ events of the month
def checkups(pop: Population, stay, age_me, in_institution, mi, ms) -> dict[str, np.ndarray]:
    rng, P = pop.rng, pop.people
    fy_month = (mi % 12 - 3) % 12  # April = 0
    due = (P["ck_slot"][stay] == fy_month) & (age_me >= CHECKUP_MIN_AGE) & ~in_institution
    idx = stay[due]
    attend = rng.random(len(idx)) < checkup_probability(P["isolated"][idx], P["ck_last"][idx])
    idx, age = idx[attend], age_me[due][attend]
    P["ck_this"][idx] = True
    program = np.where(age >= 75, "後期高齢者健診", "特定健診").astype(object)
    extra = idx[rng.random(len(idx)) < CANCER_SCREENING_EXTRA]
    person = np.concatenate([idx, extra])
    program = np.concatenate([program, np.full(len(extra), "がん検診", dtype=object)])
    return event_table(pop, person, random_weekdays(rng, ms, len(person)), ("exam_date", "program"), program)


class Arrears:
    """The open premium bills carried from month to month, until paid late or prescribed."""

    def __init__(self) -> None:
        self.care = {"person": np.zeros(0, np.int64), "month": np.zeros(0, np.int64),
                     "due": np.zeros(0, np.int64)}
        self.nhi = {"household": np.zeros(0, np.int64), "month": np.zeros(0, np.int64),
                    "due": np.zeros(0, np.int64)}

    def care_premiums(self, pop: Population, stay, age_me, mi, ms, me) -> dict[str, np.ndarray]:
        rng, P = pop.rng, pop.people
        # Old bills paid late this month are delivered again under their original key.
        ledger = self.care
        still_here = P["present"][ledger["person"]]
        pay = still_here & (rng.random(len(ledger["person"])) <
                            np.where(P["isolated"][ledger["person"]], LATE_PAYMENT_P[True], LATE_PAYMENT_P[False]))
        late = {k: v[pay] for k, v in ledger.items()}
        keep = still_here & ~pay & (mi - ledger["month"] < PREMIUM_PRESCRIPTION_MONTHS)
        self.care = {k: v[keep] for k, v in ledger.items()}
        # This month's bills.
        idx = stay[age_me >= 65]
        settled = (ms - np.timedelta64(SPECIAL_COLLECTION_DELAY_DAYS, "D"))
        special = P["special_pref"][idx] & (age_on(P["by"][idx], P["bmd"][idx], settled) >= 65) \
            & (P["moved_in"][idx] <= settled)
        due = CARE_MONTHLY_YEN[P["income"][idx]]
        arrears = ~special & (rng.random(len(idx)) <
                              np.where(P["isolated"][idx], CARE_ARREARS_P[True], CARE_ARREARS_P[False]))
        paid_date = np.where(special, _pension_day(ms), random_days(rng, ms, me, len(idx)))
        paid_date = np.where(arrears, NAT, paid_date)
        self.care = {k: np.concatenate([self.care[k], v]) for k, v in
                     {"person": idx[arrears], "month": np.full(int(arrears.sum()), mi),
                      "due": due[arrears]}.items()}
        n_late = len(late["person"])
        person = np.concatenate([idx, late["person"]])
        month = np.concatenate([np.full(len(idx), mi), late["month"]])
        amount_due = np.concatenate([due, late["due"]])
        amount_paid = np.concatenate([np.where(arrears, 0, due), late["due"]])
        paid = np.concatenate([paid_date, random_days(rng, ms, me, n_late)])
        collection = np.concatenate([np.where(special, "special", "ordinary"), np.full(n_late, "ordinary")])
        order = np.lexsort((month, person))
        return {"resident_id": P["rid_s"][person[order]], "billing_month": month[order],
                "amount_due": amount_due[order], "amount_paid": amount_paid[order],
                "paid_date": paid[order], "collection": collection[order].astype(object)}

    def nhi_premiums(self, pop: Population, stay, age_me, mi, ms, me) -> dict[str, np.ndarray]:
        rng, P, H = pop.rng, pop.people, pop.households
        n_hh = len(H)
        ledger = self.nhi
        any_iso = np.bincount(P["hh"][stay[P["isolated"][stay]]], minlength=n_hh) > 0
        alive_hh = np.bincount(P["hh"][stay], minlength=n_hh) > 0
        still_here = alive_hh[ledger["household"]]
        pay = still_here & (rng.random(len(ledger["household"])) <
                            np.where(any_iso[ledger["household"]], LATE_PAYMENT_P[True], LATE_PAYMENT_P[False]))
        late = {k: v[pay] for k, v in ledger.items()}
        keep = still_here & ~pay & (mi - ledger["month"] < PREMIUM_PRESCRIPTION_MONTHS)
        self.nhi = {k: v[keep] for k, v in ledger.items()}
        # 75+ are in 後期高齢者医療, not NHI: a household is billed for its members under 75.
        under75 = np.bincount(P["hh"][stay[age_me < 75]], minlength=n_hh)
        hh = np.flatnonzero(H["nhi"] & (under75 > 0))
        due = (np.round((NHI_BASE_YEN + NHI_PER_MEMBER_YEN * under75[hh]
                         + NHI_INCOME_YEN[H["nhi_income"][hh]]) / 100) * 100).astype(np.int64)
        arrears = rng.random(len(hh)) < np.where(any_iso[hh], NHI_ARREARS_P[True], NHI_ARREARS_P[False])
        self.nhi = {k: np.concatenate([self.nhi[k], v]) for k, v in
                    {"household": hh[arrears], "month": np.full(int(arrears.sum()), mi),
                     "due": due[arrears]}.items()}
        household = np.concatenate([hh, late["household"]])
        month = np.concatenate([np.full(len(hh), mi), late["month"]])
        order = np.lexsort((month, household))
        return {"household_id": H["hid_s"][household[order]], "billing_month": month[order],
                "amount_due": np.concatenate([due, late["due"]])[order],
                "amount_paid": np.concatenate([np.where(arrears, 0, due), late["due"]])[order]}


def _pension_day(ms) -> np.datetime64:
    """Pensions are paid on the 15th, or the weekday before when it falls on a weekend."""
    day = ms + np.timedelta64(PENSION_DAY - 1, "D")
    back = {5: 1, 6: 2}.get(int(weekday(np.array([day]))[0]), 0)
    return day - np.timedelta64(back, "D")


def garbage_pickups(pop: Population, stay, in_institution, ms, me) -> dict[str, np.ndarray]:
    rng, P = pop.rng, pop.people
    idx = stay[P["garbage"][stay] & ~in_institution]
    first = ms + ((P["garbage_wd"][idx] - weekday(np.array([ms]))[0]) % 7).astype("timedelta64[D]")
    dates = first[:, None] + (7 * np.arange(5)).astype("timedelta64[D]")
    ok = dates <= me
    person = np.repeat(idx, ok.sum(axis=1))
    date = dates[ok]
    iso = P["isolated"][person]
    u = rng.random(len(person))
    p = np.array([GARBAGE_RESULT_P[False], GARBAGE_RESULT_P[True]])[iso.astype(int)]
    result = np.where(u < p[:, 0], "collected",
                      np.where(u < p[:, 0] + p[:, 1], "no_garbage", "no_response")).astype(object)
    return event_table(pop, person, date, ("pickup_date", "result"), result)


def welfare_contacts(pop: Population, stay, age_me, ms, me) -> dict[str, np.ndarray]:
    rng, P = pop.rng, pop.people
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
    channel = choices(rng, *CHANNEL_P, n)
    staff = np.where(open_case, choices(rng, *STAFF_P_OPEN_CASE, n), choices(rng, *STAFF_P, n))
    return event_table(pop, person, ms + day.astype("timedelta64[D]"), ("contact_date", "channel", "staff_type"),
                       channel.astype(object), staff.astype(object))


def outreach_outcomes(pop: Population, alive0, age0, alone0, leaving, asof, ms, me) -> dict[str, np.ndarray]:
    """Today's rule: the oldest 75+ living alone, not visited in 180 days, not excluded."""
    rng, P = pop.rng, pop.people
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
    date = random_weekdays(rng, ms, n)
    P["last_visit"][chosen] = date
    return event_table(pop, chosen, date, ("visit_date", "outcome"), outcome)


# ------------------------------------------------------------------ snapshots at the month's end
def residents_snapshot(pop: Population, stay: np.ndarray) -> dict[str, np.ndarray]:
    P, H = pop.people, pop.households
    hh = P["hh"][stay]
    return {
        "resident_id": P["rid_s"][stay], "household_id": H["hid_s"][hh],
        "name": P["name"][stay], "name_kana": P["kana"][stay], "birth_date": P["birth"][stay],
        "sex": P["sex"][stay], "address": H["address"][hh],
        "district": DISTRICT_NAMES[H["district"][hh]],
        "relationship": _RELATIONSHIPS[P["rel"][stay]], "moved_in_date": P["moved_in"][stay],
        "phone": P["phone"][stay],
    }


def certification_snapshot(pop: Population, stay: np.ndarray, me) -> dict[str, np.ndarray]:
    P = pop.people
    idx = stay[(P["cert"][stay] >= 0) & (P["cert_from"][stay] <= me)]
    return {"resident_id": P["rid_s"][idx],
            "care_level": np.asarray(CERT_LEVELS, dtype=object)[P["cert"][idx]],
            "valid_from": P["cert_from"][idx], "valid_to": P["cert_to"][idx]}


def exclusion_snapshot(pop: Population, stay: np.ndarray, me) -> dict[str, np.ndarray]:
    P = pop.people
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
