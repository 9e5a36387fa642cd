"""The profile aggregation against the same numbers counted in plain Python on random events
(nulls, repeated sessions / orders / devices, several sources)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from jobs.profiles.transform import behaviour

COLUMNS = (
    "person_id string, event_ts timestamp, session_id string, source string, event_type string, "
    "order_id string, revenue double, device_id string, anonymous_id string, "
    "ad_consent boolean, country string"
)
TYPES = ["page_view", "product_view", "add_to_cart", "purchase", "email_open", "email_click"]


def _maybe(rng: random.Random, value: str, p_null: float = 0.3) -> str | None:
    return None if rng.random() < p_null else value


def _events(seed: int) -> list[tuple]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1)
    rows = []
    for _ in range(400):
        person = f"p{rng.randrange(25)}"
        kind = rng.choice(TYPES)
        rows.append(
            (
                person,
                start + timedelta(minutes=rng.randrange(14 * 24 * 60)),
                _maybe(rng, f"s{rng.randrange(6)}"),  # session ids repeat across persons too
                rng.choice(["web", "app", "email"]),
                kind,
                _maybe(rng, f"o{rng.randrange(5)}") if kind == "purchase" else None,
                float(rng.randrange(1, 200)) if kind == "purchase" else None,
                _maybe(rng, f"d{rng.randrange(3)}", 0.6),
                _maybe(rng, f"c{rng.randrange(4)}"),
                None,
                "FR",
            )
        )
    return rows


def _expected(rows: list[tuple]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for p in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == p]
        buys = [r for r in mine if r[4] == "purchase"]
        out[p] = {
            "events": len(mine),
            "first_seen": min(r[1] for r in mine),
            "last_seen": max(r[1] for r in mine),
            "sessions": len({r[2] for r in mine if r[2] is not None}),
            "web_events": sum(r[3] == "web" for r in mine),
            "app_events": sum(r[3] == "app" for r in mine),
            "email_events": sum(r[3] == "email" for r in mine),
            "product_views": sum(r[4] == "product_view" for r in mine),
            "add_to_carts": sum(r[4] == "add_to_cart" for r in mine),
            "purchases": len({r[5] for r in buys if r[5] is not None}),
            "revenue": sum(r[6] for r in buys),
            "email_engagements": sum(r[4] in ("email_open", "email_click") for r in mine),
            "devices": len({r[7] for r in mine if r[7] is not None}),
            "cookies": len({r[8] for r in mine if r[8] is not None}),
        }
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_behaviour_counts_equal_a_python_count(spark, seed):
    rows = _events(seed)
    got = behaviour(spark.createDataFrame(rows, COLUMNS), "2026-11-15").collect()
    expected = _expected(rows)
    assert {r["person_id"] for r in got} == set(expected)
    for r in got:
        want = expected[r["person_id"]]
        assert {k: r[k] for k in want} == pytest.approx(want), r["person_id"]
        assert r["recency_days"] == (datetime(2026, 11, 15).date() - want["last_seen"].date()).days


ID_COLUMNS = (
    "person_id string, event_ts timestamp, email_sha256 string, email_google_sha256 string, "
    "email_uid2_sha256 string, phone_sha256 string, phone_digits_sha256 string, "
    "device_id string, country string"
)
BLOCKED = "e-blocked"


def _id_events(seed: int) -> list[tuple]:
    rng = random.Random(seed)
    minutes = rng.sample(range(14 * 24 * 60), 300)  # distinct times: "latest" is unambiguous
    rows = []
    for m in minutes:
        email = _maybe(rng, rng.choice([f"e{rng.randrange(4)}", BLOCKED]), 0.5)
        phone = _maybe(rng, f"t{rng.randrange(4)}", 0.6)
        rows.append(
            (
                f"p{rng.randrange(20)}",
                datetime(2026, 11, 1) + timedelta(minutes=m),
                email,
                None if email is None else f"g-{email}",
                None if email is None else f"u-{email}",
                phone,
                None if phone is None else f"d-{phone}",
                _maybe(rng, f"dev{rng.randrange(3)}", 0.5),
                rng.choice(["FR", "DE", "US"]),
            )
        )
    return rows


def _latest(rows: list[tuple], col: int, when) -> tuple | None:
    seen = [r for r in rows if when(r)]
    return max(seen, key=lambda r: r[1])[col] if seen else None


def test_identifiers_are_the_latest_seen_and_skip_blocked_events(spark):
    from jobs.profiles.identifiers import person_identifiers

    rows = _id_events(3)
    got = {
        r["person_id"]: r.asDict()
        for r in person_identifiers(
            spark.createDataFrame(rows, ID_COLUMNS), None, None, [BLOCKED]
        ).collect()
    }
    assert set(got) == {r[0] for r in rows}
    for p, g in got.items():
        mine = [r for r in rows if r[0] == p and r[2] != BLOCKED]
        want = {
            "email_sha256": _latest(mine, 2, lambda r: r[2] is not None),
            "email_google_sha256": _latest(mine, 3, lambda r: r[2] is not None),
            "email_uid2_sha256": _latest(mine, 4, lambda r: r[2] is not None),
            "phone_sha256": _latest(mine, 5, lambda r: r[5] is not None),
            "phone_digits_sha256": _latest(mine, 6, lambda r: r[5] is not None),
            "device_id": _latest(mine, 7, lambda r: r[7] is not None),
            "country": _latest(mine, 8, lambda r: True),
            "zip": None,
        }
        assert {k: g[k] for k in want} == want, p


def test_top_category_is_the_highest_score_and_a_tie_goes_to_the_first_name(spark):
    from datetime import date

    from jobs.profiles.transform import category_affinity

    day = date(2026, 11, 10)
    rows = [  # (person, category, event type): views weigh 1, carts 2, purchases 4
        *[("p1", cat, "product_view") for cat in ["tents", "books", "lamps"]],  # a 3-way tie
        ("p2", "books", "product_view"),
        ("p2", "tents", "purchase"),
        ("p3", "lamps", "add_to_cart"),
        *[("p3", "books", "product_view")] * 2,  # 2 views tie with 1 cart
    ]
    for order in (rows, rows[::-1]):
        df = spark.createDataFrame(
            [(p, c, t, day) for p, c, t in order],
            "person_id string, category string, event_type string, event_date date",
        )
        top = {
            r["person_id"]: r["top_category"] for r in category_affinity(df, "2026-11-10").collect()
        }
        assert top == {"p1": "books", "p2": "tents", "p3": "books"}


def test_ties_at_the_same_instant_are_settled_the_same_way_every_run(spark):
    from jobs.profiles.identifiers import person_identifiers

    at = datetime(2026, 11, 3, 12, 0)
    ids = [  # two emails and two phones seen at the same instant
        ("p1", at, "e1", "g-e1", "u-e1", "t2", "d-t2", "dev1", "FR"),
        ("p1", at, "e2", "g-e2", "u-e2", "t1", "d-t1", "dev2", "DE"),
    ]
    consent = [
        ("p1", at, s, None, "page_view", None, None, None, None, c, "FR")
        for s, c in [("s1", True), ("s2", False)]
    ]  # a yes and a no at the same instant
    for order in (1, -1):
        got = person_identifiers(
            spark.createDataFrame(ids[::order], ID_COLUMNS), None, None, []
        ).first()
        # one event's hashes, the larger email (and phone) winning the tie, on every run
        assert (got["email_sha256"], got["email_google_sha256"], got["email_uid2_sha256"]) == (
            "e2",
            "g-e2",
            "u-e2",
        )
        assert (got["phone_sha256"], got["phone_digits_sha256"]) == ("t2", "d-t2")
        assert got["device_id"] == "dev2"
        said = behaviour(spark.createDataFrame(consent[::order], COLUMNS), "2026-11-15").first()
        assert said["event_consent"] is False


def test_only_advertising_ids_are_sent_as_device_ids_and_identify_names_fill_in(spark):
    """A Segment event's own device id (an IDFV) is never an audience's MADID; a row ingested
    before advertising ids had their column (no source name) is native, whose device id is one.
    Names an identify call gave stand in when there is no CRM record."""
    from jobs.profiles.identifiers import person_identifiers

    at = datetime(2026, 11, 3, 12, 0)
    cols = (
        "person_id string, event_ts timestamp, source_name string, device_id string, "
        "advertising_id string, email_sha256 string, email_google_sha256 string, "
        "email_uid2_sha256 string, phone_sha256 string, phone_digits_sha256 string, "
        "country string, first_name_sha256 string, last_name_sha256 string, "
        "first_name_meta_sha256 string, last_name_meta_sha256 string"
    )
    rows = [
        ("p1", at, "web", "IDFV-1", None, None, None, None, None, None, "US", "f", "l", "fm", "lm"),
        (
            "p2",
            at,
            None,
            "MAID-2",
            None,
            None,
            None,
            None,
            None,
            None,
            "US",
            None,
            None,
            None,
            None,
        ),
        (
            "p3",
            at,
            "app",
            "IDFV-3",
            "IDFA-3",
            None,
            None,
            None,
            None,
            None,
            "US",
            None,
            None,
            None,
            None,
        ),
    ]
    got = {
        r["person_id"]: r.asDict()
        for r in person_identifiers(spark.createDataFrame(rows, cols), None, None, []).collect()
    }
    assert {p: g["device_id"] for p, g in got.items()} == {
        "p1": None,
        "p2": "MAID-2",
        "p3": "IDFA-3",
    }
    names = (
        "first_name_sha256",
        "last_name_sha256",
        "first_name_meta_sha256",
        "last_name_meta_sha256",
    )
    assert tuple(got["p1"][n] for n in names) == ("f", "l", "fm", "lm")
    assert got["p2"]["first_name_sha256"] is None
