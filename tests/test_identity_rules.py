"""Stable ids (persist, merge, split, new) and the weakest-link split, on hand-made graphs."""

from jobs.cache import cached
from jobs.identity.split import split_over_limits
from jobs.identity.stable_ids import assign_ids


def _components(spark, pairs):
    return spark.createDataFrame(pairs, "node string, component string")


def test_ids_persist_merge_oldest_survives_split_largest_keeps(spark):
    previous = spark.createDataFrame(
        [
            ("a1", "p-A", "2026-11-01"),
            ("a2", "p-A", "2026-11-01"),  # persists
            ("b1", "p-B", "2026-11-01"),
            ("c1", "p-C", "2026-11-03"),  # merge: B older
            ("d1", "p-D", "2026-11-02"),
            ("d2", "p-D", "2026-11-02"),  # split 2 / 1
            ("d3", "p-D", "2026-11-02"),
        ],
        "node string, person_id string, person_created string",
    )
    now = _components(
        spark,
        [
            ("a1", "a1"),
            ("a2", "a1"),
            ("b1", "b1"),
            ("c1", "b1"),
            ("d1", "d1"),
            ("d2", "d1"),
            ("d3", "d3"),
            ("e1", "e1"),  # new
        ],
    )
    out, lineage = assign_ids(now, previous, "2026-11-04")
    ids = {r["node"]: r["person_id"] for r in out.collect()}
    assert ids["a1"] == ids["a2"] == "p-A"
    assert ids["b1"] == ids["c1"] == "p-B"
    assert ids["d1"] == ids["d2"] == "p-D"
    assert ids["d3"] not in {"p-A", "p-B", "p-C", "p-D"}
    assert ids["e1"] not in {"p-A", "p-B", "p-C", "p-D", ids["d3"]}
    lin = {(r["old_person_id"], r["new_person_id"], r["reason"]) for r in lineage.collect()}
    assert lin == {("p-C", "p-B", "merge"), ("p-D", ids["d3"], "split")}
    # same input, same output: ids are a function of the data and the run
    again = {
        r["node"]: r["person_id"] for r in assign_ids(now, previous, "2026-11-04")[0].collect()
    }
    assert again == ids


def _two_logins(spark):
    """Two logins bridged by one weak link: (links, nodes)."""
    from datetime import datetime

    t = datetime(2026, 11, 1)
    links = spark.createDataFrame(
        [
            ("cookie:1", "user:1", 9, t),
            ("cookie:1", "email:x", 5, t),
            ("cookie:2", "email:x", 1, t),  # the weak bridge
            ("cookie:2", "user:2", 7, t),
            ("cookie:3", "user:2", 4, t),
        ],
        "src string, dst string, count long, last_seen timestamp",
    )
    nodes = links.selectExpr("src as node").union(links.selectExpr("dst as node")).distinct()
    return links, nodes


def test_second_login_splits_at_the_weakest_link(spark):
    links, nodes = _two_logins(spark)
    cc, cuts = split_over_limits(links, nodes, {"user": 1}, max_rounds=5, supersteps=20)
    comp = {r["node"]: r["component"] for r in cc.collect()}
    assert comp["user:1"] == comp["cookie:1"] == comp["email:x"]
    assert comp["user:2"] == comp["cookie:2"] == comp["cookie:3"]
    assert comp["user:1"] != comp["user:2"]
    assert [(r["src"], r["dst"]) for r in cuts.collect()] == [("cookie:2", "email:x")]


def test_components_that_need_no_split_are_freed_with_the_callers_block(spark):
    links, nodes = _two_logins(spark)
    with cached() as keep:  # two logins allowed: nothing to split, the first components are kept
        cc, cuts = split_over_limits(links, nodes, {"user": 2}, 5, 20, keep=keep)
        assert cc.is_cached
        assert len({r["component"] for r in cc.collect()}) == 1 and cuts.isEmpty()
    assert not cc.is_cached  # not left pinned for the rest of the session
