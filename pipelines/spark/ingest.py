"""Ingest on Spark: one task per delivered file, each running the local engine's own
`pipelines.ingest.read_file` (contract reading, ID normalisation, HMAC pseudonyms, quarantine),
the results back on the driver in the month's file order.

Why not Spark's `hmac()` column function here (pipelines/spark/pseudonyms.py, equal byte for
byte): the IDs would have to leave the Python task as a Spark column of raw 宛名番号 and the lake
table be assembled a second time around them, and `read_file` needs the household pseudonyms
within the same step (household_size is counted per `hid`). The task computes them with
pipelines.pseudonymise, the function the local engine calls, so the lake is the same by
construction; test_spark.py checks the bytes.

What travels: the key and the file list in a broadcast (never a query-plan literal); each file's
result pickled (pandas dtypes exact). The executors read identified extracts and hand back
the quarantined rows as delivered and the leak guard's needles, as the local ingest holds them
in memory: on a cluster, run ingest only on executors inside the custodian's boundary, with
`spark.local.dir` on its storage.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Iterator

import pandas as pd
from pyspark.sql import SparkSession

from contract.sources import SOURCES
from pipelines.ingest import FileRead, read_file

RESULT_SCHEMA = "position long, result binary"


def read_files_on(session: SparkSession, files: dict[str, Path], key: bytes, month: str,
                  needles: frozenset[str]) -> dict[str, FileRead]:
    """`read_file` on every file of `files`, one Spark task each; raises what the first refused
    file (in `files`' order) raised, as the local engine does."""
    names = list(files)
    if not names:
        return {}
    shared = session.sparkContext.broadcast(([(n, str(files[n])) for n in names], key, month, needles))

    def read(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        listed, secret, as_of, wanted = shared.value
        for batch in batches:
            for position in batch["id"].tolist():
                name, path = listed[position]
                try:
                    result: object = read_file(Path(path), SOURCES[name], secret, as_of, name in wanted)
                except Exception as exc:   # handed back whole: its message is the user's answer
                    result = exc
                yield pd.DataFrame({"position": [position], "result": [pickle.dumps(result)]})

    positions = session.range(0, len(names), numPartitions=len(names))
    rows = positions.mapInPandas(read, RESULT_SCHEMA).toArrow().to_pandas()
    shared.unpersist()
    results = {int(p): pickle.loads(blob) for p, blob in zip(rows["position"], rows["result"])}
    for position in range(len(names)):
        if isinstance(results[position], BaseException):
            raise results[position]
    return {name: results[i] for i, name in enumerate(names)}
