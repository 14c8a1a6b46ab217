"""Point-in-time features, one row per resident per as-of month, and their catalogue."""
from features.build import build_features
from features.catalog import CATALOG, MODEL_FEATURES, describe

__all__ = ["build_features", "CATALOG", "MODEL_FEATURES", "describe"]
