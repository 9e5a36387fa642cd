"""Writes the generated world laid out as in object storage, plus the ground truth beside it.

``<out>/raw/<source>/dt=YYYY-MM-DD/part-NNNN.ndjson.gz`` (web, app, email),
``<out>/raw/crm/dt=YYYY-MM-DD/customers.csv`` and ``<out>/truth/*``. People are generated one at a
time from their own seeded random stream, so memory stays flat whatever the scale.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import yaml

from jobs.generate.behaviour import person_events
from jobs.generate.formats import ENCODERS, SOURCES, sources_config
from jobs.generate.population import (
    COUNTRIES,
    HOUSEHOLD_EVERY,
    HOUSEHOLD_SIZE,
    TEST_EMAILS,
    Person,
    crm_details,
    make_person,
    messy_email,
    messy_phone,
    typo_duplicate,
)
from jobs.ingest.crm import CRM_FIELDS

LATE_RATE = 0.02  # events delivered in the next day's folder
DUPLICATE_RATE = 0.01  # events delivered twice
MALFORMED_RATE = 0.002  # garbage lines per line written
BOT_UAS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0 Safari/537.36",
    "AhrefsBot/7.0 crawler",
]
PEOPLE_PER_SHARD = 20_000
CANONICAL_TEST_EMAILS = {e.strip().lower() for e in TEST_EMAILS}


class RawFiles:
    """Lazily opened gzip files, one per (source, day, shard), laid out and written as each
    source's collector writes them (``jobs/generate/formats.py``)."""

    def __init__(self, root: str, formats: dict[str, str]):
        self.root = root
        self.encoders = {source: ENCODERS[fmt] for source, fmt in formats.items()}
        self.handles: dict[tuple[str, str, int], gzip.GzipFile] = {}

    def _file(self, source: str, day: str, shard: int):
        key = (source, day, shard)
        fh = self.handles.get(key)
        if fh is None:
            path = os.path.join(self.root, self.encoders[source].path(source, day, shard))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fh = self.handles[key] = gzip.open(path, "wt", compresslevel=5, encoding="utf-8")
        return fh

    def lines(self, e: dict, arrival: str) -> list[str]:
        """The lines the event's collector writes for it, arriving on ``arrival``."""
        return self.encoders[e["source"]].lines(e, arrival)

    def write(self, e: dict, folder_day: str, shard: int, lines: list[str]) -> None:
        day = self.encoders[e["source"]].file_day(e, folder_day)
        fh = self._file(e["source"], day, shard)
        for line in lines:
            fh.write(line + "\n")

    def malformed(self, kind: str, e: dict, arrival: str, rng: random.Random) -> str:
        return self.encoders[e["source"]].malformed(kind, e, arrival, rng)

    def writes_announced_bots(self, source: str) -> bool:
        return self.encoders[source].writes_announced_bots()

    def close(self) -> None:
        for fh in self.handles.values():
            fh.close()


def _malformed_kind(rng: random.Random) -> str:
    return rng.choice(["truncated", "not_json", "bad_timestamp", "missing_event_id", "bad_price"])


