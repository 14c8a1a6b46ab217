"""The ward from one month to the next: the latent isolation state, deaths, move-outs, new heads
of household, births and move-ins.

Isolation is a monthly Markov state (never written to the inbox): people enter it by a hazard
that rises with age, living alone, male sex, no care certification, short residence and
bereavement (rates.isolation_entry_probability) and leave it slowly, faster while a case is open.
"""
from __future__ import annotations

import numpy as np

from .calendar import age_on, months_of
from .draws import random_days
from .households import REHEAD, REL_CHILD, REL_HEAD, REL_HUSBAND, REL_WIFE
from .population import Population
from .rates import ARRIVAL_KINDS, BEREAVED_MONTHS, BIRTH_MONTHLY, CERT_MORTALITY, CHILD_LEAVES_HOME, \
    ELDERLY_ALONE_LEAVES, EMERGENCY_P, GARBAGE_ENROL, ISO_EXIT, ISO_EXIT_SUPPORTED, ISOLATED_DEATH_NOT_ISOLATED, \
    ISOLATED_DEATH_P_75, ISOLATED_DEATH_YOUNG, MOVE_OUT_AGES, MOVE_OUT_MULT, MOVE_OUT_RATE, checkup_probability, \
    checkup_stationary_share, isolation_entry_probability, monthly_death_probability, step_values


# ------------------------------------------------------------------ latent isolation
def isolation_covariates(pop: Population, idx: np.ndarray, on: np.datetime64, mi: int) -> dict[str, np.ndarray]:
    P = pop.people
    size = pop.household_sizes()
    case_open = (P["case_from"][idx] <= on) & (P["case_to"][idx] >= on)
    return {
        "age": age_on(P["by"][idx], P["bmd"][idx], on),
        "alone": size[P["hh"][idx]] == 1,
        "male": P["sex"][idx] == 1,
        "certified": P["cert"][idx] >= 0,
        "short_residence": (on - P["moved_in"][idx]).astype(np.int64) < 730,
        "bereaved": P["bereaved_until"][idx] >= mi,
        "supported": case_open,
    }


def draw_latent_state(pop: Population, idx: np.ndarray, ref: np.datetime64, initial: bool) -> None:
    """Isolation, checkup habit and garbage enrolment drawn from their stationary shares."""
    rng, P = pop.rng, pop.people
    covariates = isolation_covariates(pop, idx, ref, months_of(np.array([ref]))[0])
    p_in = isolation_entry_probability(**covariates)
    stationary = p_in / (p_in + ISO_EXIT)
    iso = rng.random(len(idx)) < stationary
    P["isolated"][idx] = iso
    P["ck_last"][idx] = rng.random(len(idx)) < np.where(iso, checkup_stationary_share(True),
                                                        checkup_stationary_share(False))
    if initial:  # the months of the current fiscal year before the start already had checkups
        fy_month = (months_of(np.array([ref]))[0] % 12 - 3) % 12
        attended = rng.random(len(idx)) < checkup_probability(iso, P["ck_last"][idx])
        P["ck_this"][idx] = (P["ck_slot"][idx] <= fy_month) & attended & (covariates["age"] >= 40)
    age, alone = covariates["age"], covariates["alone"]
    elderly_only = pop.elderly_only_households(ref)[P["hh"][idx]]
    certified = P["cert"][idx] >= 0
    enrol_p = np.where(certified, GARBAGE_ENROL["certified"], GARBAGE_ENROL["uncertified"])
    enrol_p = enrol_p * np.where(alone, 1.0, np.where(elderly_only, 0.5, 0.0)) * (age >= 75)
    P["garbage"][idx] = rng.random(len(idx)) < (enrol_p if initial else enrol_p * 0.3)


def advance_isolation(pop: Population, alive0: np.ndarray, cov: dict[str, np.ndarray]) -> np.ndarray:
    """This month's isolation state of the people alive at its start (also returned)."""
    P = pop.people
    iso_prev = P["isolated"][alive0]
    p_in = isolation_entry_probability(**cov)
    p_out = np.where(cov["supported"], ISO_EXIT_SUPPORTED, ISO_EXIT)
    u = pop.rng.random(len(alive0))
    P["isolated"][alive0] = np.where(iso_prev, u >= p_out, u < p_in)
    return P["isolated"][alive0]


