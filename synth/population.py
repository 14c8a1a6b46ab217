"""The ward's people and households: the state arrays, and how people join them.

A `Population` holds one growable table per person and one per household; households are added
whole (the initial ward, move-ins) and people one by one (births). Everything a person brings
along is drawn here: IDs, names, address, phones, premium brackets, a prior objection and the
care certification of the initial ward.
"""
from __future__ import annotations

import numpy as np

from . import names
from .addresses import Places
from .calendar import NAT, age_on, birth_parts, month_ends, month_start, months_of
from .draws import choices, random_digits
from .households import REL_HEAD, household_members
from .rates import CARE_BRACKET_P, CERT_AGES, CERT_LEVEL_P, CERT_OPEN_END, CERT_PERIOD_MONTHS, \
    CERT_PERIOD_P, CERT_PREVALENCE, GIVEN_NAME_COHORT_BOUNDS, HOUSEHOLD_ID_BASE, ID_GAP_MAX, INITIAL_KINDS, \
    LANDLINE_BY_HEAD_AGE, MOBILE_P, MOBILE_PREFIXES, NHI_BY_HEAD_AGE, NHI_INCOME_P, OBJECTED_P, \
    PHONE_ON_FILE, RESIDENCE_YEARS_MEAN, RESIDENT_ID_BASE, SPECIAL_COLLECTION_PREF, step_values

DISTRICT_NAMES = np.asarray([d[0] for d in names.DISTRICTS], dtype=object)  # by district index


class Columns:
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


class Population:
    """People (`people`) and households (`households`), and the one RNG every draw comes from."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.people = Columns()
        self.households = Columns()
        self.next_rid = RESIDENT_ID_BASE + int(rng.integers(0, 1_000_000))
        self.next_hid = HOUSEHOLD_ID_BASE + int(rng.integers(0, 1_000_000))
        self.places = Places()

    def populate(self, residents: int, ref: np.datetime64) -> None:
        """The initial ward: exactly `residents` people in households drawn from INITIAL_KINDS."""
        added = self.add_households(INITIAL_KINDS, int(residents / 1.85) + 10, ref, None, residents)
        while added < residents:  # top up with single households
            added += self.add_households(INITIAL_KINDS[:2], residents - added, ref, None,
                                         residents - added)

    def household_sizes(self) -> np.ndarray:
        P = self.people
        return np.bincount(P["hh"][P["present"]], minlength=len(self.households))

    def elderly_only_households(self, on: np.datetime64) -> np.ndarray:
        P = self.people
        young = P["present"] & (age_on(P["by"], P["bmd"], on) < 65)
        return np.bincount(P["hh"][young], minlength=len(self.households)) == 0

    # ------------------------------------------------------------------ creating people
    def add_households(self, kinds: tuple, n: int, ref: np.datetime64,
                       arrival_month: int | None, max_people: int) -> int:
        """Draw n households (kept while their people fit in max_people); return people added."""
        rng = self.rng
        hh, age, sex, rel, own_name = household_members(rng, kinds, n)
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
            arrive = month_start(arrival_month) + rng.integers(0, 28, n_hh).astype("timedelta64[D]")
            birth = arrive[hh] - np.floor((age + rng.random(len(age))) * 365.2425).astype("timedelta64[D]")
        head_age = np.zeros(n_hh, np.int64)
        head_age[hh[rel == REL_HEAD]] = age[rel == REL_HEAD]
        hh_cols = self._household_attributes(n_hh, head_age, hh)
        if arrival_month is None:
            years = rng.exponential(step_values(head_age, RESIDENCE_YEARS_MEAN))
            hh_moved = ref - np.minimum(years * 365.25, 70 * 365).astype("timedelta64[D]")
        else:
            hh_moved = arrive
        hh_cols["moved_in"] = hh_moved
        offset = len(self.households)
        self.households.extend(hh_cols)
        self.add_people(hh + offset, birth, sex, rel, own_name, np.maximum(hh_moved[hh], birth), ref)
        return len(age)

    def _household_attributes(self, n_hh: int, head_age: np.ndarray,
                              hh: np.ndarray) -> dict[str, np.ndarray]:
        rng = self.rng
        size = np.bincount(hh, minlength=n_hh)
        profile = np.where(head_age >= 65, "elderly",
                           np.where((head_age < 40) & (size <= 2), "young", "family"))
        ids = self._new_ids("household", n_hh)
        district, town, address = self.places.draw(rng, profile)
        nhi = rng.random(n_hh) < step_values(head_age, NHI_BY_HEAD_AGE)
        landline = rng.random(n_hh) < step_values(head_age, LANDLINE_BY_HEAD_AGE)
        exchange = choices(rng, ("3", "5", "6"), (.5, .3, .2), n_hh).astype(object)
        landline_s = np.where(landline, "03-" + exchange + random_digits(rng, 3, n_hh) + "-"
                              + random_digits(rng, 4, n_hh), "")
        return {
            "hid": ids, "hid_s": _id_strings(ids), "district": district, "town": town,
            "address": address, "nhi": nhi,
            "nhi_income": rng.choice(len(NHI_INCOME_P), n_hh, p=NHI_INCOME_P).astype(np.int8),
            "surname": rng.choice(len(_SURNAME_P), n_hh, p=_SURNAME_P).astype(np.int16),
            "landline": landline_s.astype(object),
        }

    def add_people(self, hh: np.ndarray, birth: np.ndarray, sex: np.ndarray, rel: np.ndarray,
                   own_name: np.ndarray, moved_in: np.ndarray, ref: np.datetime64) -> None:
        rng, n = self.rng, len(hh)
        H = self.households
        by, bmd = birth_parts(birth)
        age = (age_on(by, bmd, ref)).clip(0)
        surname = np.where(own_name, rng.choice(len(_SURNAME_P), n, p=_SURNAME_P), H["surname"][hh])
        name, kana = _person_names(rng, surname, sex, by)
        ids = self._new_ids("resident", n)
        has_phone = rng.random(n) < np.select([age < 18, age < 65], [PHONE_ON_FILE["child"],
                                               PHONE_ON_FILE["adult"]], PHONE_ON_FILE["elderly"])
        landline = H["landline"][hh]
        use_landline = (landline != "") & ((age >= 60) | (rng.random(n) < 0.3))
        mobile = (choices(rng, MOBILE_PREFIXES, MOBILE_P, n).astype(object) + "-"
                  + random_digits(rng, 4, n) + "-" + random_digits(rng, 4, n))
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
        ref_month = months_of(np.array([ref]))[0]
        from_month = ref_month - rng.integers(0, period)  # the current period began in the past
        valid_from = (from_month - 1970 * 12).astype("datetime64[M]").astype("datetime64[D]")
        valid_to = month_ends(from_month + period - 1)
        open_end = rng.random(n) < CERT_OPEN_END
        return (np.where(has, level, -1).astype(np.int8), np.where(has, valid_from, NAT),
                np.where(has & ~open_end, valid_to, NAT))

    def _new_ids(self, kind: str, n: int) -> np.ndarray:
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
