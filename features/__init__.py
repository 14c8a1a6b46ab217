"""Point-in-time features, one row per resident per as-of month (build.py), and their catalogue (catalog.py)."""
