"""Which columns keep Delta file statistics (``jobs/lake.py: stats_property``), and how a table
gets and keeps that property: at creation, on a lake from before, through a schema change."""

from __future__ import annotations

import glob
import json

import pytest
from pyspark.sql import functions as F

from jobs.lake import STATS_PROPERTY, Lake, stats_property

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out


@pytest.fixture
def lake(spark, settings, tmp_path):
    storage = settings.storage.model_copy(update={"lake_root": str(tmp_path / "lake")})
    return Lake(spark, settings.model_copy(update={"storage": storage}))


def props(lake: Lake, table: str) -> dict:
    return lake.spark.sql(f"DESCRIBE DETAIL delta.`{lake.path(table)}`").first()["properties"]


def stats_keys(lake: Lake, table: str) -> list[set[str]]:
    """The columns with a minimum in each file the table's log adds, oldest first."""
    out = []
    for f in sorted(glob.glob(f"{lake.path(table)}/_delta_log/*.json")):
        for line in open(f):
            add = json.loads(line).get("add")
            if add:
                out.append(set(json.loads(add["stats"]).get("minValues", {})))
    return out


PERSONS = (
    "person_id string, email_sha256 string, node string, detail string, segment string, "
    "events long, revenue double, last_seen timestamp, opened date, consent boolean, "
    "affinity map<string,double>, run_date date"
)


def test_only_plain_columns_keep_statistics(spark):
    schema = spark.createDataFrame([], PERSONS).schema
    # gold.segment_membership is partitioned by run_date: Delta refuses a partition column
    assert stats_property("gold.segment_membership", schema) == {
        STATS_PROPERTY: "segment,events,revenue,last_seen,opened"
    }
    # an unpartitioned table keeps its date column; no string outside the plain list, no map,
    # no boolean (Delta refuses both)
    assert stats_property("gold.profiles", schema) == {
        STATS_PROPERTY: "segment,events,revenue,last_seen,opened,run_date"
    }
    # the event tables: the columns their readers filter on, those the frame has
    assert stats_property("silver.events", schema) == {STATS_PROPERTY: ""}
    events = spark.createDataFrame([], "event_ts timestamp, ingested_at timestamp, x long")
    assert stats_property("silver.events", events.schema) == {
        STATS_PROPERTY: "event_ts,ingested_at"
    }


def test_a_new_table_gets_them_and_a_schema_change_keeps_them_right(spark, lake):
    df = spark.createDataFrame(
        [("p1", "a" * 64, "email:x", None, "s", 3, 1.5, None, None, True, {"c": 1.0}, None)],
        PERSONS,
    )
    lake.overwrite(df, "gold.profiles")
    assert props(lake, "gold.profiles")[STATS_PROPERTY] == (
        "segment,events,revenue,last_seen,opened,run_date"
    )
    assert stats_keys(lake, "gold.profiles") == [{"segment", "events", "revenue"}]  # non-null
    # an overwrite that drops a statistics column (Delta alone refuses it: the property would
    # name a column the table no longer has) and adds one, in a new process (a new Lake)
    later = Lake(lake.spark, lake.settings)
    wider = df.drop("revenue").withColumn("purchases", F.lit(2))
    later.overwrite(wider, "gold.profiles")
    assert later.read("gold.profiles").columns == wider.columns
    assert props(later, "gold.profiles")[STATS_PROPERTY] == (
        "segment,events,last_seen,opened,run_date"
    )
    # the column the overwrite added keeps statistics from the next write on
    version = later.version("gold.profiles")
    again = Lake(lake.spark, lake.settings)
    again.overwrite(wider, "gold.profiles")
    again.overwrite(wider, "gold.profiles")  # set already: no property commit
    assert again.version("gold.profiles") == version + 3  # one ALTER, two overwrites
    assert stats_keys(again, "gold.profiles")[-1] == {"segment", "events", "purchases"}


def test_a_lake_from_before_gets_the_statistics_columns(spark, lake):
    rows = spark.createDataFrame(
        [("e1", "2026-11-02T10:00:00Z", "f1", "2026-11-02")],
        "event_id string, event_ts string, source_file string, dt string",
    ).withColumn("ingested_at", F.current_timestamp())
    old = rows.write.format("delta").partitionBy("dt")  # no properties: an older lake
    old.save(lake.path("bronze.events"))
    assert stats_keys(lake, "bronze.events") == [set(rows.columns) - {"dt"}]
    lake.ensure_properties("bronze.events")
    lake.ensure_properties("silver.events")  # no table yet: nothing to do
    assert not lake.exists("silver.events")
    Lake(lake.spark, lake.settings).ensure_properties("bronze.events")  # set: no new commit
    assert lake.version("bronze.events") == 1
    assert props(lake, "bronze.events") == {STATS_PROPERTY: "source_file,ingested_at"}
    lake.append(rows, "bronze.events")
    assert stats_keys(lake, "bronze.events")[-1] == {"source_file", "ingested_at"}
