"""A profile column as a mergeable part: what each batch of events adds to a person's running
state (``partial``), how two states of one person combine (``merge``), and the profile value
read from the combined state (``final``). Counts add, first / last seen take the min / max,
distinct counts keep the set of values, and "latest" values keep a struct whose order decides
(the max of ``struct(ts, ...)``). A state built from all events, or from yesterday's state plus
today's events, is the same state, so an incremental run gives the full rebuild's profiles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

MERGES = ("sum", "min", "max", "set")


@dataclass(frozen=True)
class Part:
    name: str  # column of the state
    partial: Column  # aggregate over a person's events
    merge: str  # one of MERGES
    final: Column  # the profile column, from the merged state

    def __post_init__(self):
        if self.merge not in MERGES:
            raise ValueError(f"part {self.name}: merge {self.merge!r} is not one of {MERGES}")


def merged(part: Part) -> Column:
    col = F.col(part.name)
    if part.merge == "set":
        return F.array_distinct(F.flatten(F.collect_list(col))).alias(part.name)
    agg = {"sum": F.sum, "min": F.min, "max": F.max}[part.merge](col)
    return agg.alias(part.name)


def aggregate(events: DataFrame, parts: Sequence[Part], keys: Sequence[str]) -> DataFrame:
    return events.groupBy(*keys).agg(*[p.partial.alias(p.name) for p in parts])


def merge(states: DataFrame, parts: Sequence[Part], keys: Sequence[str]) -> DataFrame:
    """States of the same key (e.g. yesterday's and today's) combined into one row per key."""
    return states.groupBy(*keys).agg(*[merged(p) for p in parts])


def latest(value: Column, order: Column) -> Column:
    """Partial for "the value of the row with the largest ``order``" (rows with a null order
    skipped): the max of struct(order, value). The same as ``max_by(value, order)`` whenever
    equal orders carry equal values, and otherwise the larger value instead of any."""
    return F.max(F.when(order.isNotNull(), F.struct(order.alias("o"), value.alias("v"))))


def latest_value(name: str) -> Column:
    return F.col(name).getField("v")
