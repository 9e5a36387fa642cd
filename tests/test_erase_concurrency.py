"""An erasure and the jobs that write the lake exclude each other (``jobs/locks.py``)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import date

import pytest
from pyspark.sql import functions as F

from jobs.config import OpsSettings
from jobs.generate import generate
from jobs.lake import Lake
from jobs.locks import erase_lock
from jobs.pipeline import JOBS, MAINTENANCE, run_job
from jobs.privacy.erase import erase
from jobs.report import JobReport

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out

START, DAYS = date(2026, 11, 1), 3
FIRST, LAST = "2026-11-02", "2026-11-03"
WRITERS = [*JOBS, *MAINTENANCE]


@pytest.fixture(scope="module")
def world(spark, settings, tmp_path_factory):
    """A lake exported for the first two days; the third day's files held back."""
    root = tmp_path_factory.mktemp("erase-concurrency")
    generate(str(root), 100, DAYS, 11, START, lambda m: 0)
    held = root / "held"
    for source in ("web", "app", "email"):
        day = root / "raw" / source / f"dt={LAST}"
        if day.exists():
            (held / source).mkdir(parents=True)
            shutil.move(str(day), str(held / source / f"dt={LAST}"))
    storage = settings.storage.model_copy(
        update={
            "raw_root": str(root / "raw"),
            "lake_root": str(root / "lake"),
            "audience_root": str(root / "audiences"),
        }
    )
    ops = OpsSettings(lock_poll_seconds=0.2, lock_wait_minutes=10)
    lake = Lake(spark, settings.model_copy(update={"storage": storage, "ops": ops}))
    for job in ("ingest", "identity", "profiles", "segments", "export"):
        run_job(lake, job, FIRST)
    return lake, root, held


def _exported_person_with_an_email(lake: Lake) -> str:
    """A person in the audience files by a hashed email (a generic file also lists people it
    knows by no identifier at all: nothing in such a row is theirs to find)."""
    emails = lake.read("identity.person_map").where(F.col("id_type") == "email")
    sent = lake.read("gold.exports").join(emails, "person_id", "left_semi")
    return sent.select("person_id").distinct().orderBy("person_id").first()["person_id"]


def test_an_erasure_waits_for_an_ingest_and_an_export_waits_for_the_erasure(
    world, capsys, monkeypatch
):
    """An ingest runs; an erasure asked for meanwhile waits for it; an export started while the
    erasure runs waits for the erasure. All three finish, and nothing is lost."""
    lake, root, held = world
    ingesting = threading.Event()
    ingest = JOBS["ingest"]

    def ingest_inside_its_lock(*args, **kwargs):
        # holding the lock is not enough: a writer that took it lets it go again when it then
        # sees an erasure, so the erasure is asked for only once the ingest is past that check
        ingesting.set()
        return ingest(*args, **kwargs)

    monkeypatch.setitem(JOBS, "ingest", ingest_inside_its_lock)
    pid = _exported_person_with_an_email(lake)
    for source in held.iterdir():  # the third day lands
        shutil.move(str(source / f"dt={LAST}"), str(root / "raw" / source.name / f"dt={LAST}"))
    before = lake.read("silver.events").count()
    done: dict = {}
    said: list[str] = []
    export_waits = threading.Event()

    def erasure():
        with erase_lock(lake, LAST, WRITERS, said.append):
            said.append("erasing")
            assert export_waits.wait(120)  # the export below is held up by this erasure
            done["erase"] = erase(lake, JobReport("erase", LAST), [], [pid], raw_files=False)

    def export():  # the first day's export again, after the erasure
        done["export"] = run_job(lake, "export", FIRST)

    threads = {
        "ingest": threading.Thread(target=lambda: done.update(ingest=run_job(lake, "ingest", LAST)))
    }
    threads["ingest"].start()
    assert ingesting.wait(120)
    threads["erase"] = threading.Thread(target=erasure)
    threads["erase"].start()
    _wait_until(lambda: "erasing" in said)  # the ingest has finished
    assert said[0].startswith("[lock] erasure waits for ingest"), said
    assert "ingest" in done
    capsys.readouterr()
    threads["export"] = threading.Thread(target=export)
    threads["export"].start()
    err = ""

    def export_waiting() -> bool:
        nonlocal err
        err += capsys.readouterr().err  # the lock's one message, on stderr
        return "[lock] export waits for erase" in err

    _wait_until(export_waiting)
    export_waits.set()
    for t in threads.values():
        t.join()
    assert {"ingest", "erase", "export"} <= set(done)
    # the ingest's lines all landed; the erasure took exactly the person's rows
    new = done["ingest"].written["silver.events"]
    erased = json.loads(done["erase"]["rows_deleted"]).get("silver.events", 0)
    assert new > 0 and erased > 0 and done["erase"]["audience_folders_rewritten"] >= 1
    assert lake.read("silver.events").count() == before + new - erased
    assert lake.read("identity.person_map").where(F.col("person_id") == pid).count() == 0
    # the export ran after the erasure: the person is in none of its audiences
    shipped = lake.read("gold.exports").where(F.col("run_date") == FIRST)
    assert done["export"].written and shipped.count() > 0
    assert shipped.where(F.col("person_id") == pid).count() == 0


def _wait_until(check, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
