"""Telemetry of the libraries we use, switched off before any of them is imported.

The batch handles personal information held by a public body; MLflow, GX and friends must not
phone home. Importing this module is enough (every package that imports one of them does).
"""
import os as _os

for _name, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
}.items():
    _os.environ.setdefault(_name, _value)