class Truth:
    """Streams what the pipeline should find, from the events it will be able to see, into
    ``truth/``. Only identifiers that can be shared by construction (app devices of households,
    test emails) are counted in memory; everything else is written as it comes."""

    PEOPLE_FIELDS = [
        "person_key",
        "persona",
        "kind",
        "country",
        "ad_consent",
        "events",
        "winter_coat_views",
        "purchases",
        "winter_coat_purchases",
        "revenue",
        "is_browse_abandoner",
        "is_winter_coat_buyer",
    ]

    def __init__(self, folder: str):
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self.people = 0
        self._people_fh = open(os.path.join(folder, "people.csv"), "w", newline="")
        self._people = csv.DictWriter(self._people_fh, fieldnames=self.PEOPLE_FIELDS)
        self._people.writeheader()
        self._ids_fh = open(os.path.join(folder, "identifiers.csv"), "w", newline="")
        self._ids = csv.writer(self._ids_fh)
        self._ids.writerow(["person_key", "id_type", "value"])
        self.shareable: Counter = Counter()  # (type, value) -> people using it
        self.summary: Counter = Counter()

    def add_person(self, p: Person, stats: dict, seen: set[tuple[str, str]], consent: bool):
        for id_type, value in sorted(seen):
            self._ids.writerow([p.key, id_type, value])
            if id_type == "device" or (id_type == "email" and value in CANONICAL_TEST_EMAILS):
                self.shareable[(id_type, value)] += 1
        self.people += 1
        self._people.writerow(
            {
                "person_key": p.key,
                "persona": p.persona,
                "kind": p.kind,
                "country": p.country,
                "ad_consent": consent,
                **stats,
                "is_browse_abandoner": stats["winter_coat_views"] >= 2 and stats["purchases"] == 0,
                "is_winter_coat_buyer": stats["winter_coat_purchases"] >= 1,
            }
        )

    def close(self) -> None:
        self._people_fh.close()
        self._ids_fh.close()
        with open(os.path.join(self.folder, "shared_identifiers.csv"), "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id_type", "value", "people"])
            for (id_type, value), n in sorted(self.shareable.items()):
                if n > 1:
                    w.writerow([id_type, value, n])
        with open(os.path.join(self.folder, "summary.json"), "w") as fh:
            json.dump(dict(sorted(self.summary.items())), fh, indent=2)


def _identifiers_of(e: dict, p: Person) -> set[tuple[str, str]]:
    seen = set()
    for column, id_type in (
        ("anonymous_id", "cookie"),
        ("device_id", "device"),
        ("user_id", "user"),
    ):
        if e.get(column):
            seen.add((id_type, e[column]))
    if e.get("email"):
        seen.add(("email", e["email"].strip().lower()))
    if e.get("phone"):
        seen.add(("phone", p.phone))
    return seen


class CrmFile:
    """The CRM export, streamed: one CSV for the last day, plus the broken rows real exports
    contain (no customer id, a broken email)."""

    COLUMNS = CRM_FIELDS  # the contract ingestion reads

    def __init__(self, root: str, dt: str):
        folder = os.path.join(root, "crm", f"dt={dt}")
        os.makedirs(folder, exist_ok=True)
        self._fh = open(os.path.join(folder, "customers.csv"), "w", newline="", encoding="utf-8")
        self._w = csv.DictWriter(self._fh, fieldnames=self.COLUMNS)
        self._w.writeheader()
        self.rows = 0
        self.last: dict | None = None

    def write(self, row: dict) -> None:
        self._w.writerow(row)
        self.rows += 1
        self.last = row

    def close(self, truth: Truth) -> None:
        if self.last is not None:
            self._w.writerow(dict(self.last, customer_id="", email="orphan@example.org"))
            self._w.writerow(dict(self.last, customer_id="C-BROKEN-1", email="john.doe@", phone=""))
            truth.summary["crm_rows"] = self.rows + 2
            truth.summary["crm_rows_missing_id"] = 1
            truth.summary["crm_invalid_emails"] = 1
        self._fh.close()


def _crm_row(p: Person, rng: random.Random, updated: str, households: dict[int, dict]) -> dict:
    """A person's customer record. Household members after the first live at the first's
    address under the same surname (the namesakes record matching must keep apart: other
    first name, date of birth and email)."""
    row = {
        "customer_id": p.crm_id,
        "email": messy_email(rng, p.email),
        "phone": messy_phone(rng, p.phone, p.country) if p.phone else "",
        "first_name": p.first_name,
        "last_name": p.last_name,
        "country": p.country,
        "zip": p.zip,
        "opt_out": "Y" if p.crm_opt_out else "N",
        "updated_at": updated,
        **crm_details(p.crm_id, p.country),
    }
    household = p.index // HOUSEHOLD_EVERY
    if p.index % HOUSEHOLD_EVERY >= HOUSEHOLD_SIZE:
        return row
    head = households.setdefault(household, row)
    if head is not row and head["country"] == row["country"]:
        shared = ("last_name", "zip", "address", "city", "state")
        row.update({k: head[k] for k in shared})
    return row


