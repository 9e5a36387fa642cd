"""Where every table lives and how it is read and written (Delta, idempotent per run date)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    NumericType,
    StringType,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from jobs.config import Settings

# table name -> partition columns. Locations are <lake_root>/<layer>/<name>.
TABLES: dict[str, list[str]] = {
    "bronze.events": ["dt"],
    "bronze.crm": ["dt"],
    "bronze.files": [],
    "silver.events": ["event_date"],
    "silver.crm": [],
    "silver.quarantine": ["dt"],
    "quality.results": ["run_date"],
    "identity.edges": [],
    "identity.event_edges": [],
    "identity.crm_edges": [],
    "identity.match_edges": [],
    "identity.match_model": [],
    "identity.person_map": [],
    "identity.person_map_history": ["run_date"],
    "identity.lineage": ["run_date"],
    "identity.blocked": ["run_date"],
    "identity.report": ["run_date"],
    "gold.profiles": [],
    "gold.person_identifiers": [],
    "gold.segment_event_sums": [],
    "gold.segment_membership": ["run_date"],
    "gold.segment_changes": ["run_date"],
    "gold.segment_history": [],
    "gold.segment_stats": ["run_date"],
    "gold.segment_overlap": ["run_date"],
    "gold.lookalike_scores": ["run_date"],
    "gold.lookalike_evaluation": ["run_date"],
    "gold.exports": ["run_date"],
    "reports.runs": [],
    "privacy.erasures": [],
    "privacy.pending_removals": [],
    "privacy.retention": [],
}

# Delta keeps min / max / null-count statistics of the first 32 columns of every file it writes,
# in the table's log, where a deleted row's values stay until log clean-up. No table keeps them
# on a column that may hold an identifier (BENCHMARKS, README "Erasure").
# The wide event tables keep them only on the columns readers filter on: bronze is read back by
# a batch's files, silver by the identity watermark (on the others they cost 10-15% of the write).
STATS_COLUMNS: dict[str, list[str]] = {
    "bronze.events": ["source_file", "ingested_at"],
    "silver.events": ["event_ts", "ingested_at"],
}
# Every other table: its number, date and time columns, and the string columns named here, whose
# values never identify a person. A string column not named here (a person id, a hashed email,
# a graph node, free text that may quote one) keeps none: a new column is private by default.
PLAIN_STRINGS = frozenset(
    {
        *("source", "source_file", "event_type", "category", "top_category", "currency"),
        *("country", "event_country", "crm_country", "opt_out", "updated_at"),
        *("segment", "segment_a", "segment_b", "destination", "lookalike", "seed_segment"),
        *("change", "entered", "exited", "exit_reason", "opened_on", "method"),
        *("id_type", "hub_reason", "person_created", "reason", "mode", "config_hash"),
        *("watermark", "checkpoint", "job", "run_date", "target", "cutoff"),
    }
)
STATS_PROPERTY = "delta.dataSkippingStatsColumns"
MAX_STATS_COLUMNS = 32  # Delta's default number of indexed columns


def stats_property(table: str, schema: StructType) -> dict[str, str]:
    """The table property naming the columns of ``schema`` that keep statistics (an empty list
    keeps only the row count). Delta refuses a partition column, a type it cannot skip on and
    a column the table does not have, so only columns of ``schema`` are named."""
    fields = [f for f in schema.fields if f.name not in TABLES[table]]
    if table in STATS_COLUMNS:
        present = {f.name for f in fields}
        chosen = [c for c in STATS_COLUMNS[table] if c in present]
    else:
        chosen = [
            f.name
            for f in fields
            if isinstance(f.dataType, (NumericType, DateType, TimestampType, TimestampNTZType))
            or (isinstance(f.dataType, StringType) and f.name in PLAIN_STRINGS)
        ][:MAX_STATS_COLUMNS]
    return {STATS_PROPERTY: ",".join(chosen)}


def _stats_value(table: str, schema: StructType) -> str:
    return stats_property(table, schema)[STATS_PROPERTY]


TABLE_WORKERS = 4
T = TypeVar("T")


def per_table(fn: Callable[[str], T], tables: Iterable[str]) -> list[T]:
    """``fn(table)`` for every table, a few tables at a time, results in the order given; the
    first error is raised once the others finish. For per-table Delta maintenance (delete,
    purge, vacuum, scan) on many small tables: each waits mostly on log commits, listings and
    job start-up, not on the cores, so four at once take about half the time of one by one."""
    with ThreadPoolExecutor(max_workers=TABLE_WORKERS, thread_name_prefix="table") as pool:
        return list(pool.map(fn, tables))


@dataclass
class Lake:
    spark: SparkSession
    settings: Settings
    # statistics property of each table as this process last read or set it
    _stats: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def root(self) -> str:
        return self.settings.resolve(self.settings.storage.lake_root).rstrip("/")

    def path(self, table: str) -> str:
        if table not in TABLES:
            raise KeyError(f"unknown lake table {table!r}; known: {', '.join(TABLES)}")
        layer, name = table.split(".")
        return f"{self.root}/{layer}/{name}"

    def checkpoint(self, name: str) -> str:
        return f"{self.root}/_checkpoints/{name}"

    def exists(self, table: str) -> bool:
        from delta.tables import DeltaTable

        return DeltaTable.isDeltaTable(self.spark, self.path(table))

    def read(self, table: str) -> DataFrame:
        if not self.exists(table):
            raise MissingTableError(f"table {table} does not exist yet at {self.path(table)}")
        return self.spark.read.format("delta").load(self.path(table))

    def overwrite(self, df: DataFrame, table: str) -> None:
        self._writer(df, table).mode("overwrite").option("overwriteSchema", "true").save(
            self.path(table)
        )

    def replace_partition(self, df: DataFrame, table: str, column: str, value: str) -> None:
        """Idempotent write of one run's slice: a rerun replaces it, never duplicates it."""
        writer = self._writer(df, table).mode("overwrite").option("mergeSchema", "true")
        if self.exists(table):
            writer = writer.option("replaceWhere", f"{column} = '{value}'")
        writer.save(self.path(table))

    def replace_keys(
        self, df: DataFrame, table: str, run_date: str, key: str, values: list[str]
    ) -> None:
        """Idempotent write of some keys of one run (e.g. a few segments of a date): replaces
        exactly the run's rows with those keys and leaves the run's other rows alone."""
        quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
        writer = self._writer(df, table).mode("overwrite")
        if self.exists(table):
            writer = writer.option(
                "replaceWhere", f"run_date = '{run_date}' AND {key} IN ({quoted})"
            )
        writer.save(self.path(table))

    def replace_where(self, df: DataFrame, table: str, predicate: str) -> None:
        """Replace the rows matching a Delta predicate with ``df``, in one commit."""
        writer = self._writer(df, table).mode("overwrite")
        if self.exists(table):
            writer = writer.option("replaceWhere", predicate)
        writer.save(self.path(table))

    def append(
        self,
        df: DataFrame,
        table: str,
        txn: tuple[str, int] | None = None,
        merge_schema: bool = False,
    ) -> None:
        """Append ``df``; ``merge_schema`` adds the columns the table does not have yet (a lake
        written before they existed)."""
        writer = self._writer(df, table).mode("append")
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        if txn:  # Delta skips a (txnAppId, txnVersion) it has already committed
            writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
        writer.save(self.path(table))

    def version(self, table: str) -> int:
        """The table's current Delta version (what a later run can time-travel back to)."""
        from delta.tables import DeltaTable

        return int(DeltaTable.forPath(self.spark, self.path(table)).history(1).first()["version"])

    def read_version(self, table: str, version: int) -> DataFrame:
        return self.spark.read.format("delta").option("versionAsOf", version).load(self.path(table))

    def deleted_rows(self, table: str) -> int:
        """Rows removed by the table's latest commit (a DELETE or a MERGE that deletes)."""
        from delta.tables import DeltaTable

        row = DeltaTable.forPath(self.spark, self.path(table)).history(1).first()
        metrics = row["operationMetrics"] or {}
        return int(metrics.get("numDeletedRows", metrics.get("numTargetRowsDeleted", 0)))

    def last_write_rows(self, table: str) -> int:
        """Rows written by the table's latest commit, from Delta's own operation metrics."""
        from delta.tables import DeltaTable

        row = DeltaTable.forPath(self.spark, self.path(table)).history(1).first()
        metrics = row["operationMetrics"] or {}
        for key in ("numOutputRows", "numTargetRowsInserted"):
            if key in metrics:
                return int(metrics[key])
        return 0

    def ensure_properties(self, table: str, schema: StructType | None = None) -> None:
        """Give an existing table the statistics columns ``stats_property`` chooses (a lake
        created before they were set, or a table whose columns changed), among the columns of
        ``schema`` too when a write of that schema follows: Delta refuses an overwrite that drops
        a statistics column. Files already written keep their statistics. Read once per table
        and process; a new table gets the property from its first write."""
        if schema is not None and self._stats.get(table) == _stats_value(table, schema):
            return  # set already, and every column it names is in the table and the frame
        if not self.exists(table):
            return
        from delta.tables import DeltaTable

        delta = DeltaTable.forPath(self.spark, self.path(table))
        have = delta.toDF().schema
        if schema is not None:
            keep = {f.name for f in schema.fields}
            have = StructType([f for f in have.fields if f.name in keep])
        wanted = _stats_value(table, have)
        if table not in self._stats:
            props = delta.detail().first()["properties"] or {}
            self._stats[table] = props.get(STATS_PROPERTY)
        if self._stats[table] != wanted:
            props = f"'{STATS_PROPERTY}' = '{wanted}'"
            self.spark.sql(f"ALTER TABLE delta.`{self.path(table)}` SET TBLPROPERTIES ({props})")
            self._stats[table] = wanted

    def merge_target(self, table: str, source: DataFrame):
        """The existing table as a ``DeltaTable`` to MERGE ``source`` into, its statistics
        property set first (as a write through this class does)."""
        from delta.tables import DeltaTable

        self.ensure_properties(table, source.schema)
        return DeltaTable.forPath(self.spark, self.path(table))

    def _writer(self, df: DataFrame, table: str):
        self.ensure_properties(table, df.schema)
        writer = df.write.format("delta")
        # set when the write creates the table; Delta ignores them on an existing one
        for key, value in stats_property(table, df.schema).items():
            writer = writer.option(key, value)
        if TABLES[table]:
            writer = writer.partitionBy(*TABLES[table])
        return writer


class MissingTableError(RuntimeError):
    """A job asked for a table an earlier stage has not written yet."""


def events_until(lake: Lake, run_date: str):
    """silver.events of every day up to ``run_date``: what the profiles and segments of that
    date are computed from."""
    return lake.read("silver.events").where(F.col("event_date") <= F.lit(run_date).cast("date"))
