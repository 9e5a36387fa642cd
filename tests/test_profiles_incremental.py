"""Incremental profiles: yesterday's running state, plus the day's new events, plus the persons
identity moved identifiers between aggregated again, gives exactly the profiles (and activation
identifiers) a full aggregation of all events gives, on random events and random identity
changes (merges, splits, identifiers becoming hubs, new identifiers, late events, events that
carry two persons' identifiers)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from jobs.activation.identifiers import identifier_aggregates
from jobs.identity.resolve import attribute_events
from jobs.profiles.incremental import changed_nodes, next_state, persons_to_redo
from jobs.profiles.transform import behaviour_parts, finish_profiles, profile_state

LINKS = ["user", "crm", "email", "phone", "device", "cookie"]
DAY1, DAY2 = datetime(2026, 11, 1), datetime(2026, 11, 2)
EVENTS = (
    "event_id string, event_date date, event_ts timestamp, ingested_at timestamp, "
    "session_id string, source string, event_type string, order_id string, revenue double, "
    "category string, anonymous_id string, device_id string, user_id string, "
    "email_sha256 string, email_google_sha256 string, email_uid2_sha256 string, "
    "phone_sha256 string, phone_digits_sha256 string, ad_consent boolean, country string"
)
TYPES = ["page_view", "product_view", "add_to_cart", "purchase", "email_open"]
COLUMN = {"cookie": "anonymous_id", "device": "device_id", "user": "user_id"}


def _world(seed: int):
    """-> (events, map before, map after): identifiers of 80 persons, events over two days
    (the second day's, and a few late first-day ones, ingested later), and a second map where
    some identifiers moved (merges), split off to new persons, or became hubs."""
    rng = random.Random(seed)
    persons = {}
    for p in range(80):
        ids = [("cookie", f"c{p}_{i}") for i in range(rng.randint(1, 3))]
        if rng.random() < 0.6:
            ids.append(("device", f"d{p}"))
        if rng.random() < 0.5:
            ids.append(("user", f"u{p}"))
        persons[f"P{p}"] = ids
    before = {f"{t}:{v}": (pid, False) for pid, ids in persons.items() for t, v in ids}
    after = dict(before)
    nodes = sorted(before)
    for n in rng.sample(nodes, 5):
        after[n] = (rng.choice(sorted(persons)), False)  # moved to another person
    for n in rng.sample(nodes, 3):
        after[n] = (f"N{n}", False)  # split off on its own
    for n in rng.sample(nodes, 6):
        after[n] = (after[n][0], not after[n][1])  # became a hub, or stopped being one
    for n in rng.sample(nodes, 8):
        before[n] = (before[n][0], True)  # a hub before (and after, unless flipped above)
        after[n] = (after[n][0], not after[n][1]) if rng.random() < 0.5 else after[n]
    for i in range(5):  # identifiers first seen on day 2
        after[f"cookie:new{i}"] = (rng.choice(sorted(persons)), False)
    rows = []

    def event(eid: str, ts: datetime, ingested: datetime, cols: dict) -> None:
        kind = rng.choice(TYPES)
        email = f"e{rng.randrange(40)}" if rng.random() < 0.2 else None
        rows.append(
            (
                eid,
                ts.date(),
                ts,
                ingested,
                f"s{rng.randrange(60)}",
                rng.choice(["web", "app"]),
                kind,
                f"o{rng.randrange(50)}" if kind == "purchase" else None,
                float(rng.randrange(1, 90)) + 0.25 if kind == "purchase" else None,
                rng.choice(["coats", "boots", None]),
                cols.get("anonymous_id"),
                cols.get("device_id"),
                cols.get("user_id"),
                email,
                None if email is None else f"g{email}",
                None if email is None else f"u{email}",
                None,
                None,
                rng.choice([True, False, None]),
                rng.choice(["FR", "DE"]),
            )
        )

    first, second = DAY1 + timedelta(hours=23), DAY2 + timedelta(hours=23)
    for i in range(1500):
        day2 = rng.random() < 0.4
        late = not day2 and rng.random() < 0.1  # a day-1 event ingested on day 2
        pid = rng.choice(sorted(persons))
        own = persons[pid] + ([("cookie", f"new{rng.randrange(5)}")] if day2 else [])
        carried = rng.sample(own, rng.randint(1, min(2, len(own))))
        if rng.random() < 0.3:  # another person's identifier too (a shared device, a login)
            other = persons[rng.choice(sorted(persons))]
            carried = [*carried[:1], rng.choice(other)]
        ts = (DAY2 if day2 else DAY1) + timedelta(minutes=rng.randrange(24 * 60))
        event(f"ev{i}", ts, second if day2 or late else first, {COLUMN[t]: v for t, v in carried})
    # planted: a day-1 event with a cookie and another person's login. The login stops being a
    # hub: the event moves from the cookie's person (found only through the old map) to the
    # login's. The other login becomes a hub: the event moves to the cookie's person (found
    # only through the new map). Neither cookie changed, so neither cookie's person is redone
    # for its identifiers.
    for case, hub_before in (("old", True), ("new", False)):
        before[f"cookie:z{case}"] = after[f"cookie:z{case}"] = (f"PZ{case}", False)
        before[f"user:y{case}"] = (f"PY{case}", hub_before)
        after[f"user:y{case}"] = (f"PY{case}", not hub_before)
        at = DAY1 + timedelta(hours=9)
        event(f"both-{case}", at, first, {"anonymous_id": f"z{case}", "user_id": f"y{case}"})
        event(f"z-{case}", at, first, {"anonymous_id": f"z{case}"})
        event(f"y-{case}", at, first, {"user_id": f"y{case}"})
    return rows, before, after


def _map(spark, m: dict):
    rows = [(n, n.split(":")[0], pid, hub, False) for n, (pid, hub) in m.items()]
    schema = "node string, id_type string, person_id string, is_hub boolean, quarantined boolean"
    return spark.createDataFrame(rows, schema)


def _rows(df):
    return sorted((r.asDict(recursive=True) for r in df.collect()), key=lambda r: r["person_id"])


@pytest.mark.parametrize("seed", [5])
def test_incremental_state_gives_the_full_rebuilds_profiles(spark, seed):
    rows, before, after = _world(seed)
    events = spark.createDataFrame(rows, EVENTS)
    old_map, new_map = _map(spark, before), _map(spark, after)
    parts = behaviour_parts(identifier_aggregates(["e0"]))  # one blocked email hash
    watermark = DAY1 + timedelta(hours=23)
    day1 = events.where(F.col("ingested_at") <= F.lit(watermark))
    day1 = day1.where(F.col("event_date") <= F.lit("2026-11-01").cast("date"))
    state1 = profile_state(attribute_events(day1, old_map, LINKS), parts).localCheckpoint()
    is_new = (F.col("ingested_at") > F.lit(watermark)) | (
        F.col("event_date") > F.lit("2026-11-01").cast("date")
    )
    new = events.where(is_new)
    assert 0 < new.count() < events.count()

    changed = changed_nodes(old_map, new_map)
    redo = persons_to_redo(events.where(~is_new), changed, old_map, new_map, LINKS)
    assert redo.where(F.col("person_id").isNull()).count() == 0
    incremental = next_state(state1, events, new, redo, new_map, LINKS, parts)
    full = profile_state(attribute_events(events, new_map, LINKS), parts)

    def profiles(state):
        return finish_profiles(state, new_map, None, "2026-11-02", parts).drop("run_date")

    got, want = _rows(profiles(incremental)), _rows(profiles(full))
    assert [r["person_id"] for r in got] == [r["person_id"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert g == w, g["person_id"]
    # the test means something: persons were redone, and others kept their state
    n_redo, n_persons = redo.count(), len(want)
    assert 0 < n_redo < n_persons
    assert {p: hub for p, hub in after.values()} != {p: hub for p, hub in before.values()}
