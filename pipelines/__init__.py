"""mimamori pipelines: ingest, pseudonymise, prioritise, release, and the monthly orchestration.

Telemetry of the libraries we use is switched off here, before any of them is imported,
because the batch handles personal information held by a public body.
"""
import os as _os

for _name, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
}.items():
    _os.environ.setdefault(_name, _value)

__version__ = "0.1.0"
