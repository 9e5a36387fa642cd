"""Segments beyond the rules: the shipped definitions by hand, membership history across three
runs with an identity merge and split, and pairwise overlaps (exact and sketched)."""

from __future__ import annotations

from datetime import date
from itertools import combinations

import pytest
from pyspark.sql import functions as F

from jobs.lake import Lake
from jobs.segments.membership import write_membership
from jobs.segments.overlap import overlaps, pair_count
from jobs.segments.rules import evaluate, load_segments

from .conftest import ROOT
from .segment_fixtures import events_frame

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out


def test_every_shipped_segment_matches_a_hand_computation(spark):
    segs = load_segments(ROOT / "conf" / "segments")
    d = date
    ev = [
        ("u1", "product_view", "winter_coats", None, d(2026, 11, 9)),
        ("u1", "product_view", "winter_coats", None, d(2026, 11, 10)),
        ("u2", "add_to_cart", "boots", None, d(2026, 11, 8)),
        ("u3", "purchase", "winter_coats", 200.0, d(2026, 11, 1)),
        ("u3", "purchase", "books", 20.0, d(2026, 10, 15)),
        ("u3", "purchase", "books", 20.0, d(2026, 10, 20)),
        ("u3", "purchase", "books", 20.0, d(2026, 10, 25)),
        ("u4", "add_to_cart", "tv", None, d(2026, 11, 10)),
        ("u4", "purchase", "tv", 1500.0, d(2026, 11, 10)),
        ("u5", "email_open", None, None, d(2026, 11, 5)),
        ("u6", "email_click", None, None, d(2026, 11, 5)),
        ("u7", "product_view", "winter_coats", None, d(2026, 11, 9)),
        ("u7", "product_view", "winter_coats", None, d(2026, 11, 9)),
        ("u7", "purchase", "books", 15.0, d(2026, 11, 9)),
        ("u8", "product_view", "winter_coats", None, d(2026, 10, 1)),
        ("u8", "product_view", "winter_coats", None, d(2026, 10, 1)),
        ("u8", "product_view", "winter_coats", None, d(2026, 10, 2)),
        ("u8", "purchase", "winter_coats", 90.0, d(2026, 8, 2)),
    ]
    events = events_frame(spark, ev, product_id="x")
    # person, web_events, app_events, purchases, days_since_purchase, first_seen_days
    profiles = spark.createDataFrame(
        [
            ("u1", 2, 0, 0, None, 1),
            ("u2", 0, 3, 0, None, 20),
            ("u3", 10, 0, 4, 9, 60),
            ("u4", 2, 0, 1, 0, 30),
            ("u5", 1, 0, 0, None, 30),
            ("u6", 0, 2, 0, None, 30),
            ("u7", 3, 0, 1, 1, 30),
            ("u8", 3, 0, 1, 100, 120),
        ],
        "person_id string, web_events int, app_events int, purchases int, "
        "days_since_purchase int, first_seen_days int",
    )
    got: dict[str, set] = {name: set() for name in segs}
    for r in evaluate(profiles, events, segs, "2026-11-10").collect():
        got[r["segment"]].add(r["person_id"])
    assert got == {
        "browse_abandoners_winter_coats": {"u1"},
        "cart_abandoners": {"u2"},
        "winter_coat_buyers": {"u3"},
        "high_value_customers": {"u3", "u4"},
        "lapsing_customers": {"u3", "u8"},
        "new_visitors": {"u1"},
        "app_only_users": {"u2", "u6"},
        "email_engaged": {"u5"},
        # every event of this frame is on the web: all but u8, whose last is 39 days old
        "recent_visitors": {"u1", "u2", "u3", "u4", "u5", "u6", "u7"},
    }


@pytest.fixture()
def lake(spark, settings, tmp_path):
    storage = settings.storage.model_copy(update={"lake_root": str(tmp_path / "lake")})
    return Lake(spark, settings.model_copy(update={"storage": storage}))


def _run(lake, spark, run_date, members: dict[str, set]):
    rows = [(s, p) for s, people in members.items() for p in sorted(people)]
    df = spark.createDataFrame(rows, "segment string, person_id string")
    return write_membership(lake, df, run_date, sorted(members))


def _history(lake):
    return sorted(
        tuple(r)
        for r in lake.read("gold.segment_history")
        .select("segment", "person_id", "entered", "exited", "exit_reason", "opened_on")
        .collect()
    )


def _changes(lake, run_date):
    return sorted(
        tuple(r)
        for r in lake.read("gold.segment_changes")
        .where(F.col("run_date") == run_date)
        .select("segment", "person_id", "change")
        .collect()
    )


