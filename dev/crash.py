"""Crash-safety harness: kill a job with SIGKILL at a random moment, rerun it, and prove the lake
and the audience folders end identical to an uninterrupted run (contents compared, not counts).

For each job: the jobs before it run once into a base copy; a reference copy runs the job
uninterrupted; each trial copies the base, starts ``dmp <job>`` as its own process group, kills
it after a random delay, reruns the job, and compares every table and audience file with the
reference. Values that are times of the run itself (``ingested_at``, run reports, locks) are
left out of the comparison; everything else must match row for row.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobs.config import Settings
from jobs.report import say

VOLATILE_TABLES = {"reports.runs", "quality.results", "identity.report"}
VOLATILE_COLUMNS = {"ingested_at", "run_seconds"}


def _storage(settings: Settings, root: Path) -> Settings:
    storage = settings.storage.model_copy(
        update={
            "lake_root": str(root / "lake"),
            "raw_root": str(root / "raw"),
            "audience_root": str(root / "audiences"),
            "reports_root": str(root / "reports"),
        }
    )
    return settings.model_copy(update={"storage": storage})


def snapshot(spark, settings: Settings) -> dict[str, list]:
    """Every table's rows (sorted, volatile columns dropped) and every audience part's rows."""
    from jobs.lake import TABLES, Lake

    lake = Lake(spark, settings)
    here = str(Path(settings.storage.lake_root).parent)  # file paths differ by copy only

    def norm(v) -> str:
        return str(v).replace(here, "<root>")

    out: dict[str, list] = {}
    for table in TABLES:
        if table in VOLATILE_TABLES or not lake.exists(table):
            continue
        df = lake.read(table)
        cols = sorted(c for c in df.columns if c not in VOLATILE_COLUMNS)
        out[table] = sorted(tuple(norm(v) for v in r) for r in df.select(*cols).collect())
    root = Path(settings.storage.audience_root)
    for folder in sorted(root.glob("*/*/dt=*")) if root.exists() else []:
        key = str(folder.relative_to(root))
        out[f"audience {key} complete"] = [(folder / "_SUCCESS").exists()]
        for part in sorted(p for p in folder.iterdir() if p.is_dir()):
            rows = []
            for f in sorted(part.glob("part-*")):
                opener = gzip.open if f.suffix == ".gz" else open
                if f.suffix in (".gz", ".csv"):
                    with opener(f, "rt") as fh:
                        rows += fh.read().splitlines()[1:]
            out[f"audience {key}/{part.name}"] = sorted(rows)
    return out


def _run_killed(settings: Settings, job: str, run_date: str, delay: float) -> bool:
    """Runs ``dmp job`` in its own process group and SIGKILLs the group after ``delay``
    seconds. -> True if it was killed, False if it finished first."""
    import yaml

    conf = Path(settings.storage.lake_root).parent / "crash-conf.yaml"
    conf.write_text(yaml.safe_dump(settings.model_dump(mode="json")))  # exactly these settings
    env = dict(os.environ)
    env.update(
        {
            "DMP_CONF": str(conf),
            "DMP_STORAGE__LAKE_ROOT": settings.storage.lake_root,
            "DMP_STORAGE__RAW_ROOT": settings.storage.raw_root,
            "DMP_STORAGE__AUDIENCE_ROOT": settings.storage.audience_root,
            "DMP_STORAGE__REPORTS_ROOT": settings.storage.reports_root,
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", job, "--date", run_date],
        env=env,
        cwd=str(Path(__file__).resolve().parent.parent),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)  # let the kernel reap the JVM child of the group
        return True


def crash_trials(  # noqa: PLR0913 -- the harness: where, what, how often
    spark, settings: Settings, workdir: Path, run_date: str, jobs: list[str], trials: int, seed=7
) -> list[dict]:
    """-> one result per trial: job, delay, killed, identical, differing keys."""
    from jobs.lake import Lake
    from jobs.pipeline import JOBS, run_job

    rng = random.Random(seed)
    order = list(JOBS)
    results = []
    base = workdir / "base"
    for job in sorted(jobs, key=order.index):
        # the lake as it is just before `job` (jobs run in pipeline order, so the base grows)
        base_settings = _storage(settings, base)
        for before in order[: order.index(job)]:
            marker = base / f".done-{before}"
            if not marker.exists():
                run_job(Lake(spark, base_settings), before, run_date)
                marker.touch()
        ref = workdir / f"ref-{job}"
        shutil.rmtree(ref, ignore_errors=True)
        shutil.copytree(base, ref)
        ref_settings = _storage(settings, ref)
        t0 = time.time()
        run_job(Lake(spark, ref_settings), job, run_date)
        took = time.time() - t0
        expected = snapshot(spark, ref_settings)
        for trial in range(trials):
            victim = workdir / f"trial-{job}-{trial}"
            shutil.rmtree(victim, ignore_errors=True)
            shutil.copytree(base, victim)
            vs = _storage(settings, victim)
            delay = rng.uniform(6.0, 6.0 + took)  # JVM start-up (~6s), then into the job
            killed = _run_killed(vs, job, run_date, delay)
            run_job(Lake(spark, vs), job, run_date)  # the rerun after the crash
            got = snapshot(spark, vs)
            differ = sorted(k for k in set(expected) | set(got) if expected.get(k) != got.get(k))
            results.append(
                {
                    "job": job,
                    "trial": trial,
                    "delay_s": round(delay, 1),
                    "killed": killed,
                    "identical": not differ,
                    "differ": differ,
                }
            )
            say(f"[crash] {job} trial {trial}: killed after {delay:.1f}s={killed}, diff={differ}")
            shutil.rmtree(victim, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
        shutil.copytree(ref, base)  # the next job starts from this job's uninterrupted result
        (base / f".done-{job}").touch()
    return results


def run_crash_test(
    settings: Settings, people: int, days: int, jobs: list[str], trials: int, workdir: str
) -> list[dict]:
    """Generate a sample, then ``trials`` SIGKILL trials per job (``dmp-dev crash-test``)."""
    from datetime import date, timedelta

    from jobs.generate import generate
    from jobs.session import get_spark

    root = Path(workdir)
    shutil.rmtree(root, ignore_errors=True)
    generate(str(root / "base"), people, days, 42, date(2026, 11, 1), progress=say)
    run_date = (date(2026, 11, 1) + timedelta(days=days - 1)).isoformat()
    spark = get_spark(settings, app_name="dmp-crash-test")
    return crash_trials(spark, settings, root, run_date, jobs, trials)