@dataclass
class _World:
    """Where a generation writes, and its running truth."""

    files: RawFiles
    truth: Truth
    crm: CrmFile
    noise: random.Random  # traps that do not belong to a person
    start: datetime
    days: int
    last: str  # the last day, YYYY-MM-DD
    households: dict[int, dict] = field(default_factory=dict)  # -> first member's record


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _deliver(w: _World, e: dict, shard: int, rng: random.Random) -> int:
    """Writes one event as its collector would deliver it: sometimes a day late, sometimes
    twice, now and then with a malformed line beside it -> the lines it became."""
    summary = w.truth.summary
    dt = e["event_ts"][:10]
    if dt < w.last and rng.random() < LATE_RATE:
        dt = _next_day(dt)
        summary["late_events"] += 1
    lines = w.files.lines(e, dt)
    w.files.write(e, dt, shard, lines)
    summary["lines"] += len(lines)
    if rng.random() < DUPLICATE_RATE:  # a collector's retry: the same day or the next
        redelivery = dt if dt == w.last or rng.random() < 0.5 else _next_day(dt)
        w.files.write(e, redelivery, shard, lines)  # the same message, delivered again
        summary["duplicate_deliveries"] += len(lines)
        summary["lines"] += len(lines)
    if w.noise.random() < MALFORMED_RATE:
        kind = _malformed_kind(w.noise)
        w.files.write(e, dt, shard, [w.files.malformed(kind, e, dt, w.noise)])
        summary[f"malformed_{kind}"] += 1
        summary["malformed_lines"] += 1
        summary["lines"] += 1
    return len(lines)


def _tally(stats: Counter, e: dict, lines: int) -> None:
    """What the truth counts of one person's event (a collector may write an event as more
    than one line: Snowplow states consent apart); the revenue is summed by the caller."""
    stats["events"] += lines
    cat = e.get("category")
    if e["event_type"] == "product_view" and cat == "winter_coats":
        stats["winter_coat_views"] += 1
    if e["event_type"] == "purchase":
        stats["purchases"] += 1
        stats["winter_coat_purchases"] += cat == "winter_coats"


def _customer(w: _World, p: Person, rng: random.Random, seen: set) -> str:
    """Writes the person's customer record (and its typo'd duplicate, if planted) -> the time
    of the record, which states their consent when they opted out."""
    updated = f"{w.last}T23:00:00Z"
    row = _crm_row(p, rng, updated, w.households)
    w.crm.write(row)
    seen |= {("crm", p.crm_id), ("email", p.email)}
    duplicate = typo_duplicate(row)
    if duplicate is not None:
        w.crm.write(duplicate)
        seen.add(("crm", duplicate["customer_id"]))
        w.truth.summary["crm_typo_duplicates"] += 1
    if p.phone:
        seen.add(("phone", p.phone))
    return updated


def _person(w: _World, seed: int, index: int) -> None:
    """One person's events, customer record and truth."""
    p = make_person(seed, index)
    rng = random.Random(seed * 7_919 + index)
    shard = index // PEOPLE_PER_SHARD
    stats = Counter(events=0, winter_coat_views=0, purchases=0, winter_coat_purchases=0)
    revenue = 0.0
    seen: set[tuple[str, str]] = set()
    consent: tuple[str, bool] | None = None
    for _day, e in person_events(rng, p, w.start, w.days):
        lines = _deliver(w, e, shard, rng)
        w.truth.summary[f"events_{e['source']}"] += lines
        _tally(stats, e, lines)
        if e["event_type"] == "purchase":
            revenue += e["revenue"]
        if e.get("ad_consent") is not None:
            consent = (e["event_ts"], e["ad_consent"])
        seen |= _identifiers_of(e, p)
    w.truth.summary["events"] += stats["events"]
    if p.crm_id:
        updated = _customer(w, p, rng, seen)
        if p.crm_opt_out:
            consent = (updated, False)
    final_consent = consent[1] if consent else False  # no statement: no consent
    w.truth.add_person(p, {**stats, "revenue": round(revenue, 2)}, seen, final_consent)