def test_history_across_three_runs_with_a_merge_and_a_split(lake, spark):
    d1, d2, d3 = "2026-11-01", "2026-11-02", "2026-11-03"
    _run(lake, spark, d1, {"s": {"a", "b", "c"}, "t": {"a"}})
    stats = _run(lake, spark, d2, {"s": {"a", "c", "d"}, "t": {"a"}})
    assert _changes(lake, d2) == [("s", "b", "exited"), ("s", "d", "entered")]
    assert stats["s"] == {
        "size": 3, "previous_size": 3, "entered": 1, "exited": 1, "moved": 0
    }  # fmt: skip
    # identity run of d3: c merged into d, e split off a
    lineage = spark.createDataFrame(
        [("c", "d", "merge", 2, d3), ("a", "e", "split", 1, d3)],
        "old_person_id string, new_person_id string, reason string, nodes long, run_date string",
    )
    lake.replace_partition(lineage, "identity.lineage", "run_date", d3)
    run3 = {"s": {"b", "d", "e"}, "t": {"e"}}
    stats = _run(lake, spark, d3, run3)
    expected = [
        ("s", "a", d1, d3, "left", d1),  # a stayed a person but left s
        ("s", "b", d1, d2, "left", d1),
        ("s", "b", d3, None, None, d3),  # came back: a new stretch
        ("s", "c", d1, d3, "merged", d1),  # retired into d
        ("s", "d", d2, None, None, d2),  # d's own membership goes on
        ("s", "e", d1, None, None, d3),  # split off a: inherits a's entry date
        ("t", "a", d1, d3, "left", d1),
        ("t", "e", d1, None, None, d3),
    ]
    assert _history(lake) == sorted(expected, key=lambda r: tuple(str(x) for x in r))
    assert _changes(lake, d3) == [
        ("s", "a", "exited"),
        ("s", "b", "entered"),
        ("s", "c", "moved"),
        ("t", "a", "exited"),
    ]
    assert stats["s"] == {"size": 3, "previous_size": 3, "entered": 1, "exited": 1, "moved": 1}
    assert stats["t"] == {"size": 1, "previous_size": 1, "entered": 0, "exited": 1, "moved": 0}
    # a rerun of the last date changes nothing
    before = (_history(lake), _changes(lake, d3))
    _run(lake, spark, d3, run3)
    assert (_history(lake), _changes(lake, d3)) == before
    # and a rerun with other members replaces exactly that run's work
    _run(lake, spark, d3, {"s": {"d"}, "t": set()})
    assert ("s", "b", d3, None, None, d3) not in _history(lake)
    assert ("s", "e", d1, d3, "left", d3) in _history(lake)
    assert ("t", "e", d1, d3, "left", d3) in _history(lake)
    stats_rows = lake.read("gold.segment_stats").where(F.col("run_date") == d3).count()
    assert stats_rows == 2


def _sets(n: int) -> dict[str, set[int]]:
    return {
        "even": {i for i in range(n) if i % 2 == 0},
        "threes": {i for i in range(n) if i % 3 == 0},
        "fives": {i for i in range(n) if i % 5 == 0},
        "first_half": set(range(n // 2)),
        "sevens_plus_one": {i for i in range(n) if i % 7 == 1},
        "empty_overlap": {n + 1, n + 2},  # shares nobody with anyone
    }


@pytest.mark.parametrize("exact_max_pairs", [10**9, 0], ids=["exact", "sketch"])
def test_overlaps_against_python_sets(spark, exact_max_pairs):
    n = 60_000
    sets = _sets(n)
    members = spark.createDataFrame(
        [(s, f"p{i}") for s, people in sets.items() for i in sorted(people)],
        "segment string, person_id string",
    )
    out, method = overlaps(members, exact_max_pairs)
    got = {(r["segment_a"], r["segment_b"]): r for r in out.collect()}
    assert method == ("exact" if exact_max_pairs else "theta sketch")
    assert len(got) == len(sets) * (len(sets) - 1) // 2
    k: dict[int, int] = {}
    for people in sets.values():
        for i in people:
            k[i] = k.get(i, 0) + 1
    assert pair_count(members) == sum(v * (v - 1) // 2 for v in k.values())
    for a, b in combinations(sorted(sets), 2):
        r = got[(a, b)]
        truth = len(sets[a] & sets[b])
        assert (r["size_a"], r["size_b"]) == (len(sets[a]), len(sets[b]))
        if method == "exact":
            assert r["overlap"] == truth
            assert r["jaccard"] == pytest.approx(truth / len(sets[a] | sets[b]))
        else:  # Theta sketches: about 1% of the larger set
            assert abs(r["overlap"] - truth) <= 0.03 * max(len(sets[a]), len(sets[b])) + 1, (a, b)
