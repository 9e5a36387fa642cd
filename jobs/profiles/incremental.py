"""Pure transformations of an incremental profiles run: which persons must be aggregated again
from all their events because identity moved identifiers since the previous run, and the new
state from the previous one.

An event belongs to the person of its most trusted identifier, so its person can change only
if one of its identifiers changed person (or hub status). The persons to redo are therefore
both persons (before and after) of every changed identifier and of every event that carries
one (among the events the previous state holds); every other person holds the same events as
before, and their state only needs their share of the day's new events added."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.identity.resolve import attribute_events, events_with_nodes
from jobs.profiles.parts import Part
from jobs.profiles.transform import merge_state, profile_state


def changed_nodes(old_map: DataFrame, new_map: DataFrame) -> DataFrame:
    """(node, old_person_id, new_person_id) of identifiers added, removed, or whose person or
    hub status changed between two person maps."""
    old = old_map.select(
        "node", F.col("person_id").alias("old_person_id"), F.col("is_hub").alias("old_hub")
    )
    new = new_map.select(
        "node", F.col("person_id").alias("new_person_id"), F.col("is_hub").alias("new_hub")
    )
    same = F.col("old_person_id").eqNullSafe(F.col("new_person_id")) & F.col("old_hub").eqNullSafe(
        F.col("new_hub")
    )
    return (
        old.join(new, "node", "full").where(~same).select("node", "old_person_id", "new_person_id")
    )


def persons_to_redo(
    held: DataFrame,
    changed: DataFrame,
    old_map: DataFrame,
    new_map: DataFrame,
    link_types: list[str],
) -> DataFrame:
    """(person_id) whose share of ``held`` (the events the previous state holds) may differ
    from the previous run's: the old and new persons of the changed identifiers and of the
    held events carrying one. A null person_id among them means held events of no known person
    changed hands (only a full rebuild can redo that group). The day's new events need no
    redo: they are attributed with the new map in any case."""
    touched = events_with_nodes(held, changed.select("node"))
    pids = [
        changed.select(F.col("old_person_id").alias("person_id")).where("person_id IS NOT NULL"),
        changed.select(F.col("new_person_id").alias("person_id")).where("person_id IS NOT NULL"),
        attribute_events(touched, old_map, link_types).select("person_id"),
        attribute_events(touched, new_map, link_types).select("person_id"),
    ]
    out = pids[0]
    for more in pids[1:]:
        out = out.unionByName(more)
    return out.distinct()


def next_state(
    previous_state: DataFrame,
    events: DataFrame,
    new_events: DataFrame,
    redo: DataFrame,
    person_map: DataFrame,
    link_types: list[str],
    parts: Sequence[Part],
) -> DataFrame:
    """The state as a full rebuild on ``events`` would give it, from the previous run's state:
    the persons of ``redo`` (no nulls) aggregated again from all their events, everyone else's
    state merged with their share of ``new_events`` (events the previous state did not hold)."""
    redo_nodes = person_map.join(redo, "person_id", "left_semi").select("node")
    redone = attribute_events(events_with_nodes(events, redo_nodes), person_map, link_types)
    redone = redone.join(redo, "person_id", "left_semi")
    fresh = attribute_events(new_events, person_map, link_types).join(
        redo, "person_id", "left_anti"
    )
    kept = previous_state.join(redo, "person_id", "left_anti")
    added = profile_state(fresh, parts).unionByName(profile_state(redone, parts))
    return merge_state(kept.unionByName(added), parts)
