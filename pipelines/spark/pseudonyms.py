"""Pseudonyms computed by Spark's own `hmac()` (Spark 4.3), equal byte for byte to
pipelines.pseudonymise.pseudonym: lowercase hex of HMAC-SHA-256(key, "<kind>:<id>"), its first
PSEUDONYM_HEX digits. IDs must already be normalised as ingest normalises them
(pipelines.parsing.parse_ids: NFKC, stripped, digits only); Spark has no NFKC of its own.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, functions as F

from pipelines.pseudonymise import PSEUDONYM_HEX


def spark_pseudonyms(frame: DataFrame, column: str, key: bytes, kind: str, into: str = "pid") -> DataFrame:
    """`frame` with `into` = the pseudonym of `column` (null IDs stay null).

    The key travels as data in a one-row frame joined on, never as a literal: a literal would
    be printed in every query plan, `explain()` output and event log, outside the custody zone.
    """
    keyed = frame.sparkSession.createDataFrame([(key,)], "_key binary")
    message = F.concat(F.lit(f"{kind}:"), F.col(column)).cast("binary")   # strings cast as UTF-8
    mac = F.hmac(F.col("_key"), message, F.lit("SHA-256"))
    return (frame.crossJoin(F.broadcast(keyed))
            .withColumn(into, F.lower(F.substring(F.hex(mac), 1, PSEUDONYM_HEX)))
            .drop("_key"))
