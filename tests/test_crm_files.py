"""Customer files are read by the names in their headers, not by position: ingestion and
the landing-zone erasure alike."""

from __future__ import annotations

import csv
import hashlib

import pytest

from jobs.ingest.crm import CORE_FIELDS, CRM_FIELDS, header_fields
from jobs.lake import Lake
from jobs.pipeline import run_job
from jobs.privacy.raw_files import erase_crm

DAY = "2026-11-01"
IN_ORDER = [
    CORE_FIELDS,
    ["c1", "Ann@Example.com", "+1 415 555 0101", "Ann", "Lee", "US", "94105", "N", DAY],
]
# another CRM's export: its own order and words, a free-text column, no opt-out column
REORDERED = [  # fmt: skip
    [
        "Postcode",
        "E-mail Address",
        "Surname",
        "Notes",
        "Customer ID",
        "Country",
        "Last Updated",
        "Town",
        "DOB",
        "Sex",
    ],
    [
        "SW1A 1AA",
        " bob@example.org ",
        "Brown",
        "called 2x, prefers SMS",
        "c2",
        "gb",
        DAY,
        "London",
        "31/12/1999",
        "M",
    ],
    ["10115", "cleo@example.de", "Cruz", "", "c3", "DE", DAY, "", "1999-02-30", ""],
]
NO_ID = [["email", "phone"], ["dan@example.com", "+44 20 7946 0000"]]


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


@pytest.mark.parametrize(
    "header,expected",
    [
        (",".join(CRM_FIELDS), CRM_FIELDS),
        (
            '\ufeff"Customer ID",E-Mail,Mobile,First Name,Family Name,Zip Code,Notes',
            ["customer_id", "email", "phone", "first_name", "last_name", "zip", None],
        ),
        ("email,Email Address,id", ["email", None, "customer_id"]),  # a field read once
        ("", []),
    ],
)
def test_header_names_map_to_fields(header, expected):
    assert header_fields(header) == expected


def _write(folder, name: str, rows: list[list[str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)


@pytest.fixture(scope="module")
def crm_lake(spark, settings, tmp_path_factory):
    root = tmp_path_factory.mktemp("crm-files")
    day = root / "raw" / "crm" / f"dt={DAY}"
    for name, rows in [("a.csv", IN_ORDER), ("b.csv", REORDERED), ("c.csv", NO_ID)]:
        _write(day, name, rows)
    storage = settings.storage.model_copy(
        update={"raw_root": str(root / "raw"), "lake_root": str(root / "lake")}
    )
    lake = Lake(spark, settings.model_copy(update={"storage": storage}))
    report = run_job(lake, "ingest", DAY)
    return lake, report, day


def test_a_reordered_file_is_read_by_its_names(crm_lake):
    lake, report, _ = crm_lake
    got = {r["customer_id"]: r.asDict() for r in lake.read("silver.crm").collect()}
    assert set(got) == {"c1", "c2", "c3"}
    assert got["c1"]["email_sha256"] == sha("ann@example.com")
    assert (got["c1"]["zip"], got["c1"]["country"], got["c1"]["opt_out"]) == ("94105", "US", False)
    assert got["c2"]["email_sha256"] == sha("bob@example.org")
    assert got["c2"]["last_name_sha256"] == sha("brown")
    assert (got["c2"]["zip"], got["c2"]["country"]) == ("SW1A 1AA", "GB")
    assert got["c2"]["first_name_sha256"] is None and got["c2"]["opt_out"] is None
    assert got["c3"]["email_sha256"] == sha("cleo@example.de")
    # the optional fields by their own words: Town, DOB (day first outside the US), Sex
    assert got["c2"]["city_meta_sha256"] == sha("london") and got["c2"]["state_meta_sha256"] is None
    assert [got["c2"][f"dob_{p}_sha256"] for p in ("year", "month", "day")] == [
        sha("1999"),
        sha("12"),
        sha("31"),
    ]
    assert got["c2"]["gender_meta_sha256"] == sha("m")
    assert got["c3"]["dob_year_sha256"] is None and got["c3"]["city_meta_sha256"] is None
    # the free text was never read, and the report says so
    assert "Notes" in report.facts["crm columns not read"]
    assert "notes" not in {c.lower() for c in lake.read("bronze.crm").columns}


def test_no_customer_id_column_quarantines_the_rows_and_a_bad_date_only_its_field(crm_lake):
    lake, _, _ = crm_lake
    q = lake.read("silver.quarantine").where("source = 'crm'").collect()
    assert sorted((r["reason"], r["source_file"].rsplit("/", 1)[1]) for r in q) == [
        ("invalid_date_of_birth", "b.csv"),  # c3's 30 February: the row stays, without it
        ("missing_customer_id", "c.csv"),
    ]


def test_erasure_finds_the_person_in_a_reordered_file(crm_lake, spark, settings):
    lake, _, day = crm_lake
    files, removed = erase_crm(spark, lake.settings, {"email": [sha("bob@example.org")]})
    assert (files, removed) == (1, 1)
    with open(day / "b.csv", newline="") as fh:
        assert list(csv.reader(fh)) == [REORDERED[0], REORDERED[2]]
    with open(day / "a.csv", newline="") as fh:
        assert list(csv.reader(fh)) == IN_ORDER
