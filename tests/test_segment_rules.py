"""The segment language: validation errors that name file, segment and key; compiled rules
checked on a hand-made population."""

from datetime import date
from pathlib import Path

import pytest

from jobs.config import ConfigError
from jobs.segments.rules import (
    all_conditions,
    evaluate,
    event_sums,
    load_segments,
    unseen_values,
)

from .segment_fixtures import events_frame

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, text):
    (tmp_path / "s.yaml").write_text(text)
    return tmp_path


def test_shipped_segments_load():
    segs = load_segments(ROOT / "conf" / "segments")
    assert set(segs) == {
        "browse_abandoners_winter_coats",
        "recent_visitors",
        "cart_abandoners",
        "winter_coat_buyers",
        "high_value_customers",
        "lapsing_customers",
        "new_visitors",
        "app_only_users",
        "email_engaged",
    }


@pytest.mark.parametrize(
    "body,expected",
    [
        (
            "rule: {events: {type: purchase, within_days: 0, count: {gte: 1}}}",
            "rule.events.within_days: expected a whole number of days",
        ),
        (
            "rule: {events: {type: purchase, within_dayz: 3, count: {gte: 1}}}",
            "rule.events: unknown key(s) ['within_dayz']",
        ),
        ("rule: {profile: {field: shoe_size, gte: 3}}", "rule.profile.field: expected one of"),
        ("rule: {all: [{segment: nope}]}", "rule refers to unknown segment 'nope'"),
        ("rule: {any: []}", "rule.any: expected a non-empty list"),
        (
            "rule: {events: {type: purchase, within_days: 3, count: {gte: many}}}",
            "expected a number",
        ),
        ("rules: {}", "unknown key(s) ['rules']"),
    ],
)
def test_errors_name_file_segment_and_key(tmp_path, body, expected):
    folder = write(tmp_path, "segments:\n  broken:\n    " + body + "\n")
    with pytest.raises(ConfigError) as err:
        load_segments(folder)
    msg = str(err.value)
    assert str(folder / "s.yaml") in msg and "broken" in msg and expected in msg, msg


def test_cycles_and_bad_names_are_refused(tmp_path):
    folder = write(
        tmp_path, "segments:\n  a: {rule: {segment: b}}\n  b: {rule: {not: {segment: a}}}\n"
    )
    with pytest.raises(ConfigError, match="circular reference a -> b -> a"):
        load_segments(folder)
    folder = write(
        tmp_path, "segments:\n  'Bad Name!': {rule: {profile: {field: events, gte: 1}}}\n"
    )
    with pytest.raises(ConfigError, match="lowercase letters, digits and underscores"):
        load_segments(folder)


def test_rules_compile_to_the_hand_computed_members(spark, tmp_path):
    folder = write(
        tmp_path,
        """segments:
  browsers:
    rule:
      all:
        - events: {type: product_view, category: coats, within_days: 7, count: {gte: 2}}
        - not: {events: {type: purchase, within_days: 7, count: {gte: 1}}}
  big_spenders:
    rule: {events: {type: purchase, within_days: 30, sum: {field: revenue, gte: 100}}}
  engaged_not_browsers:
    rule: {all: [{profile: {field: events, gte: 3}}, {not: {segment: browsers}}]}
""",
    )
    segs = load_segments(folder)
    ev = [
        # p1: two coat views this week, no purchase -> browsers
        ("p1", "product_view", "coats", None, date(2026, 11, 9)),
        ("p1", "product_view", "coats", None, date(2026, 11, 10)),
        # p2: two coat views but one is 8 days old; bought for 120 -> big spender, engaged
        ("p2", "product_view", "coats", None, date(2026, 11, 2)),
        ("p2", "product_view", "coats", None, date(2026, 11, 9)),
        ("p2", "purchase", "coats", 120.0, date(2026, 11, 9)),
        # p3: views and a purchase this week: not a browser; 60 revenue: not a big spender
        ("p3", "product_view", "coats", None, date(2026, 11, 9)),
        ("p3", "product_view", "coats", None, date(2026, 11, 9)),
        ("p3", "purchase", "coats", 60.0, date(2026, 11, 10)),
    ]
    events = events_frame(spark, ev)
    profiles = spark.createDataFrame(
        [("p1", 2), ("p2", 3), ("p3", 3)], "person_id string, events int"
    )

    def members(events):
        return {
            (r["segment"], r["person_id"])
            for r in evaluate(profiles, events, segs, "2026-11-10").collect()
        }

    expected = {
        ("browsers", "p1"),
        ("big_spenders", "p2"),
        ("engaged_not_browsers", "p2"),
        ("engaged_not_browsers", "p3"),
    }
    assert members(events) == expected
    # the same members from the conditions' sums as the profiles job aggregates them alongside
    # its own columns (gold.segment_event_sums), with no events given
    sums = events.groupBy("person_id").agg(*event_sums(all_conditions(segs), "2026-11-10"))
    via_sums = evaluate(profiles, None, segs, "2026-11-10", sums=sums).collect()
    assert {(r["segment"], r["person_id"]) for r in via_sums} == expected
    # from a table partitioned by day, only the days of the widest window (30) are read: the
    # files of an older day are gone, and the same members come out
    table = tmp_path / "events"
    old = [("p3", "purchase", "coats", 500.0, date(2026, 8, 1))]
    events_frame(spark, ev + old).write.format("delta").partitionBy("event_date").save(str(table))
    gone = list((table / "event_date=2026-08-01").glob("*.parquet"))
    assert gone
    for f in gone:
        f.unlink()
    assert members(spark.read.format("delta").load(str(table))) == expected


def test_a_filter_value_no_event_has_warns_with_the_closest_names(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "segments:\n"
        "  buyers:\n"
        "    rule: {events: {type: purchse, within_days: 7, count: {gte: 1}}}\n"
        "  coats:\n"
        "    rule: {events: {type: [product_view, Video Played], category: Winter_Coats,"
        " within_days: 7, count: {gte: 1}}}\n"
    )
    segments = load_segments(tmp_path)
    known = {
        "event_type": {"purchase", "product_view", "page_view", "Video Played"},
        "category": {"winter_coats", "shoes"},
    }
    warnings = unseen_values(segments, known)
    assert warnings == [
        "segment 'buyers': no event has type 'purchse' (closest known: purchase)",
        "segment 'coats': no event has category 'Winter_Coats' (closest known: winter_coats)",
    ]
    assert (
        unseen_values(
            segments,
            {"event_type": known["event_type"] | {"purchse"}, "category": {"Winter_Coats"}},
        )
        == []
    )
