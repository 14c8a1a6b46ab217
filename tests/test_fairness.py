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
    assert rows[("sex", "male")]["reference"] == "all" and rows[("cohort", "all")]["tpr"] == 1.0


def test_a_group_whose_people_in_need_are_missed_is_flagged():
    frame = _frame()
    selected = ((frame["label"] == 1) & (frame["sex"] == "female")).to_numpy().copy()
    selected |= ((frame["label"] == 1) & (frame["sex"] == "male")).to_numpy() & (np.arange(len(frame)) % 4 == 0)
    male = next(r for r in audit(frame, selected) if r["group"] == "male")
    # the reference is the whole cohort: 60 of its 70 positives were found
    assert male["tpr"] == 0.5 and male["tpr_ratio"] == 0.5 / (60 / 70) and male["flag"] and male["flagged"] == ["tpr"]


def test_small_groups_are_suppressed():
    frame = _frame(n_a=100, n_b=6)
    male = next(r for r in audit(frame, np.zeros(len(frame), bool)) if r["group"] == "male")
    assert male["suppressed"] and male["tpr"] is None and male["labelled"] is None and not male["flag"]
    assert male["people"] == 6 and male["selected"] == 0      # selection is not label-based: still counted


def under_selected_holdout() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A holdout like the demo ward's: the largest age band (65〜74) has almost nobody labelled,
    the 90+ band has 20 labelled positives. The baseline's top 60 holds all of them; the
    challenger's top 60 holds nobody aged 90+."""
    young, old, middle = 300, 60, 100
    frame = pd.DataFrame({
        "sex": "female", "district": "本町", "living_alone": 1.0,
        "age": np.r_[np.full(young, 70.0), np.full(old, 92.0), np.full(middle, 80.0)],
        "label": np.r_[np.r_[np.ones(5), np.full(young - 5, np.nan)],
                       np.r_[np.ones(20), np.zeros(20), np.full(old - 40, np.nan)],
                       np.r_[np.ones(40), np.zeros(40), np.full(middle - 80, np.nan)]]})
    is_old = (frame["age"] >= 90).to_numpy()
    is_middle = (frame["age"] == 80).to_numpy()
    index = np.arange(len(frame))
    baseline = (is_old & (index < young + 20)) | (is_middle & (index < young + old + 40))
    challenger = is_middle & (index < young + old + 60)
    return frame, baseline, challenger


def test_the_reference_is_the_whole_cohort_so_a_suppressed_largest_group_hides_no_ratio():
    frame, _, challenger = under_selected_holdout()
    rows = {(r["attribute"], r["group"]): r for r in audit(frame, challenger)}
    assert rows[("age_band", "65〜74歳")]["suppressed"]          # the largest group: 5 labelled
    old = rows[("age_band", "90歳以上")]
    assert old["reference"] == "all" and old["tpr"] == 0.0 and old["tpr_ratio"] == 0.0
    assert old["flag"] and old["flagged"] == ["tpr"]
    assert old["people"] == 60 and old["selected"] == 0 and old["selection_rate"] == 0.0
    middle = rows[("age_band", "75〜84歳")]
    assert middle["selection_rate"] == 0.6 and middle["selection_ratio"] == 0.6 / (60 / 460)
    assert not middle["flag"]                                   # found more often than the whole: no harm


def test_selection_rates_are_computed_without_labels_for_this_months_list():
    frame, baseline, _ = under_selected_holdout()
    rows = {(r["attribute"], r["group"]): r for r in audit(frame.drop(columns="label"), baseline)}
    assert rows[("cohort", "all")]["selected"] == 60 and rows[("cohort", "all")]["people"] == 460
    assert rows[("age_band", "90歳以上")]["selection_rate"] == 20 / 60
    assert rows[("age_band", "65〜74歳")]["selected"] == 0 and rows[("age_band", "65〜74歳")]["tpr"] is None
    assert not any(r["flag"] for r in rows.values())

