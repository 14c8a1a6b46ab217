"""The Spark engine (`mimamori run --engine spark`, the optional extra `[spark]`).

Wiring only: Spark decides where the stage functions run, never what they compute. The
features stage is `features_from_lake` on one pid range per group of
`groupBy(bucket).applyInPandas`, scores are `month_scores` per `mapInPandas` batch, reasons are
`explained_list` per `mapInPandas` batch, and the list stays a global step on the driver
(`prioritise_month`, capacity per district). Only pipelines.monthly (the engine switch) imports
this package, and only when Spark is asked for: the local engine never needs pyspark or Java.
"""
from __future__ import annotations

from pipelines.spark.engine import SparkEngine, bucket_column, feature_schema
from pipelines.spark.pseudonyms import spark_pseudonyms
from pipelines.spark.session import DEFAULT_MASTER, spark_session

__all__ = ["DEFAULT_MASTER", "SparkEngine", "bucket_column", "feature_schema", "spark_pseudonyms", "spark_session"]
