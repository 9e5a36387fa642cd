"""History-length benchmark: the same daily volume on lakes holding more and more days.

One world is generated for the longest history plus one day, and kept (``data/bench/history-
<people>-<days>``: a second run with the same parameters reuses it; delete it after changing the
generator). One lake then grows through
it: for each history length ``h``, a catch-up run brings the lake to day ``h`` and the daily run
of day ``h + 1`` is timed, stage by stage. The world's people keep their odds of being active on
a day from the first day to the last, so each daily run brings about the same number of events
(the section shows each day's lines). Last, a cold run over the
longest history on an empty lake, and one pass of Spark's and DuckDB's readers over its raw files
(what ingest is measured against).

Run: ``dmp-dev bench --history 14,90,180 --people 5000``. Writes its section of BENCHMARKS.md
between ``BEGIN`` and ``END`` (below the hand-written line, which ``dmp-dev bench`` keeps)."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import date, timedelta

from dev.landing import bring_back_all, bring_back_until, hold_out_after, settings_at
from jobs.config import Settings
from jobs.pipeline import JOBS
from jobs.report import say

DEFAULT_PEOPLE = "5000"
SEED = 42
BEGIN = "<!-- dmp-dev bench --history: begin -->"
END = "<!-- dmp-dev bench --history: end -->"


def day(start: str, n: int) -> str:
    """The n-th day of a world that starts on ``start`` (1 is its first)."""
    return (date.fromisoformat(start) + timedelta(days=n - 1)).isoformat()


def world(settings: Settings, people: int, days: int) -> tuple[str, dict]:
    """The generated world of these parameters, generated once and kept beside its summary
    (``start``: its first day). It ends yesterday: ingest quarantines events from the future."""
    from jobs.generate import generate

    root = settings.resolve(f"data/bench/history-{people}-{days}")
    done = f"{root}/summary.json"
    if os.path.exists(done):
        with open(done) as fh:
            return root, json.load(fh)
    shutil.rmtree(root, ignore_errors=True)
    start = date.today() - timedelta(days=days)
    summary = {**generate(root, people, days, SEED, start, progress=say), "start": str(start)}
    with open(done, "w") as fh:
        json.dump(summary, fh)
    return root, summary


def _timed_run(lake, run_date: str) -> dict:
    from jobs.pipeline import run_pipeline

    t0 = time.time()
    reports = run_pipeline(lake, run_date)
    by_job = {r.job: r for r in reports}
    return {
        "total_s": time.time() - t0,
        "stages": {r.job: r.seconds for r in reports},
        "events": by_job["ingest"].written.get("silver.events", 0),
        "lines": sum(v for k, v in by_job["ingest"].read.items() if k.endswith("_lines")),
    }


def reader_passes(spark, raw: str, sources: list[str]) -> dict:
    """One pass of each reader over the raw event files, every line parsed into every native
    field as text (a count alone lets both engines skip the parse): Spark's text reader, its
    JSON reader into the native schema, and DuckDB's ``read_json`` (2 threads) into a table."""
    import duckdb

    from jobs.ingest.events import RAW_FIELDS, RAW_SCHEMA

    paths = [f"{raw}/{s}/dt=*/*" for s in sources]
    passes = {"lines": spark.read.text(paths).count()}
    spark_reads = {
        "spark_text_s": spark.read.text(paths),
        "spark_json_s": spark.read.schema(RAW_SCHEMA).json(paths),
    }
    for key, frame in spark_reads.items():
        t0 = time.time()
        frame.write.format("noop").mode("overwrite").save()
        passes[key] = time.time() - t0
    con = duckdb.connect()
    con.execute("SET threads = 2")
    listed = ", ".join(f"'{p}'" for p in paths)
    columns = "{" + ", ".join(f"{f}: 'VARCHAR'" for f in RAW_FIELDS) + "}"
    t0 = time.time()
    con.execute(
        f"CREATE TABLE lines AS SELECT * FROM read_json([{listed}], "
        f"format = 'newline_delimited', columns = {columns}, ignore_errors = true)"
    )
    passes["duckdb_json_s"] = time.time() - t0
    return passes