def generate(  # noqa: PLR0913 -- the world's size, seed and start, where, and in which formats
    out: str,
    people: int,
    days: int,
    seed: int,
    start: date,
    progress=print,
    formats: dict[str, str] | None = None,
) -> dict:
    """Writes ``<out>/raw`` (each source in its collector's format: ``formats`` maps web, app
    and email to one of ``jobs/generate/formats.FORMATS``, native by default), ``<out>/truth``
    and ``<out>/sources.yaml`` (the ``ingest.sources`` that reads what was written)."""
    t0 = time.time()
    formats = {**dict.fromkeys(SOURCES, "native"), **(formats or {})}
    raw_root = os.path.join(out, "raw")
    last = start + timedelta(days=days - 1)
    w = _World(
        files=RawFiles(raw_root, formats),
        truth=Truth(os.path.join(out, "truth")),
        crm=CrmFile(raw_root, last.isoformat()),
        noise=random.Random(seed),
        start=datetime(start.year, start.month, start.day),
        days=days,
        last=last.isoformat(),
    )
    for index in range(people):
        _person(w, seed, index)
        if (index + 1) % 5000 == 0 or index + 1 == people:
            progress(
                f"  generated {index + 1:,}/{people:,} people, "
                f"{w.truth.summary['lines']:,} lines ({time.time() - t0:.0f}s)"
            )
    _write_bots(w.files, w.noise, start, days, w.truth)
    w.files.close()
    w.crm.close(w.truth)
    w.truth.summary.update(people=people, days=days, seed=seed, start=0)
    w.truth.summary["start"] = start.isoformat()
    w.truth.close()
    write_sources(out, formats)
    return dict(w.truth.summary)


def write_sources(out: str, formats: dict[str, str]) -> None:
    with open(os.path.join(out, "sources.yaml"), "w") as fh:
        fh.write("# ingest.sources for the raw files `dmp generate` wrote (under raw_root)\n")
        yaml.safe_dump({"ingest": {"sources": sources_config(formats)}}, fh, sort_keys=False)


def _write_bots(files: RawFiles, rng: random.Random, start: date, days: int, truth: Truth):
    """Crawlers announced in the user agent, and one quiet scraper given away by its volume."""
    n = max(2, truth.people // 300)
    for b in range(n + 1):
        stealth = b == n
        cookie = f"bot-{b:04d}-{rng.getrandbits(32):08x}"
        for day in range(days if not stealth else 1):
            count = 2100 if stealth else rng.randint(20, 80)
            t = datetime(start.year, start.month, start.day) + timedelta(days=day, hours=1)
            for i in range(count):
                e = {
                    "event_id": f"bot-{b}-{day}-{i}-{rng.getrandbits(32):08x}",
                    "event_type": "page_view",
                    "source": "web",
                    "event_ts": (t + timedelta(seconds=i * 2)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "anonymous_id": cookie,
                    "ip": f"192.0.2.{b % 250 + 1}",
                    "user_agent": WEB_UA_STEALTH if stealth else BOT_UAS[b % len(BOT_UAS)],
                    "page": f"/p/{rng.randint(1, 999)}",
                    "country": "US",
                }
                if stealth or files.writes_announced_bots("web"):
                    day = e["event_ts"][:10]
                    lines = files.lines(e, day)
                    files.write(e, day, 0, lines)
                    truth.summary["bot_events"] += len(lines)
                    truth.summary["lines"] += len(lines)
        truth.summary["bots"] += 1


WEB_UA_STEALTH = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0"
_ = COUNTRIES  # re-exported for callers that format phones
