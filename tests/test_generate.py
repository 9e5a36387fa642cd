"""The generator is deterministic for a seed and its ground truth adds up."""

import csv
import gzip
import hashlib
import json
from datetime import date
from pathlib import Path

from jobs.generate import generate


def _digest(root: Path) -> dict[str, str]:
    out = {}
    for f in sorted(root.rglob("*")):
        if f.is_file():
            data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
            out[str(f.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return out


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = generate(str(tmp_path / "a"), 120, 4, 5, date(2026, 11, 1), progress=lambda m: None)
    b = generate(str(tmp_path / "b"), 120, 4, 5, date(2026, 11, 1), progress=lambda m: None)
    generate(str(tmp_path / "c"), 120, 4, 6, date(2026, 11, 1), progress=lambda m: None)
    assert a == b
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_truth_adds_up_with_the_files(tmp_path):
    s = generate(str(tmp_path), 150, 5, 3, date(2026, 11, 1), progress=lambda m: None)
    lines = 0
    person_event_ids, unparseable = set(), 0
    for f in (tmp_path / "raw").rglob("*.ndjson.gz"):
        for line in gzip.open(f, "rt"):
            lines += 1
            try:
                event_id = json.loads(line).get("event_id")
            except json.JSONDecodeError:
                unparseable += 1  # planted malformed lines: counted, no id to collect
                continue
            if event_id and not event_id.startswith(("bad-", "bot-")):
                person_event_ids.add(event_id)
    assert lines == s["lines"]
    assert len(person_event_ids) == s["events"]  # duplicate deliveries collapse to one id
    assert unparseable == s.get("malformed_truncated", 0) + s.get("malformed_not_json", 0)
    people = list(csv.DictReader(open(tmp_path / "truth" / "people.csv")))
    assert len(people) == 150
    assert sum(int(p["events"]) for p in people) == s["events"]
    # every line is an event, a duplicate delivery, a malformed line or a bot hit
    assert s["events"] + s["duplicate_deliveries"] + s["malformed_lines"] + s["bot_events"] == lines
    # the planted browse-abandoners exist
    assert any(p["is_browse_abandoner"] == "True" for p in people)
