"""The Spark engine: the local engine's stage functions, run where Spark puts them.

| stage    | Spark                                  | the same function as the local engine      |
|----------|----------------------------------------|--------------------------------------------|
| ingest   | a mapInPandas task per delivered file  | ingest.read_file (contract, pseudonyms)    |
| features | groupBy(bucket).applyInPandas          | catalog.features.features_from_lake(range) |
| score    | mapInPandas over the feature rows      | models.train.month_scores                  |
| list     | on the driver (a global step)          | monthly.prioritise_month                   |
| explain  | mapInPandas over the listed rows       | models.explain.explained_list              |

Every result comes back to the driver in the local engine's order and dtypes, so the catalogue
writes the same bytes. The lake must be on a file system every executor sees (one machine, or a
shared mount on a cluster): each features task reads its own pid range's rows from it, with the
same fingerprint checks as the local engine.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from contract.partitions import PidRange, bucket_of
from features.catalog import MODEL_FEATURES
from models.explain import explained_list
from models.train import TrainResult, month_scores
from pipelines.catalog import lake
from pipelines.catalog.features import features_from_lake
from pipelines.ingest import FileRead
from pipelines.spark.ingest import read_files_on
from pipelines.spark.session import spark_session

# The feature table's columns before the catalogue's features: who, when, and the two groups
# the list is audited by. Every catalogue feature and `_imp` flag is a float64.
IDENTITY = ["pid", "as_of_month", "district", "sex"]
SCORE_SCHEMA = StructType([StructField("pid", StringType()), StructField("district", StringType()),
                           StructField("score", DoubleType())])
# One row per batch of listed people: where the batch starts in the list, and explained_list's
# three results pickled (exact pandas dtypes; the driver and executors share one environment).
EXPLAIN_SCHEMA = "first long, result binary"


def feature_schema() -> StructType:
    """The feature table's Spark schema, from the feature catalogue (features/catalog.py)."""
    return StructType([StructField(name, StringType()) for name in IDENTITY]
                      + [StructField(name, DoubleType()) for name in MODEL_FEATURES])


def bucket_column(pids: Column, count: int) -> Column:
    """The pid range of `count` holding each pid: contract.partitions.bucket_of itself, so a
    pid on a boundary lands where PidRange(i, count).bounds() puts it."""
    @F.pandas_udf("int")
    def bucket(values: pd.Series) -> pd.Series:
        return pd.Series([bucket_of(pid, count) for pid in values], dtype="int32")
    return bucket(pids)


def _collected(frame: DataFrame) -> pd.DataFrame:
    """A Spark result on the driver as pandas, through Arrow (strings as pandas' str dtype)."""
    return frame.toArrow().to_pandas()


@dataclass(frozen=True)
class SparkEngine:
    """The stages of monthly.Engine on a Spark session (see the module's table)."""

    session: SparkSession

    @classmethod
    def for_master(cls, master: str) -> "SparkEngine":
        return cls(spark_session(master))

    @property
    def slots(self) -> int:
        """Tasks the cluster runs at once (local[2]: 2)."""
        return max(1, self.session.sparkContext.defaultParallelism)

    def read_files(self, files: dict[str, Path], key: bytes, month: str, needles: frozenset[str]
                   ) -> dict[str, FileRead]:
        """ingest.read_file on each delivered file of a month, one Spark task per file."""
        return read_files_on(self.session, files, key, month, needles)

    def buckets(self, pids: pd.Series, count: int) -> DataFrame:
        """The pids as a Spark frame with their `bucket` of `count` pid ranges."""
        people = self.session.createDataFrame(pd.DataFrame({"pid": pids.astype("str")}),
                                              StructType([StructField("pid", StringType())]))
        return people.withColumn("bucket", bucket_column(F.col("pid"), count))

    def partitions(self, lake_dir: Path, as_of_month: str, count: int) -> tuple[pd.DataFrame, int]:
        """The month's feature table: one group per pid range, each running the features stage
        on its own range's rows of the lake. At least two ranges per task slot, so every core
        works (any count gives the same table); more when the working memory asks for more."""
        count = max(count, 2 * self.slots)
        residents = lake.read_snapshot(lake_dir, "residents", as_of_month, columns=["pid"])
        if residents is None:
            raise FileNotFoundError(f"the lake has no residents snapshot for {as_of_month}")

        def stage(key: tuple, group: pd.DataFrame) -> pd.DataFrame:
            table = features_from_lake(lake_dir, as_of_month, PidRange(int(key[0]), count))
            # the group's people and the range's people must be the same: bucket_of inverts bounds()
            if len(table) != len(group) or set(table["pid"]) != set(group["pid"]):
                raise AssertionError(f"bucket {key[0]} of {count} holds other people than PidRange({key[0]}, {count})")
            return table

        grouped = self.buckets(residents["pid"], count).groupBy("bucket").applyInPandas(stage, feature_schema())
        frame = _collected(grouped)
        # ranges are contiguous in pid order and pids are unique: sorting restores the local order
        return frame.sort_values("pid", kind="stable").reset_index(drop=True), count

    def scores(self, trained: TrainResult, features: pd.DataFrame, baseline_settings: dict) -> pd.DataFrame:
        """month_scores on every batch of feature rows (row-wise: a row's score is its own)."""
        dtypes = features.dtypes.to_dict()
        shared = self.session.sparkContext.broadcast((trained, baseline_settings, dtypes))

        def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            model, settings, types = shared.value
            for batch in batches:
                yield month_scores(model, batch.astype(types), settings)

        rows = self.session.createDataFrame(features, feature_schema())
        out = _collected(rows.mapInPandas(score, SCORE_SCHEMA))
        shared.unpersist()
        # back in the features' order (batches may come back in any order; pids are unique)
        return out.set_index("pid").loc[features["pid"]].reset_index()[["pid", "district", "score"]]

    def explained(self, listed: pd.DataFrame, features: pd.DataFrame, reference: pd.DataFrame,
                  trained: TrainResult, key_id: str) -> tuple[pd.DataFrame, pd.DataFrame | None, float | None]:
        """explained_list on batches of the listed people, against the whole eligible
        reference (each person's contributions and reasons are their own), in list order."""
        if listed.empty:   # nothing to spread; the function still gives the empty list its columns
            return explained_list(listed, features, reference, trained, key_id)
        chosen = features[features["pid"].isin(listed["pid"])]
        shared = self.session.sparkContext.broadcast((listed, chosen, reference, trained, key_id))

        def explain(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            rows, people, against, model, key = shared.value
            for batch in batches:
                positions = batch["id"].to_numpy()
                if len(positions):
                    result = explained_list(rows.iloc[positions], people, against, model, key)
                    yield pd.DataFrame({"first": [int(positions.min())], "result": [pickle.dumps(result)]})

        positions = self.session.range(0, len(listed), numPartitions=min(len(listed), self.slots))
        parts = _collected(positions.mapInPandas(explain, EXPLAIN_SCHEMA)).sort_values("first")
        shared.unpersist()
        results = [pickle.loads(blob) for blob in parts["result"]]
        out = pd.concat([r[0] for r in results], ignore_index=True)
        tables = [r[1] for r in results if r[1] is not None]
        table = pd.concat(tables, ignore_index=True) if tables else None
        return out, table, results[0][2]
