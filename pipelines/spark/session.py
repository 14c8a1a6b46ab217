"""The process's one SparkSession, built around the traps met on this machine.

- Python workers run the driver's own interpreter (`PYSPARK_PYTHON`): the venv with pandas 3,
  scikit-learn and SHAP, not whatever `python3` is first on PATH.
- They import this checkout's packages (PYTHONPATH), not another copy installed in the venv.
- A local master binds to 127.0.0.1 (`SPARK_LOCAL_IP`): the machine's hostname may resolve to
  an address nothing listens on. A cluster master keeps the machine's address, which the
  executors must reach.
- Arrow carries every pandas batch, with no silent fallback to row-by-row pickling (which
  changes dtypes); Parquet written by Spark uses TIMESTAMP_MICROS, the unit of the lake.
"""
from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[2]"
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")   # errors only, on stderr
PROJECT_ROOT = Path(__file__).resolve().parents[2]   # the folder holding pipelines/, features/, …


def _local_cores(master: str) -> int | None:
    """The cores a local master names (local, local[2], local[*]); None for a cluster."""
    found = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", master)
    if found is None:
        return None
    cores = found.group(1)
    return (os.cpu_count() or 1) if cores == "*" else int(cores or 1)


def spark_session(master: str = DEFAULT_MASTER, app_name: str = "mimamori", scratch: Path | None = None
                  ) -> SparkSession:
    """The running session, or a new one on `master` (local[N], spark://…, yarn).

    `scratch`: where Spark keeps its shuffle files, spilled blocks and warehouse (default:
    Spark's, under /tmp). The environment is set before the JVM starts, since the JVM passes it
    on to the Python workers it launches; a second call returns the first session whatever it
    asks for.
    """
    os.environ["PYSPARK_PYTHON"] = sys.executable
    paths = [str(PROJECT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    cores = _local_cores(master)
    if cores is not None:
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    # pyspark 4.3 warns about pandas 3 on import; the project uses only applyInPandas and
    # mapInPandas (pyspark.pandas does not import under pandas 3), which the parity test covers
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
               .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
               # naive timestamps mean the ward's own day; no conversion by the machine's zone
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable))
    # the driver JVM's options are read as it starts (pyspark starts it with them)
    java_options = [f"-Dlog4j.configurationFile={LOG_CONFIG.as_uri()}"]
    if scratch is not None:
        builder = (builder.config("spark.local.dir", str(scratch / "local"))
                   .config("spark.sql.warehouse.dir", str(scratch / "warehouse")))
        java_options.append(f"-Djava.io.tmpdir={scratch}")
    builder = builder.config("spark.driver.extraJavaOptions", " ".join(java_options))
    if cores is not None:
        # a groupBy's default of 200 shuffle partitions is 200 tiny tasks on a laptop
        builder = builder.config("spark.sql.shuffle.partitions", str(2 * cores)).config("spark.ui.enabled", "false")
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
