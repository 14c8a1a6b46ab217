import pytest

from models.labels import window_closed
from models.train import split_months
from pipelines.catalog.registry import reviewed_trusted_types


def test_holdout_is_the_newest_closed_window_and_training_ends_before_it():
    train, holdout = split_months("2026-10", "2024-11", timespan_days=180, max_history=18)
    assert holdout == "2026-04"                       # 2026-04-30 + 180 days <= 2026-10-31
    assert not window_closed("2026-05", "2026-10", 180)
    # every training window closed by the holdout's own as-of date: nothing after it informs the model
    assert train[-1] == "2025-10" and all(window_closed(m, holdout, 180) for m in train)
    assert train[0] == "2024-11" and len(train) == 12


def test_cold_start_has_no_split():
    assert split_months("2025-03", "2024-11", 180, 18) == ([], None)


def test_only_reviewed_types_are_trusted_when_the_model_is_saved():
    ok = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
    assert reviewed_trusted_types(ok) == ok
    with pytest.raises(RuntimeError, match="nobody has reviewed"):
        reviewed_trusted_types(ok + ["builtins.eval"])
