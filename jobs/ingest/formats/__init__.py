"""Clickstream formats: each maps raw lines onto the bronze row (``common.bronze``).

``parse(lines, source, ingest)`` is the one entry point: (value, source_file) lines of a
configured source -> bronze rows, whatever wrote them.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.config import IngestSettings
from jobs.ingest.formats import ga4, native, snowplow, spec
from jobs.ingest.sources import Source, arrival_day_column

FORMATS = ("native", "segment", "rudderstack", "snowplow", "ga4")


def parse(lines: DataFrame, source: Source, ingest: IngestSettings) -> DataFrame:
    day = arrival_day_column(F.col("source_file"), source.arrival)
    args = (lines, day, ingest.default_country, ingest.max_line_chars)
    if source.format == "native":
        frame = native.to_bronze(*args)
    elif source.format in ("segment", "rudderstack"):
        frame = spec.to_bronze(*args, source.settings)
    elif source.format == "snowplow":
        frame = snowplow.to_bronze(*args, source.settings)
    elif source.format == "ga4":
        frame = ga4.to_bronze(*args, source.settings)
    else:  # the configuration allows no other
        raise ValueError(f"source {source.name}: unknown format {source.format!r}")
    if source.format == "native":  # the line's own `source` field names its channel
        frame = frame.withColumn("source", F.coalesce("source", F.lit(source.name)))
    return frame.withColumn("source_name", F.lit(source.name))
