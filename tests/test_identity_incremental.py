"""Incremental identity: recomputing only the components new edges reach gives exactly the
person map and lineage of a full rebuild from the same previous run."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.identity.graph import (
    EDGE_COLUMNS,
    edge_tables,
    endpoints,
    event_part,
    find_hubs,
    incremental_hubs,
)
from jobs.identity.map_history import changes, map_before, snapshot
from jobs.identity.resolve import (
    PERSON_MAP_COLUMNS,
    Resolution,
    affected_region,
    build_person_map,
    incremental_seeds,
    update_person_map,
)

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out

LIMITS, MAX_SIZE = {"user": 1}, 12
RULES = Resolution(limits=LIMITS, max_cluster_size=MAX_SIZE)
DAY1, DAY2 = "2026-11-01", "2026-11-02"


def _people_edges(rng: random.Random, n_people: int, day: datetime, tag: str) -> list[tuple]:
    """Each person: cookies linked to a device and maybe a login; edges as (src, dst, ts)."""
    rows = []
    for p in range(n_people):
        ids = [f"cookie:{tag}{p}c{i}" for i in range(rng.randint(1, 3))]
        if rng.random() < 0.6:
            ids.append(f"device:{tag}{p}d")
        if rng.random() < 0.5:
            ids.append(f"user:{tag}{p}u")
        for a in ids:
            rows.append((a, a, day))
        for a, b in zip(ids, ids[1:], strict=False):
            for _ in range(rng.randint(1, 3)):
                rows.append((min(a, b), max(a, b), day + timedelta(minutes=rng.randint(0, 600))))
    return rows


def _edges(spark, rows):
    df = spark.createDataFrame(rows, "src string, dst string, ts timestamp")
    return df.groupBy("src", "dst").agg(
        F.min("ts").alias("first_seen"), F.max("ts").alias("last_seen"), F.count("*").alias("count")
    )


def _rows(df, cols):
    return sorted(tuple(r[c] for c in cols) for r in df.select(*cols).collect())


def _same(got, want, cols) -> None:
    """The two frames hold the same rows of ``cols`` (chispa: a failure shows the rows apart)."""
    assert_df_equality(
        got.select(*cols), want.select(*cols), ignore_row_order=True, ignore_nullable=True
    )


@pytest.mark.parametrize("seed", [3])
def test_incremental_equals_full_rebuild(spark, seed):
    rng = random.Random(seed)
    d1, d2 = datetime(2026, 11, 1, 8), datetime(2026, 11, 2, 8)
    day1 = _people_edges(rng, 40, d1, "a")
    # two logins joined through a device and a cookie: split at the weakest link (dd-kk)
    day1 += [("device:dd", "user:u1", d1)] * 3 + [("cookie:kk", "device:dd", d1)]
    day1 += [("cookie:kk", "user:u2", d1)] * 2
    # a hub on day 1 that day 2 leaves alone: an incremental run keeps it as it was
    family = ("device:family", "user:f1", "user:f2")
    day1 += [(family[0], family[1], d1), (family[0], family[2], d1)]
    e1 = _edges(spark, day1).cache()
    hubs1 = find_hubs(e1, ["user"], 1, 50).cache()
    pm1, _, _ = build_person_map(e1, hubs1, RULES, None, DAY1)
    pm1 = pm1.localCheckpoint()

    # day 2: new people, old people seen again, a merge (cookie meets another person's device),
    # a second login on one device (split), a device shared by many logins (hub), a bridge
    # that makes one cluster too big (quarantine)
    weak = ("device:dd", "user:u1", "user:u2", "cookie:kk")  # left to the count change below
    rest = pm1.where(~F.col("node").isin(*weak, *family))
    users = sorted(r["node"] for r in rest.where("id_type = 'user'").collect())
    devices = sorted(r["node"] for r in rest.where("id_type = 'device'").collect())
    cookies = sorted(r["node"] for r in rest.where("id_type = 'cookie'").collect())
    day2 = _people_edges(rng, 10, d2, "b")
    day2 += [(c, c, d2 + timedelta(hours=1)) for c in rng.sample(cookies, 8)]
    c, d = cookies[0], devices[-1]
    day2.append((min(c, d), max(c, d), d2))
    day2.append((min(devices[0], users[-1]), max(devices[0], users[-1]), d2))
    hub = "device:shared-ipad"
    day2 += [(hub, u, d2) for u in users[1:4]]
    chain = [f"cookie:zz{i}" for i in range(MAX_SIZE + 2)]
    day2 += [(a, b, d2) for a, b in zip(chain, chain[1:], strict=False)]
    # the weak link seen five times more: now kk-u2 is the weakest
    day2 += [("cookie:kk", "device:dd", d2)] * 5
    e2 = _edges(spark, day2).cache()
    tables = edge_tables(e1, e2, None).cache()  # as the job builds them
    edges = tables.select(*EDGE_COLUMNS).cache()
    hubs2 = find_hubs(edges, ["user"], 1, 50).cache()

    full, full_lineage, _ = build_person_map(edges, hubs2, RULES, pm1, DAY2)
    new_pairs = tables.where("new_pair").select("src", "dst")
    seeds = incremental_seeds(new_pairs, e2, pm1, LIMITS).localCheckpoint()  # as the job does
    # hubs judged again on the seeds' own links only are the hubs of the whole graph
    _same(incremental_hubs(edges, seeds, pm1, ["user"], 1, 50), hubs2, ["node", "reason"])
    assert hubs1.where("node = 'device:family'").count() == 1
    assert hubs2.where("node IN ('device:family', 'device:shared-ipad')").count() == 2
    inc, inc_lineage, _, region = update_person_map(edges, hubs2, seeds, pm1, RULES, DAY2)
    cols = full.columns
    _same(inc, full, cols)
    # the history keeps day 1 whole and day 2 as its changes only, and gives both maps back
    history = (
        snapshot(pm1)
        .withColumn("run_date", F.lit(DAY1))
        .unionByName(changes(inc, pm1, region).withColumn("run_date", F.lit(DAY2)))
    )
    assert map_before(history, DAY1) is None
    _same(map_before(history, DAY2), pm1, cols)
    _same(map_before(history, "2026-11-03"), full, cols)
    assert 0 < history.where(F.col("run_date") == DAY2).count() <= region.count()
    lcols = ["old_person_id", "new_person_id", "reason", "nodes"]
    _same(inc_lineage, full_lineage, lcols)
    reasons = {r[2] for r in _rows(full_lineage, lcols)}
    assert reasons == {"merge", "split"}  # the day really changed the graph both ways
    assert full.where("quarantined").count() > 0 and full.where("is_hub").count() > 0
    # only what the new edges reach was recomputed; edges seen again seed nothing
    assert region.count() < full.count() * 0.8
    assert seeds.count() < endpoints(e2).count()

    def owner(pm):
        ids = {
            r["node"]: r["person_id"]
            for r in pm.where("node IN ('cookie:kk', 'user:u1', 'user:u2')").collect()
        }
        return ids["cookie:kk"] == ids["user:u1"], ids["cookie:kk"] == ids["user:u2"]

    assert owner(pm1) == (False, True) and owner(full) == (True, False)  # the cut moved
    # seeding only new pairs, without the over-limit rule, would leave kk's old row in place
    new_pairs = e2.join(e1.select("src", "dst"), ["src", "dst"], "left_anti")
    naive = affected_region(edges, hubs2, endpoints(new_pairs), pm1)
    assert naive.where("node = 'cookie:kk'").count() == 0
    assert region.where("node = 'cookie:kk'").count() == 1


def test_edge_tables_in_one_pass_match_a_hand_computation(spark):
    """Event edges, all edges and new pairs out of one aggregation, against dictionaries."""
    t = [datetime(2026, 11, d, 9) for d in range(1, 6)]
    prev = [("a", "b", t[0], t[1], 2), ("a", "c", t[1], t[1], 1), ("b", "b", t[0], t[0], 1)]
    fresh = [("a", "b", t[3], t[3], 1), ("c", "d", t[3], t[4], 4), ("e", "e", t[4], t[4], 1)]
    crm = [("a", "c", t[0], t[0], 1), ("d", "x", t[2], t[2], 1), ("c", "d", t[2], t[2], 1)]
    schema = "src string, dst string, first_seen timestamp, last_seen timestamp, count long"
    frames = [spark.createDataFrame(rows, schema) for rows in (prev, fresh, crm)]
    tables = edge_tables(*frames).cache()

    def added(*parts):
        out = {}
        for rows in parts:
            for s, d, f, last, n in rows:
                f0, l0, n0 = out.get((s, d), (f, last, 0))
                out[(s, d)] = (min(f0, f), max(l0, last), n0 + n)
        return sorted((*k, *v) for k, v in out.items())

    assert _rows(event_part(tables), EDGE_COLUMNS) == added(prev, fresh)
    assert _rows(tables, EDGE_COLUMNS) == added(prev, fresh, crm)
    assert _rows(tables.where("new_pair"), ["src", "dst"]) == [("c", "d"), ("e", "e")]
    # a first run: no previous event edges, every pair of the day is new
    first = edge_tables(None, frames[1], frames[2])
    assert _rows(first.where("new_pair"), ["src", "dst"]) == sorted((r[0], r[1]) for r in fresh)
    assert _rows(event_part(first), EDGE_COLUMNS) == added(fresh)


def test_history_tombstones_and_old_snapshots(spark):
    """An identifier that leaves the map gets a tombstone; partitions written before the change
    log (no ``change`` column) read as whole snapshots."""

    def pm(rows):  # (node, person_id): the other columns do not matter here
        return spark.createDataFrame(
            [(n, "cookie", n, n, n, p, DAY1, False, None, 1, False) for n, p in rows],
            "node string, id_type string, id_value string, component string, "
            "raw_component string, person_id string, person_created string, is_hub boolean, "
            "hub_reason string, cluster_size long, quarantined boolean",
        )

    day1 = pm([("a", "p1"), ("b", "p1"), ("c", "p2")])
    day2 = pm([("a", "p1"), ("b", "p3"), ("d", "p4")])  # b moves, c leaves, d arrives
    scope = spark.createDataFrame([("b",), ("c",), ("d",)], "node string")
    log = changes(day2, day1, scope)
    assert sorted((r["node"], r["change"]) for r in log.collect()) == [
        ("b", "changed"),
        ("c", "removed"),
        ("d", "changed"),
    ]
    old_format = day1.withColumn("run_date", F.lit(DAY1))  # no change column at all
    history = old_format.withColumn("change", F.lit(None).cast("string")).unionByName(
        log.withColumn("run_date", F.lit(DAY2))
    )
    _same(map_before(history, "2026-11-09"), day2, PERSON_MAP_COLUMNS)
    _same(map_before(old_format, DAY2), day1, PERSON_MAP_COLUMNS)
