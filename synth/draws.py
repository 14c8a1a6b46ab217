"""Random draws shared by the simulation: days in a month, weekdays, choices and digit strings."""
from __future__ import annotations

import numpy as np

from .calendar import month_ends, months_of, weekday


def random_days(rng: np.random.Generator, ms, me, n: int) -> np.ndarray:
    days = int((me - ms).astype(np.int64)) + 1
    return ms + rng.integers(0, days, n).astype("timedelta64[D]")


def random_weekdays(rng: np.random.Generator, ms, n: int) -> np.ndarray:
    """Office work (checkups, visits) happens on weekdays."""
    days = ms + np.arange(int((month_ends(months_of(np.array([ms]))[0]) - ms).astype(np.int64)) + 1)
    weekdays = days[weekday(days) < 5]
    return weekdays[rng.integers(0, len(weekdays), n)]


def choices(rng: np.random.Generator, options, p, size: int) -> np.ndarray:
    return np.asarray(options)[rng.choice(len(p), size=size, p=np.asarray(p) / np.sum(p))]


def random_digits(rng: np.random.Generator, width: int, n: int) -> np.ndarray:
    return np.char.zfill(rng.integers(0, 10**width, n).astype(str), width).astype(object)
