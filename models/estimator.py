"""The risk model: gradient boosting on numeric features, so that TreeSHAP stays exact."""
from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingClassifier


def make_model(seed: int, max_iter: int = 200, learning_rate: float = 0.06, max_leaf_nodes: int = 15,
               min_samples_leaf: int = 20) -> HistGradientBoostingClassifier:
    # No early stopping: its random validation split would make the model depend on more
    # than the seed and the data order. Missing values are routed natively (no imputer).
    return HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
        min_samples_leaf=min_samples_leaf, l2_regularization=1.0, early_stopping=False,
        categorical_features=None, random_state=seed)
