"""Attribution of events to persons (both through the distinct sets of identifiers), per event
and summed per person, against plain Python on random events (hubs, unknown identifiers,
events with no identifier at all)."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from jobs.identity.resolve import attribute_events, attributed_sums
from jobs.vocabulary import EVENT_IDENTIFIERS

LINK_TYPES = ["user", "crm", "email", "phone", "device", "cookie"]


def _world(seed: int):
    rng = random.Random(seed)
    types = set(EVENT_IDENTIFIERS.values())
    pool = {t: [f"{t[:2]}{i}" for i in range(12)] for t in types}
    person_map = {}  # node -> (person, is_hub)
    for t in sorted(types):
        for v in pool[t][:10]:  # the last two of each type are unknown to the map
            person_map[f"{t}:{v}"] = (f"p{rng.randrange(15)}", rng.random() < 0.15)
    events = []
    for i in range(400):
        ids = {
            col: (rng.choice(pool[t]) if rng.random() < 0.45 else None)
            for col, t in EVENT_IDENTIFIERS.items()
        }
        price = None if rng.random() < 0.2 else round(rng.uniform(0, 50), 2)
        events.append({"event_id": f"e{i}", "event_date": "2026-11-02", **ids, "price": price})
    return events, person_map


def _person(event: dict, person_map: dict) -> str | None:
    rank = {t: i for i, t in enumerate(LINK_TYPES)}
    best = None
    for col, t in EVENT_IDENTIFIERS.items():
        hit = event[col] is not None and person_map.get(f"{t}:{event[col]}")
        if hit:
            r = rank[t] + (100 if hit[1] else 0)
            best = min(best or (r, hit[0]), (r, hit[0]))
    return best and best[1]


# one random world in the fast tier, three in the whole suite
@pytest.mark.parametrize(
    "seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)]
)
def test_events_and_sums_are_attributed_like_plain_python(spark, seed):
    events, person_map = _world(seed)
    cols = ["event_id", "event_date", *EVENT_IDENTIFIERS, "price"]
    ev = spark.createDataFrame(
        [tuple(e[c] for c in cols) for e in events],
        ", ".join(f"{c} {'double' if c == 'price' else 'string'}" for c in cols),
    ).withColumn("event_date", F.col("event_date").cast("date"))
    pm = spark.createDataFrame(
        [(n, p, h) for n, (p, h) in person_map.items()],
        "node string, person_id string, is_hub boolean",
    )
    want = {e["event_id"]: _person(e, person_map) for e in events}
    attributed = attribute_events(ev, pm, LINK_TYPES).select("event_id", "person_id")
    got = {r[0]: r[1] for r in attributed.collect()}
    assert got == want
    assert attributed.count() == len(events)  # each event once, none dropped or doubled
    assert len(set(want.values())) > 5 and None in want.values()  # not a trivial world

    sums = {
        "n": F.lit(1),
        "spent": F.col("price").cast("decimal(24,4)"),
        "dear": F.when(F.col("price") > 25, 1),
    }
    per_person = {
        r["person_id"]: (r["n"], r["spent"], r["dear"])
        for r in attributed_sums(ev, pm, LINK_TYPES, sums).collect()
    }
    expected = defaultdict(lambda: [0, None, None])
    for e in events:
        acc = expected[want[e["event_id"]]]
        acc[0] += 1
        if e["price"] is not None:
            acc[1] = (acc[1] or 0) + Decimal(str(e["price"]))
            if e["price"] > 25:
                acc[2] = (acc[2] or 0) + 1
    expected.pop(None)  # events of no one are not summed
    assert per_person == {p: tuple(v) for p, v in expected.items()}
