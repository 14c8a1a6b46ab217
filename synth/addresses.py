"""The ward's map: districts, towns (町), address lots and the apartment buildings on some of them."""
from __future__ import annotations

import numpy as np

from . import names
from .rates import BAN_MAX, BUILDING_LOT_SHARE, BUILDING_WANTED, GO_MAX


class Places:
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
