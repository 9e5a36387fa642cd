"""Small hand-made event frames shared by the segment tests."""

from __future__ import annotations

from pyspark.sql import functions as F

EVENT_COLUMNS = (
    "person_id string, event_type string, category string, revenue double, event_date date"
)


def events_frame(spark, rows, product_id: str | None = None):
    """Events as the segment rules read them: the given columns, one product id, web source."""
    return (
        spark.createDataFrame(rows, EVENT_COLUMNS)
        .withColumn("product_id", F.lit(product_id).cast("string"))
        .withColumn("source", F.lit("web"))
    )
