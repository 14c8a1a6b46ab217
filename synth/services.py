"""How the ward's services respond within a month: cases opened after a needs_support visit or
an emergency, stays in hospital or a care facility, care certifications (renewals and new ones)
and enrolment in 訪問収集 (door-to-door garbage collection)."""
from __future__ import annotations

import numpy as np

from .calendar import NAT, age_on, month_ends, months_of
from .draws import random_days
from .population import Population
from .rates import CASE_DAYS, CERT_AGES, CERT_HAZARD_ISOLATED, CERT_IMPROVES, CERT_NEW_LEVEL_P, \
    CERT_PERIOD_MONTHS, CERT_PERIOD_P, CERT_PREVALENCE, CERT_WORSENS, EMERGENCY_TO_INSTITUTION, \
    GARBAGE_ENROL_MONTHLY, GARBAGE_ENROL_NEW_CERT, INSTITUTION_END_SHOWN, INSTITUTION_MEAN_DAYS, \
    INSTITUTION_P, step_values


def open_cases(pop: Population, person: np.ndarray, start: np.ndarray) -> None:
    days = pop.rng.integers(CASE_DAYS[0], CASE_DAYS[1] + 1, len(person)).astype("timedelta64[D]")
    pop.people["case_from"][person] = start
    pop.people["case_to"][person] = start + days


def after_emergencies(pop: Population, adverse: dict[str, np.ndarray]) -> None:
    """An emergency ends in an open case, or in a stay in hospital or a care facility."""
    emergency = adverse["type"] == "emergency"
    person, date = adverse["person"][emergency], adverse["date"][emergency]
    to_inst = pop.rng.random(len(person)) < EMERGENCY_TO_INSTITUTION
    open_cases(pop, person[~to_inst], date[~to_inst])
    _start_stays(pop, person[to_inst], date[to_inst])


def institution_stays(pop: Population, stay, age_me, ms, me) -> None:
    """Stays that begin this month among the old who are not already away."""
    P = pop.people
    free = np.isnat(P["inst_end"][stay]) | (P["inst_end"][stay] < ms)
    p = np.where(age_me >= 75, step_values(np.maximum(age_me, 75), INSTITUTION_P), 0.0)
    start = stay[free & (pop.rng.random(len(stay)) < p)]
    _start_stays(pop, start, random_days(pop.rng, ms, me, len(start)))


def _start_stays(pop: Population, person: np.ndarray, start: np.ndarray) -> None:
    rng, P = pop.rng, pop.people
    days = np.clip(rng.exponential(INSTITUTION_MEAN_DAYS, len(person)), 14, 720).astype("timedelta64[D]")
    P["inst_from"][person] = start
    P["inst_end"][person] = start + days
    P["inst_to_shown"][person] = np.where(rng.random(len(person)) < INSTITUTION_END_SHOWN,
                                          start + days, NAT)


def certifications(pop: Population, stay, age_me, mi, ms, me) -> None:
    """Renew the certifications that end this month, certify newly, and enrol in 訪問収集."""
    rng, P = pop.rng, pop.people
    # Renewals: the next period starts the day after the old one ended, level may change.
    level, valid_to = P["cert"][stay], P["cert_to"][stay]
    renew = stay[(level >= 0) & ~np.isnat(valid_to) & (valid_to < me)]
    start = P["cert_to"][renew] + np.timedelta64(1, "D")
    period = rng.choice(CERT_PERIOD_MONTHS, len(renew), p=CERT_PERIOD_P)
    u = rng.random(len(renew))
    change = np.where(u < CERT_WORSENS, 1, np.where(u < CERT_WORSENS + CERT_IMPROVES, -1, 0))
    P["cert"][renew] = np.clip(P["cert"][renew] + change, 0, 6)
    P["cert_from"][renew] = start
    P["cert_to"][renew] = month_ends(months_of(start) + period - 1)
    # New certifications follow the slope of the prevalence curve.
    candidates = stay[(level < 0) & (age_me >= 65)]
    age = age_me[(level < 0) & (age_me >= 65)]
    prev_now = np.interp(age, CERT_AGES, CERT_PREVALENCE)
    prev_next = np.interp(age + 1, CERT_AGES, CERT_PREVALENCE)
    hazard = ((prev_next - prev_now) / (1 - prev_now) + 0.02 * prev_now) / 12
    hazard = np.where(P["isolated"][candidates], hazard * CERT_HAZARD_ISOLATED, hazard)
    new = candidates[rng.random(len(candidates)) < hazard]
    P["cert"][new] = rng.choice(len(CERT_NEW_LEVEL_P), len(new), p=CERT_NEW_LEVEL_P)
    P["cert_from"][new] = random_days(rng, ms, me, len(new))
    P["cert_to"][new] = month_ends(np.full(len(new), mi + 12))
    # 訪問収集 enrolment: at certification, or rarely otherwise, for 75+ living alone.
    size = pop.household_sizes()
    new_alone = (size[P["hh"][new]] == 1) & (age_on(P["by"][new], P["bmd"][new], me) >= 75)
    P["garbage"][new[new_alone & (rng.random(len(new)) < GARBAGE_ENROL_NEW_CERT)]] = True
    alone_old = stay[(size[P["hh"][stay]] == 1) & (age_me >= 75) & ~P["garbage"][stay]]
    P["garbage"][alone_old[rng.random(len(alone_old)) < GARBAGE_ENROL_MONTHLY]] = True
