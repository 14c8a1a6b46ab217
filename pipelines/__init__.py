"""mimamori pipelines: the top of the program — command line, runner, catalogue, ingest and governance."""
from contract import telemetry  # noqa: F401  (library telemetry off before anything imports them)

__version__ = "0.1.0"
