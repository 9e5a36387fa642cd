"""Why a person is who they are: their identifiers, the edges that joined them (seen together,
or matched by probabilistic matching, with its probability and evidence), the links the guards
did not follow, and the merges and splits in their lineage (``dmp explain-person``).

Pure over the identity tables (person map, edges, lineage); the CLI reads them and prints."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

MAX_EDGES = 50  # edges listed per kind; the counts cover them all


def explain(
    person_map: DataFrame,
    edges: DataFrame,
    lineage: DataFrame,
    person_id: str,
    scored: DataFrame | None = None,
) -> dict:
    """-> {person_id, identifiers, joined_by, not_followed, lineage}; ``identifiers`` empty for a
    person id the map does not hold (erased, or merged into another: see ``lineage``).
    ``scored`` (identity.match_edges) gives the edges probabilistic matching made their
    probability and evidence; every other edge has them null."""
    mine = person_map.where(F.col("person_id") == person_id)
    identifiers = [
        {k: r[k] for k in ("node", "id_type", "is_hub", "hub_reason", "quarantined")}
        for r in mine.orderBy("node").collect()
    ]
    people = person_map.select("node", "person_id", "is_hub")
    src = people.select(F.col("node").alias("src"), F.col("person_id").alias("p_src"),
                        F.col("is_hub").alias("hub_src"))  # fmt: skip
    dst = people.select(F.col("node").alias("dst"), F.col("person_id").alias("p_dst"),
                        F.col("is_hub").alias("hub_dst"))  # fmt: skip
    if scored is None:
        scored = edges.sparkSession.createDataFrame(
            [], "src string, dst string, match_probability double, evidence array<string>"
        )
    touching = (
        edges.where(F.col("src") != F.col("dst"))
        .join(scored.select("src", "dst", "match_probability", "evidence"), ["src", "dst"], "left")
        .join(src, "src", "left")
        .join(dst, "dst", "left")
        .where((F.col("p_src") == person_id) | (F.col("p_dst") == person_id))
    )
    inside = F.col("p_src") == F.col("p_dst")
    hub = F.coalesce(F.col("hub_src"), F.lit(False)) | F.coalesce(F.col("hub_dst"), F.lit(False))
    touching = touching.withColumn(
        "why",
        F.when(inside, F.lit(None))
        .when(hub, F.lit("a hub: shared too widely to link people"))
        .otherwise(F.lit("cut by the per-person limits (split at its weakest link)")),
    )
    return {
        "person_id": person_id,
        "identifiers": identifiers,
        "joined_by": _edges(touching.where(inside)),
        "not_followed": _edges(touching.where(~inside), "why", "p_src", "p_dst"),
        "lineage": [
            r.asDict()
            for r in lineage.where(
                (F.col("old_person_id") == person_id) | (F.col("new_person_id") == person_id)
            )
            .select("run_date", "reason", "old_person_id", "new_person_id", "nodes")
            .orderBy("run_date", "old_person_id", "new_person_id")
            .collect()
        ],
    }


def _edges(df: DataFrame, *extra: str) -> dict:
    cols = ["src", "dst", "count", "first_seen", "last_seen", "match_probability", "evidence"]
    cols += extra
    rows = df.select(*cols).orderBy(F.col("count").desc(), "src", "dst").limit(MAX_EDGES)
    return {"total": df.count(), "edges": [r.asDict() for r in rows.collect()]}


def as_text(found: dict) -> str:
    """The explanation as a person reads it."""
    pid = found["person_id"]
    if not found["identifiers"]:
        lines = [f"{pid}: not in the person map (erased, or merged into another person)"]
    else:
        lines = [f"{pid}: {len(found['identifiers'])} identifiers"]
        for i in found["identifiers"]:
            flags = [f"hub ({i['hub_reason']})" if i["is_hub"] else ""]
            flags.append("quarantined (cluster too large)" if i["quarantined"] else "")
            lines.append(f"  {i['node']} {' '.join(f for f in flags if f)}".rstrip())
    for title, key in (("joined by", "joined_by"), ("not followed", "not_followed")):
        part = found[key]
        lines.append(f"{title}: {part['total']} edge(s)")
        for e in part["edges"]:
            why = f"  [{e['why']}; other person {_other(e, pid)}]" if "why" in e else ""
            lines.append(f"  {e['src']} -- {e['dst']}  {_how(e)}{why}")
    lines.append(f"lineage: {len(found['lineage'])} change(s)")
    for r in found["lineage"]:
        lines.append(
            f"  {r['run_date']} {r['reason']}: {r['old_person_id']} -> {r['new_person_id']} "
            f"({r['nodes']} identifiers)"
        )
    return "\n".join(lines)


def _how(edge: dict) -> str:
    """A deterministic edge's co-occurrences, or a scored edge's probability and evidence."""
    if edge.get("match_probability") is not None:
        agreed = ", ".join(edge["evidence"] or [])
        return f"matched p={edge['match_probability']:.3f} ({agreed}), {edge['last_seen']}"
    return f"seen {edge['count']}x, {edge['first_seen']} .. {edge['last_seen']}"


def _other(edge: dict, pid: str) -> str:
    return edge["p_dst"] if edge["p_src"] == pid else edge["p_src"]