# ------------------------------------------------------------------ leaving the ward
def adverse_events(rng, alive0, age0, alone0, iso0, ms, me) -> dict[str, np.ndarray]:
    """Isolated deaths and emergencies during the month: person index, type and date."""
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
            "date": random_days(rng, ms, me, len(person))}


def deaths(pop: Population, alive0: np.ndarray, age0: np.ndarray, adverse: dict[str, np.ndarray]) -> np.ndarray:
    """Who died this month (a mask over everyone): the isolated deaths, then the life table."""
    P = pop.people
    died = np.zeros(len(P), bool)
    died[adverse["person"][adverse["type"] == "isolated_death"]] = True
    q = monthly_death_probability(age0, P["sex"][alive0]) * CERT_MORTALITY[P["cert"][alive0] + 1]
    died[alive0[(pop.rng.random(len(alive0)) < q) & ~died[alive0]]] = True
    return died


def movers(pop: Population, alive0: np.ndarray, age0: np.ndarray, died: np.ndarray) -> np.ndarray:
    """Who moved out this month: whole households leave (rate by head age); some grown children
    leave alone, and some old people living alone go to a care facility or to family."""
    rng, P = pop.rng, pop.people
    n_hh = len(pop.households)
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


# ------------------------------------------------------------------ households respond
def replace_leavers(pop: Population, mi: int, ms, me, died: np.ndarray, leaving: np.ndarray) -> None:
    """The households the dead and the movers leave behind: bereavement and new heads; then
    births, and move-ins that keep the ward's size steady on average."""
    rng, P = pop.rng, pop.people
    stay_mask = P["present"] & ~leaving
    lost = np.bincount(P["hh"][died], minlength=len(pop.households)) > 0
    stayers_lost = stay_mask & lost[P["hh"]]
    P["bereaved_until"][stayers_lost] = mi + BEREAVED_MONTHS
    P["present"][leaving] = False
    _rehead(pop, leaving)
    n_births = _add_births(pop, mi, ms, me)
    n_target = int(rng.poisson(max(int(leaving.sum()) - n_births, 0)))
    first_new = len(P)
    if n_target:
        pop.add_households(ARRIVAL_KINDS, n_target, me, mi, n_target)
    arrivals = np.arange(first_new, len(P))
    if len(arrivals):
        draw_latent_state(pop, arrivals, me, initial=False)


def _rehead(pop: Population, leaving: np.ndarray) -> None:
    """A household whose head left gets a new 世帯主: the spouse, else the oldest member."""
    P = pop.people
    lost_head = np.zeros(len(pop.households), bool)
    lost_head[P["hh"][leaving & (P["rel"] == REL_HEAD)]] = True
    members = np.flatnonzero(P["present"] & lost_head[P["hh"]])
    if not len(members):
        return
    spouse = np.isin(P["rel"][members], (REL_WIFE, REL_HUSBAND))
    order = np.lexsort((P["birth"][members], ~spouse, P["hh"][members]))
    members = members[order]
    first = np.r_[True, P["hh"][members][1:] != P["hh"][members][:-1]]
    new_head_rel = np.repeat(P["rel"][members][first], np.diff(np.r_[np.flatnonzero(first), len(members)]))
    relation = REHEAD[new_head_rel, P["rel"][members]]
    relation[first] = REL_HEAD
    P["rel"][members] = relation


def _add_births(pop: Population, mi: int, ms, me) -> int:
    """Babies born this month to mothers living with a spouse; returns how many."""
    rng, P = pop.rng, pop.people
    present = np.flatnonzero(P["present"])
    spouse_hh = np.bincount(P["hh"][present][np.isin(P["rel"][present], (REL_WIFE, REL_HUSBAND))],
                            minlength=len(pop.households)) > 0
    age = age_on(P["by"][present], P["bmd"][present], ms)
    mother = (P["sex"][present] == 2) & np.isin(P["rel"][present], (REL_HEAD, REL_WIFE)) \
        & spouse_hh[P["hh"][present]]
    p = np.where(mother, step_values(age, BIRTH_MONTHLY), 0.0)
    mothers = present[rng.random(len(present)) < p]
    n = len(mothers)
    if n:
        birth = random_days(rng, ms, me, n)
        sex = rng.choice(np.array([1, 2], np.int8), n)
        pop.add_people(P["hh"][mothers], birth, sex, np.full(n, REL_CHILD, np.int8),
                       np.zeros(n, bool), birth, me)
        new = np.arange(len(P) - n, len(P))
        draw_latent_state(pop, new, me, initial=False)
    return n
