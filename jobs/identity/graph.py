"""The identifier graph: typed identifier nodes, edges from identifiers seen together in one
event or one CRM record, and the over-merge guards."""

from __future__ import annotations

import hashlib
from functools import reduce
from itertools import combinations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.vocabulary import CRM_IDENTIFIERS, EVENT_IDENTIFIERS


def node(id_type: str, column: str):
    return F.when(F.col(column).isNotNull(), F.concat(F.lit(id_type + ":"), F.col(column)))


def blocked_email_hashes(blocked_emails: list[str]) -> list[str]:
    """Blocked emails hashed like silver hashes them (``email_sha256``)."""
    return [hashlib.sha256(e.strip().lower().encode()).hexdigest() for e in blocked_emails]


def blocked_nodes(blocked_emails: list[str]) -> list[str]:
    """Blocked emails as the nodes they would become."""
    return ["email:" + h for h in blocked_email_hashes(blocked_emails)]


def _records(df: DataFrame, identifiers: dict[str, str], ts: str) -> DataFrame:
    """One node column per identifier column the frame has; a column holding the same node
    as an earlier one of its type (the native format's device id is also its advertising id)
    is left empty, so a pair is never counted twice."""
    present = [(c, t) for c, t in identifiers.items() if c in df.columns]
    cols = []
    for i, (c, t) in enumerate(present):
        same = [F.col(e).eqNullSafe(F.col(c)) for e, u in present[:i] if u == t]
        value = node(t, c)
        if same:
            value = F.when(~reduce(lambda a, b: a | b, same), value)
        cols.append(value.alias(c))
    return df.select(*cols, F.col(ts).alias("ts"))


def block_reason(col, blocked: list[str], patterns: list[str]):
    """Why an identifier node may not link anything (null when it may)."""
    value = F.substring_index(col, ":", -1)
    reason = F.lit(None).cast("string")
    if patterns:
        reason = F.when(value.rlike("(?i)(" + "|".join(patterns) + ")"), "blocked_pattern")
    if blocked:
        reason = F.when(col.isin(blocked), F.lit("blocked_value")).otherwise(reason)
    return reason


def record_edges(records: DataFrame, blocked: list[str], patterns: list[str]) -> DataFrame:
    """Every pair of identifiers in one record is an edge (records carry at most a handful)."""
    types = [c for c in records.columns if c != "ts"]
    cleaned = records
    for t in types:
        cleaned = cleaned.withColumn(
            t, F.when(block_reason(F.col(t), blocked, patterns).isNull(), F.col(t))
        )
    pairs = [
        F.struct(F.least(a, b).alias("src"), F.greatest(a, b).alias("dst"))
        for a, b in combinations([F.col(t) for t in types], 2)
    ]
    singles = [F.struct(F.col(t).alias("src"), F.col(t).alias("dst")) for t in types]
    exploded = cleaned.select(F.explode(F.array(*pairs, *singles)).alias("e"), "ts")
    return exploded.where(F.col("e.src").isNotNull() & F.col("e.dst").isNotNull()).select(
        "e.src", "e.dst", "ts"
    )


def blocked_identifiers(
    events: DataFrame | None, crm: DataFrame | None, blocked: list[str], patterns: list[str]
) -> DataFrame:
    """(node, reason) for every distinct identifier a block rule kept out of the graph."""
    frames = [] if events is None else [_records(events, EVENT_IDENTIFIERS, "event_ts")]
    if crm is not None:
        frames.append(_records(crm, CRM_IDENTIFIERS, "updated_at"))
    nodes = None
    for rec in frames:
        cols = [c for c in rec.columns if c != "ts"]
        n = rec.select(F.explode(F.array(*[F.col(c) for c in cols])).alias("node"))
        nodes = n if nodes is None else nodes.unionByName(n)
    return (
        nodes.where(F.col("node").isNotNull())
        .distinct()
        .withColumn("reason", block_reason(F.col("node"), blocked, patterns))
        .where(F.col("reason").isNotNull())
    )


def build_edges(
    events: DataFrame | None, crm: DataFrame | None, blocked: list[str], patterns: list[str]
) -> DataFrame:
    """(src, dst, first_seen, last_seen, count); self-edges (src == dst) keep lone identifiers."""
    parts = []
    if events is not None:
        parts.append(
            record_edges(_records(events, EVENT_IDENTIFIERS, "event_ts"), blocked, patterns)
        )
    if crm is not None:
        parts.append(record_edges(_records(crm, CRM_IDENTIFIERS, "updated_at"), blocked, patterns))
    union = parts[0]
    for p in parts[1:]:
        union = union.unionByName(p)
    return union.groupBy("src", "dst").agg(
        F.min("ts").alias("first_seen"),
        F.max("ts").alias("last_seen"),
        F.count("*").alias("count"),
    )


