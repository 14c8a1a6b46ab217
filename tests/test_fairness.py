import numpy as np
import pandas as pd

from models.fairness import audit


def _frame(n_a=100, n_b=40):
    rng = np.random.default_rng(0)
    n = n_a + n_b
    return pd.DataFrame({
        "sex": ["female"] * n_a + ["male"] * n_b,
        "age": np.full(n, 80.0), "district": ["本町"] * n, "living_alone": np.ones(n),
        "label": np.r_[np.tile([1.0, 0.0], n_a // 2), np.tile([1.0, 0.0], n_b // 2)],
    })


def test_equal_treatment_raises_no_flag():
    frame = _frame()
    selected = (frame["label"] == 1).to_numpy()          # every positive found, in both groups
    rows = {(r["attribute"], r["group"]): r for r in audit(frame, selected)}
    assert rows[("sex", "male")]["tpr_ratio"] == 1.0 and not rows[("sex", "male")]["flag"]
    assert rows[("sex", "male")]["reference"] == "female"


def test_a_group_whose_people_in_need_are_missed_is_flagged():
    frame = _frame()
    selected = ((frame["label"] == 1) & (frame["sex"] == "female")).to_numpy().copy()
    selected |= ((frame["label"] == 1) & (frame["sex"] == "male")).to_numpy() & (np.arange(len(frame)) % 4 == 0)
    male = next(r for r in audit(frame, selected) if r["group"] == "male")
    assert male["tpr"] == 0.5 and male["tpr_ratio"] == 0.5 and male["flag"]


def test_small_groups_are_suppressed():
    frame = _frame(n_a=100, n_b=6)
    male = next(r for r in audit(frame, np.zeros(len(frame), bool)) if r["group"] == "male")
    assert male["suppressed"] and male["tpr"] is None and male["labelled"] is None and not male["flag"]

