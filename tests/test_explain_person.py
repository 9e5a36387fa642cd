"""`dmp explain-person`: a hand-made identity graph and the explanation written out by hand."""

from __future__ import annotations

import pytest

from jobs.identity.explain import as_text, explain

MAP = "node string, id_type string, person_id string, is_hub boolean, hub_reason string, " + (
    "quarantined boolean"
)
EDGES = "src string, dst string, first_seen string, last_seen string, count long"
LINEAGE = "old_person_id string, new_person_id string, reason string, nodes long, run_date string"


def _tables(spark):
    person_map = spark.createDataFrame(
        [
            ("email:a", "email", "P1", False, None, False),
            ("cookie:c1", "cookie", "P1", False, None, False),
            ("cookie:c2", "cookie", "P1", False, None, False),
            ("user:u2", "user", "P2", False, None, False),  # split off P1 at its weakest link
            ("email:test", "email", "P3", True, "degree", False),  # a hub: a person of its own
            ("cookie:x", "cookie", "P4", False, None, False),
            ("cookie:y", "cookie", "P4", False, None, False),
        ],
        MAP,
    )
    edges = spark.createDataFrame(
        [
            ("cookie:c1", "email:a", "2026-11-01", "2026-11-03", 3),
            ("cookie:c2", "email:a", "2026-11-02", "2026-11-02", 1),
            ("cookie:c1", "email:test", "2026-11-01", "2026-11-01", 5),
            ("email:a", "user:u2", "2026-10-01", "2026-10-01", 1),
            ("cookie:x", "cookie:y", "2026-11-01", "2026-11-01", 9),
            ("email:a", "email:a", "2026-11-01", "2026-11-01", 4),  # a self-loop joins nothing
        ],
        EDGES,
    )
    lineage = spark.createDataFrame(
        [("P0", "P1", "merge", 1, "2026-11-02"), ("P4", "P5", "split", 1, "2026-11-02")], LINEAGE
    )
    return person_map, edges, lineage


def test_a_person_is_explained_edge_by_edge(spark):
    found = explain(*_tables(spark), "P1")
    assert [i["node"] for i in found["identifiers"]] == ["cookie:c1", "cookie:c2", "email:a"]
    joined = found["joined_by"]
    assert joined["total"] == 2
    assert [(e["src"], e["dst"], e["count"]) for e in joined["edges"]] == [
        ("cookie:c1", "email:a", 3),
        ("cookie:c2", "email:a", 1),
    ]
    apart = found["not_followed"]
    assert apart["total"] == 2
    assert [(e["dst"], e["why"].split(":")[0].split(" (")[0]) for e in apart["edges"]] == [
        ("email:test", "a hub"),
        ("user:u2", "cut by the per-person limits"),
    ]
    assert [(r["old_person_id"], r["reason"]) for r in found["lineage"]] == [("P0", "merge")]
    text = as_text(found)
    assert text.splitlines()[0] == "P1: 3 identifiers"
    assert "other person P3" in text and "other person P2" in text
    assert "2026-11-02 merge: P0 -> P1 (1 identifiers)" in text


def test_a_person_merged_away_is_found_in_the_lineage(spark):
    found = explain(*_tables(spark), "P0")
    assert found["identifiers"] == [] and found["joined_by"]["total"] == 0
    assert [r["new_person_id"] for r in found["lineage"]] == ["P1"]
    assert as_text(found).startswith("P0: not in the person map")


@pytest.mark.slow  # the fast tier explains deterministic edges; this adds the scored ones
def test_a_scored_edge_shows_its_probability_and_evidence(spark):
    person_map, edges, lineage = _tables(spark)
    person_map = person_map.unionByName(
        spark.createDataFrame(
            [
                ("crm:C1", "crm", "P6", False, None, False),
                ("crm:D1", "crm", "P6", False, None, False),
            ],
            MAP,
        )
    )
    edges = edges.unionByName(
        spark.createDataFrame([("crm:C1", "crm:D1", "2026-11-05", "2026-11-05", 0)], EDGES)
    )
    scored = spark.createDataFrame(
        [("crm:C1", "crm:D1", 0.9912, ["last_name:exact", "home:same address"])],
        "src string, dst string, match_probability double, evidence array<string>",
    )
    found = explain(person_map, edges, lineage, "P6", scored)
    (edge,) = found["joined_by"]["edges"]
    assert (edge["match_probability"], edge["evidence"]) == (0.9912, scored.first()["evidence"])
    line = "  crm:C1 -- crm:D1  matched p=0.991 (last_name:exact, home:same address), 2026-11-05"
    assert line in as_text(found).splitlines()
    plain = explain(*_tables(spark), "P1", scored)["joined_by"]["edges"]
    assert {e["match_probability"] for e in plain} == {None}