def edge_tables(
    previous_events: DataFrame | None, fresh: DataFrame, crm_edges: DataFrame | None
) -> DataFrame:
    """The event edge table (previous event edges plus the day's), the whole edge table (plus
    CRM's) and the day's new identifier pairs, in one aggregation: one shuffle of the graph
    instead of three (the tables added up twice, the new pairs by an anti-join).
    -> (src, dst, first_seen, last_seen, count: every source; e_first_seen, e_last_seen,
    e_count: events only, null for a pair only CRM holds; new_pair: in ``fresh`` and not in
    ``previous_events``)."""
    parts = [(fresh, "f")]
    if previous_events is not None:
        parts.append((previous_events, "p"))
    if crm_edges is not None:
        parts.append((crm_edges, "c"))
    union = None
    for df, tag in parts:
        t = df.select(*EDGE_COLUMNS, F.lit(tag).alias("part"))
        union = t if union is None else union.unionByName(t)
    ev = F.col("part") != "c"
    return union.groupBy("src", "dst").agg(
        F.min("first_seen").alias("first_seen"),
        F.max("last_seen").alias("last_seen"),
        F.sum("count").alias("count"),
        F.min(F.when(ev, F.col("first_seen"))).alias("e_first_seen"),
        F.max(F.when(ev, F.col("last_seen"))).alias("e_last_seen"),
        F.sum(F.when(ev, F.col("count"))).alias("e_count"),
        (F.max(F.col("part") == "f") & ~F.max(F.col("part") == "p")).alias("new_pair"),
    )


def event_part(tables: DataFrame) -> DataFrame:
    """The event edge table out of ``edge_tables``."""
    return tables.where(F.col("e_count").isNotNull()).select(
        "src",
        "dst",
        F.col("e_first_seen").alias("first_seen"),
        F.col("e_last_seen").alias("last_seen"),
        F.col("e_count").alias("count"),
    )


def changed_endpoints(before: DataFrame, after: DataFrame) -> DataFrame:
    """(node) of every edge added, removed or changed between two edge tables."""
    a, b = before.select(*EDGE_COLUMNS), after.select(*EDGE_COLUMNS)
    diff = a.exceptAll(b).unionByName(b.exceptAll(a))
    return endpoints(diff)


def endpoints(edges: DataFrame) -> DataFrame:
    return (
        edges.select(F.col("src").alias("node"))
        .unionByName(edges.select(F.col("dst").alias("node")))
        .distinct()
    )


EDGE_COLUMNS = ["src", "dst", "first_seen", "last_seen", "count"]


def node_type(col: str = "node"):
    return F.substring_index(F.col(col), ":", 1)


def find_hubs(
    edges: DataFrame, anchor_types: list[str], max_anchor_links: int, max_degree: int
) -> DataFrame:
    """Identifiers that would glue different people together: linked to more than
    ``max_anchor_links`` anchors of one type (a family iPad logged into by 3 accounts, an email
    typed by many users), or to more than ``max_degree`` identifiers in all."""
    links = edges.where(F.col("src") != F.col("dst"))
    both = links.select(F.col("src").alias("node"), F.col("dst").alias("other")).unionByName(
        links.select(F.col("dst").alias("node"), F.col("src").alias("other"))
    )
    per_type = (
        both.where(node_type("other").isin(anchor_types) & ~node_type("node").isin(anchor_types))
        .groupBy("node", node_type("other").alias("anchor_type"))
        .agg(F.countDistinct("other").alias("n"))
        .where(F.col("n") > max_anchor_links)
        .select(
            "node",
            F.concat(F.lit("links "), "n", F.lit(" "), "anchor_type", F.lit(" ids")).alias(
                "reason"
            ),
        )
    )
    degree = (
        both.groupBy("node")
        .agg(F.countDistinct("other").alias("n"))
        .where(F.col("n") > max_degree)
        .select("node", F.concat(F.lit("degree "), "n").alias("reason"))
    )
    return (
        per_type.unionByName(degree)
        .groupBy("node")
        .agg(F.concat_ws("; ", F.sort_array(F.collect_set("reason"))).alias("reason"))
    )


def incremental_hubs(
    edges: DataFrame,
    touched: DataFrame,
    previous: DataFrame,
    anchor_types: list[str],
    max_anchor_links: int,
    max_degree: int,
) -> DataFrame:
    """``find_hubs`` after a day that changed the neighbours of ``touched`` nodes only. Whether
    a node is a hub depends on its own distinct neighbours alone, so only the touched nodes are
    judged again (on their own links, not on the whole graph); every other node keeps its
    status and reason from ``previous`` (the person map with is_hub, hub_reason)."""
    t = touched.select("node").distinct()
    mine = edges.join(t.withColumnRenamed("node", "src"), "src", "left_semi").unionByName(
        edges.join(t.withColumnRenamed("node", "dst"), "dst", "left_semi")
    )
    judged = find_hubs(mine, anchor_types, max_anchor_links, max_degree).join(
        t, "node", "left_semi"
    )
    kept = (
        previous.where(F.col("is_hub"))
        .select("node", F.col("hub_reason").alias("reason"))
        .join(t, "node", "left_anti")
    )
    return kept.unionByName(judged)