def run_history_bench(settings: Settings, people: str, histories: list[int], out_md: str) -> str:
    from jobs.lake import Lake
    from jobs.session import get_spark

    if not people.isdigit():
        raise ValueError(f"--people: one number for --history, not {people!r}")
    people = int(people)
    histories = sorted(histories)
    root, summary = world(settings, people, histories[-1] + 1)
    s = settings_at(settings, root)
    sources = [x.name for x in s.ingest.sources]
    spark = get_spark(s, app_name="dmp-bench-history")
    raw = f"{root}/raw"
    for lake_dir in ("lake", "cold"):
        shutil.rmtree(f"{root}/{lake_dir}", ignore_errors=True)
    start = summary["start"]
    aside = hold_out_after(raw, day(start, histories[0]), sources)
    try:
        results = _grow(Lake(spark, s), aside, start, histories)
        cold_lake = Lake(spark, settings_at(settings, root, "cold"))
        cold = _cold(cold_lake, day(start, histories[-1]), sources)
    finally:
        bring_back_all(raw, aside)
    text = history_markdown(people, summary, results, cold)
    write_section(text, out_md)
    return text


def _grow(lake, aside: str, start: str, histories: list[int]) -> list[dict]:
    """The lake brought to each history length (catch-up), then the next day's run timed."""
    raw = lake.settings.storage.raw_root
    results = []
    for h in histories:
        bring_back_until(raw, aside, day(start, h))
        catch_up = _timed_run(lake, day(start, h))
        bring_back_until(raw, aside, day(start, h + 1))
        daily = _timed_run(lake, day(start, h + 1))
        results.append({"history": h, "catch_up": catch_up, "daily": daily})
        say(f"[bench] {h} days of history: daily run {daily['total_s']:.0f}s")
    return results


def _cold(lake, last: str, sources: list[str]) -> dict:
    """The cold run over the days up to ``last`` (the day after held out) on an empty lake,
    and the readers' passes over the same files."""
    raw = lake.settings.storage.raw_root
    hold_out_after(raw, last, sources)
    cold = _timed_run(lake, last)
    cold["readers"] = reader_passes(lake.spark, raw, sources)
    return cold


def _row(label: str, run: dict) -> str:
    stages = " | ".join(f"{run['stages'].get(j, 0):.0f}s" for j in JOBS)
    return f"| {label} | {run['lines']:,} | {run['events']:,} | {stages} | {run['total_s']:.0f}s |"


def history_markdown(people: int, summary: dict, results: list[dict], cold: dict) -> str:
    head = " | ".join(JOBS)
    first = results[0]["daily"]["total_s"]
    lines = [
        BEGIN,
        "## The daily run against the history it holds",
        "",
        f"`dmp-dev bench --history {','.join(str(r['history']) for r in results)} --people "
        f"{people}`: one world of {people:,} people over {results[-1]['history'] + 1} days "
        f"({summary['events']:,} events), one lake grown through it; at each history length "
        "the next day's run, stage by stage.",
        "",
        f"| days held | raw lines | new events | {head} | total |",
        "|---|---|---|" + "---|" * len(JOBS) + "---|",
        *[_row(f"{r['history']}", r["daily"]) for r in results],
        "",
        "| days held | daily total | daily / daily at the shortest history | daily / cold |",
        "|---|---|---|---|",
        *[
            f"| {r['history']} | {r['daily']['total_s']:.0f}s | "
            f"{r['daily']['total_s'] / first:.2f} | "
            f"{r['daily']['total_s'] / cold['total_s']:.2f} |"
            for r in results
        ],
        "",
        f"Cold run over the {results[-1]['history']} days on an empty lake:",
        "",
        f"| run | raw lines | new events | {head} | total |",
        "|---|---|---|" + "---|" * len(JOBS) + "---|",
        _row("cold", cold),
        "",
        _readers(cold),
        END,
    ]
    return "\n".join(lines) + "\n"


def _readers(cold: dict) -> str:
    r = cold["readers"]
    ingest = cold["stages"].get("ingest", 0)
    return "\n".join(
        [
            f"One pass of a reader over the same raw event files ({r['lines']:,} lines), against "
            "the cold run's ingest:",
            "",
            "| reader | seconds | ingest / reader |",
            "|---|---|---|",
            *[
                f"| {name} | {r[key]:.1f}s | {ingest / r[key]:.1f} |"
                for name, key in (
                    ("Spark `text`, every line", "spark_text_s"),
                    ("Spark `json`, every native field as text", "spark_json_s"),
                    ("DuckDB `read_json`, every native field as text, 2 threads", "duckdb_json_s"),
                )
            ],
        ]
    )


def write_section(text: str, out_md: str) -> None:
    """Puts the section between its markers in ``out_md`` (at the end the first time)."""
    old = ""
    if os.path.exists(out_md):
        with open(out_md) as fh:
            old = fh.read()
    begin = old.find(BEGIN)
    end = old.find(END, begin) if begin >= 0 else -1
    if end >= 0:
        new = old[:begin] + text.rstrip("\n") + old[end + len(END) :]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    with open(out_md + ".tmp", "w") as fh:
        fh.write(new)
    os.replace(out_md + ".tmp", out_md)
