"""What the lookalike job publishes for the jobs after it: its reach segments' names and the
dates it computed a lookalike for."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs.lake import Lake


def segment_name(lookalike: str, pct: float) -> str:
    return f"{lookalike}_{pct:g}pct"


def computed_on(lake: Lake, run_date: str) -> set[str]:
    """The lookalikes computed for ``run_date`` (those with an evaluation row)."""
    if not lake.exists("gold.lookalike_evaluation"):
        return set()
    rows = (
        lake.read("gold.lookalike_evaluation")
        .where(F.col("run_date") == run_date)
        .select("lookalike")
        .distinct()
        .collect()
    )
    return {r["lookalike"] for r in rows}
