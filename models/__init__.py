"""Labels, the risk model, its baselines, scoring and explanations."""
