"""An erasure's purge leaves no data file that holds a deleted row, whether the table masks
deleted rows with deletion vectors or rewrites its files on a delete."""

from __future__ import annotations

import glob

from delta.tables import DeltaTable

from jobs.lake import Lake
from jobs.privacy.erase import _purge
from jobs.privacy.vacuum import may_hold_deletion_vectors

WITH_DV, WITHOUT_DV = "gold.person_identifiers", "gold.profiles"


def _lake(spark, settings, root) -> Lake:
    storage = settings.storage.model_copy(update={"lake_root": str(root)})
    return Lake(spark, settings.model_copy(update={"storage": storage}))


def _values_on_disk(spark, folder: str) -> set[str]:
    """Every person id in every Parquet file of the folder, masked or removed from the log or
    not: what is physically left."""
    files = glob.glob(f"{folder}/**/*.parquet", recursive=True)
    return {r["person_id"] for r in spark.read.parquet(*files).collect()} if files else set()


def test_the_purge_rewrites_masked_files_and_vacuums_the_old_ones(spark, settings, tmp_path):
    lake = _lake(spark, settings, tmp_path / "lake")
    rows = spark.createDataFrame([(f"p{i}",) for i in range(6)], "person_id string").coalesce(1)
    for table, dv in ((WITH_DV, "true"), (WITHOUT_DV, "false")):
        rows.write.format("delta").option("delta.enableDeletionVectors", dv).save(lake.path(table))
        gone = spark.createDataFrame([("p3",)], "person_id string")
        target = DeltaTable.forPath(spark, lake.path(table))
        target.alias("t").merge(
            gone.alias("s"), "t.person_id = s.person_id"
        ).whenMatchedDelete().execute()
    with_dv = DeltaTable.forPath(spark, lake.path(WITH_DV))
    assert may_hold_deletion_vectors(with_dv)
    assert not may_hold_deletion_vectors(DeltaTable.forPath(spark, lake.path(WITHOUT_DV)))
    # the premise: the masked file still holds the row until it is purged
    assert "p3" in _values_on_disk(spark, lake.path(WITH_DV))

    _purge(lake, [WITH_DV, WITHOUT_DV], {WITH_DV: 1, WITHOUT_DV: 1})

    for table in (WITH_DV, WITHOUT_DV):
        assert _values_on_disk(spark, lake.path(table)) == {"p0", "p1", "p2", "p4", "p5"}, table
        assert sorted(r["person_id"] for r in lake.read(table).collect()) == [
            "p0",
            "p1",
            "p2",
            "p4",
            "p5",
        ]
