"""The risk model: gradient boosting on numeric features, so that TreeSHAP stays exact."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits


@contextmanager
def one_thread() -> Iterator[None]:
    """Fit and predict on one OpenMP thread.

    Our training sets are thousands of rows and scoring a ward is one pass: threads only add
    barrier waits, and on a busy 2-core machine OpenMP's spinning made a 0.5 s fit take 30 s.
    """
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def make_model(seed: int, max_iter: int = 200, learning_rate: float = 0.06, max_leaf_nodes: int = 15,
               min_samples_leaf: int = 20) -> HistGradientBoostingClassifier:
    # No early stopping: its random validation split would make the model depend on more
    # than the seed and the data order. Missing values are routed natively (the candidates put the declared imputer in front).
    return HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
        min_samples_leaf=min_samples_leaf, l2_regularization=1.0, early_stopping=False,
        categorical_features=None, random_state=seed)
