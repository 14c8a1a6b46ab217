"""Household composition: who lives with whom, and who heads a household once its head has left.

Each builder returns member groups (household index, age, sex, relationship, own surname?) for
the households `local` of one kind; `household_members` draws the kinds and puts the groups
together, one row per person, household by household.
"""
from __future__ import annotations

import numpy as np

from .rates import CHILDREN_COUNT, COUPLE_HEAD_MALE, MOTHER_AGE_AT_BIRTH, SEX_UNKNOWN_SHARE, \
    SINGLE_MALE_SHARE, SINGLE_MALE_SHARE_AGES

# Codes for 続柄 (index into names.RELATIONSHIPS).
REL_HEAD, REL_WIFE, REL_HUSBAND, REL_CHILD, REL_MOTHER, REL_FATHER, REL_GRANDCHILD, REL_OTHER = range(8)
REL_HUSBANDS_MOTHER, REL_HUSBANDS_FATHER, REL_WIFES_MOTHER, REL_WIFES_FATHER = range(8, 12)


def household_members(rng: np.random.Generator, kinds: tuple, n: int):
    """Draw n households from `kinds` (builder, head-age bins, share); return the members'
    (household index, age, sex, relationship, own surname?) ordered by household."""
    kind = rng.choice(len(kinds), size=n, p=np.array([k[2] for k in kinds]) / sum(k[2] for k in kinds))
    groups = []
    for k, (builder, bins, _) in enumerate(kinds):
        local = np.flatnonzero(kind == k)
        if len(local):
            head_age = _ages_from_bins(rng, bins, len(local))
            groups.extend(_MEMBER_BUILDERS[builder](rng, local, head_age))
    hh = np.concatenate([g[0] for g in groups])
    slot = np.concatenate([np.full(len(g[0]), i) for i, g in enumerate(groups)])
    order = np.lexsort((slot, hh))
    return tuple(np.concatenate([g[j] for g in groups])[order] for j in range(5))


def _ages_from_bins(rng: np.random.Generator, bins: tuple, size: int) -> np.ndarray:
    """Ages from piecewise-uniform bins (lo, hi inclusive, weight)."""
    k = rng.choice(len(bins), size=size, p=np.array([b[2] for b in bins]) / sum(b[2] for b in bins))
    lo = np.array([b[0] for b in bins])[k]
    hi = np.array([b[1] for b in bins])[k]
    return rng.integers(lo, hi + 1)


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
    """REHEAD[new head's old relationship, member's old relationship] -> member's new one."""
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




REHEAD = _rehead_table()
