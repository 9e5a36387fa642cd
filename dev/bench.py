"""Benchmark: generate data at chosen scales, time every pipeline stage, and compare this
project's connected components (Spark GraphX) with networkx on the same identity graph.
Writes BENCHMARKS.md.

Not part of `make test`: run `make bench` (= `dmp-dev bench`, the scales of ``DEFAULT_PEOPLE``).
The tables are regenerated; whatever the file holds below ``HAND_WRITTEN`` is kept."""

from __future__ import annotations

import gzip
import json
import os
import platform
import re
import resource
import shutil
import time
from datetime import date, timedelta

from dev.landing import bring_back_all, hold_out_after, settings_at
from jobs.config import Settings
from jobs.pipeline import JOBS
from jobs.report import say

DEFAULT_PEOPLE = "10000,100000,320000"
DEFAULT_DAYS = 14
HAND_WRITTEN = "<!-- written by hand below this line: dmp-dev bench keeps it -->"


def _machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )


def _cc_vs_networkx(lake) -> dict:
    """This project's connected components (GraphX) against networkx in memory, which is the
    single-machine reference: they must agree on every node."""
    import networkx as nx

    from jobs.identity import connected_components

    edges = lake.read("identity.edges").select("src", "dst").cache()
    n_edges = edges.count()
    t0 = time.time()
    ours = connected_components(edges).cache()
    n_nodes = ours.count()
    t_ours = time.time() - t0
    # the edge list comes to the driver on purpose: networkx runs in this process
    rows = edges.collect()
    t0 = time.time()
    g = nx.Graph()
    g.add_edges_from((r["src"], r["dst"]) for r in rows)
    reference = {n: min(c) for c in nx.connected_components(g) for n in c}
    t_nx = time.time() - t0
    got = {r["node"]: r["component"] for r in ours.select("node", "component").collect()}
    agree = got == reference
    ours.unpersist()
    edges.unpersist()
    return {
        "edges": n_edges,
        "nodes": n_nodes,
        "ours_s": t_ours,
        "networkx_s": t_nx,
        "agree": agree,
    }


PROFILE_SQL = """
SELECT person_id,
  COUNT(*) AS events,
  MIN(event_ts) AS first_seen,
  MAX(event_ts) AS last_seen,
  COUNT(DISTINCT session_id) AS sessions,
  SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
  ROUND(SUM(CASE WHEN event_type = 'purchase' THEN COALESCE(revenue, 0) ELSE 0 END), 2) AS revenue,
  SUM(CASE WHEN event_type = 'product_view' THEN 1 ELSE 0 END) AS product_views,
  SUM(CASE WHEN event_type = 'add_to_cart' THEN 1 ELSE 0 END) AS carts,
  SUM(CASE WHEN source = 'web' THEN 1 ELSE 0 END) AS web_events,
  SUM(CASE WHEN source = 'app' THEN 1 ELSE 0 END) AS app_events,
  SUM(CASE WHEN source = 'email' THEN 1 ELSE 0 END) AS email_events,
  COUNT(DISTINCT category) AS categories
FROM events WHERE person_id IS NOT NULL GROUP BY person_id
"""
# Spark runs the same text with COUNT(DISTINCT x) spelled as the profiles job spells it
# (jobs.profiles.transform.distinct_count): the same result, without Spark's Expand
SPARK_PROFILE_SQL = re.sub(r"COUNT\(DISTINCT (\w+)\)", r"SIZE(COLLECT_SET(\1))", PROFILE_SQL)


def _twice(run) -> tuple[float, float]:
    """Seconds of a first and a second run of the same query: the first carries the engine's
    warm-up (Spark's code generation and JIT, DuckDB's file metadata), the second does not."""
    times = []
    for _ in range(2):
        t0 = time.time()
        run()
        times.append(time.time() - t0)
    return times[0], times[1]


def _profiles_vs_duckdb(lake, run_date: str, folder: str) -> dict:
    """The core profile aggregation as one SQL text, run by Spark and by DuckDB (2 threads) on
    the same Parquet files of attributed events, twice each (first and warm); both results
    written to Parquet, then compared row by row."""
    import duckdb

    from jobs.profiles.run import attributed_events

    spark = lake.spark
    src, out_spark, out_duck = f"{folder}/events", f"{folder}/spark", f"{folder}/duckdb.parquet"
    cols = ["person_id", "event_ts", "session_id", "event_type", "revenue", "source", "category"]
    attributed_events(lake, run_date).select(*cols).write.mode("overwrite").parquet(src)
    spark.read.parquet(src).createOrReplaceTempView("events")
    spark_first, spark_warm = _twice(
        lambda: spark.sql(SPARK_PROFILE_SQL).write.mode("overwrite").parquet(out_spark)
    )
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{src}/*.parquet')")
    duck_first, duck_warm = _twice(
        lambda: con.execute(f"COPY ({PROFILE_SQL}) TO '{out_duck}' (FORMAT parquet)")
    )
    a = f"read_parquet('{out_spark}/*.parquet')"
    b = f"read_parquet('{out_duck}')"
    rows = con.execute(f"SELECT count(*) FROM {b}").fetchone()[0]
    differ = con.execute(
        f"SELECT count(*) FROM ((SELECT * FROM {a} EXCEPT SELECT * FROM {b}) "
        f"UNION ALL (SELECT * FROM {b} EXCEPT SELECT * FROM {a}))"
    ).fetchone()[0]
    return {
        "persons": rows,
        "spark_first_s": spark_first,
        "spark_s": spark_warm,
        "duckdb_first_s": duck_first,
        "duckdb_s": duck_warm,
        "differ": differ,
    }


def _jvm_peak_mib(spark) -> float:
    """Peak resident memory of the driver JVM (local mode: the whole Spark), from /proc."""
    pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _lookalike_numbers(lake, run_date: str) -> list[dict]:
    """Training / scoring time and quality of each lookalike of the daily run."""
    import json

    from pyspark.sql import functions as F

    if not lake.exists("gold.lookalike_evaluation"):
        return []
    rows = lake.read("gold.lookalike_evaluation").where(F.col("run_date") == run_date).collect()
    return [{"lookalike": r["lookalike"], **json.loads(r["metrics"])} for r in rows]


def run_bench(settings: Settings, people_scales: list[int], days: int, out_md: str) -> str:
    from jobs.generate import generate
    from jobs.lake import Lake
    from jobs.pipeline import run_job, run_pipeline
    from jobs.session import get_spark

    base = settings.resolve("data/bench")
    results = []
    spark = None
    for people in people_scales:
        root = f"{base}/{people}"
        shutil.rmtree(root, ignore_errors=True)
        s = settings_at(settings, root)
        t0 = time.time()
        summary = generate(root, people, days, 42, date(2026, 11, 1), progress=say)
        t_gen = time.time() - t0
        spark = spark or get_spark(s, app_name="dmp-bench")
        lake = Lake(spark, s)
        last = (date(2026, 11, 1) + timedelta(days=days - 1)).isoformat()
        before = (date(2026, 11, 1) + timedelta(days=days - 2)).isoformat()
        aside = hold_out_after(f"{root}/raw", before, [x.name for x in s.ingest.sources])
        t0 = time.time()
        reports = run_pipeline(lake, before)  # cold: every day but the last
        total = time.time() - t0
        bring_back_all(f"{root}/raw", aside)
        t0 = time.time()
        daily = run_pipeline(lake, last)  # the next day: incremental identity
        daily_total = time.time() - t0
        inc_map = lake.read("identity.person_map").select("node", "person_id")
        inc_map = inc_map.localCheckpoint()
        full = run_job(lake, "identity", last, full=True)
        same = lake.read("identity.person_map").select("node", "person_id")
        same = inc_map.exceptAll(same).isEmpty() and same.exceptAll(inc_map).isEmpty()
        by_job = {r.job: r for r in daily}
        cc = _cc_vs_networkx(lake)
        prof = _profiles_vs_duckdb(lake, last, f"{root}/duckdb-compare")
        results.append(
            {
                "people": people,
                "events": summary["events"],
                "lines": summary["lines"],
                "generate_s": t_gen,
                "total_s": total,
                "stages": {r.job: r.seconds for r in reports},
                "daily_s": daily_total,
                "daily": {r.job: r.seconds for r in daily},
                "daily_events": by_job["ingest"].written.get("silver.events", 0),
                "identity_incremental_s": by_job["identity"].seconds,
                "identity_full_s": full.seconds,
                "identity_recomputed": by_job["identity"].facts.get("recomputed identifiers"),
                "identity_nodes": full.facts.get("recomputed identifiers"),
                "identity_same": same,
                "identity_mode": by_job["identity"].facts.get("mode"),
                "cc": cc,
                "profiles": prof,
                "jvm_peak_mib": _jvm_peak_mib(spark),
                "lookalike": _lookalike_numbers(lake, last),
            }
        )
        say(f"[bench] {people:,} people done: cold {total:.0f}s, daily {daily_total:.0f}s")
    small = small_files(
        spark or get_spark(settings, app_name="dmp-bench"), settings, f"{base}/small-files"
    )
    peak_driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = _markdown(results, days, people_scales, peak_driver) + _small_files_markdown(small)
    with open(out_md + ".tmp", "w") as fh:
        fh.write(with_hand_written(text, out_md))
    os.replace(out_md + ".tmp", out_md)
    return text


SMALL_FILES, LINES_PER_FILE = 10_000, 5


def write_small_files(raw: str, files: int, lines: int) -> int:
    """A day of ``files`` small gzipped Segment logs of ``lines`` messages each, laid out as
    Segment's S3 destination writes them; -> lines written."""
    day_ms = 1_793_491_200_000  # 2026-11-01
    folder = f"{raw}/web/segment-logs/GenSmall01/{day_ms}"
    os.makedirs(folder, exist_ok=True)
    n = 0
    for f in range(files):
        with gzip.open(f"{folder}/{day_ms + f * 1000}.{f:08x}.gz", "wt") as fh:
            for i in range(lines):
                ts = f"2026-11-01T{(f // 600) % 24:02d}:{f % 60:02d}:{i:02d}.000Z"
                msg = {
                    "type": "track",
                    "event": "Product Viewed",
                    "messageId": f"m-{f}-{i}",
                    "anonymousId": f"a-{f % 997}",
                    "timestamp": ts,
                    "properties": {"product_id": f"p{i}", "category": "shoes", "price": 10},
                    "context": {"library": {"name": "analytics.js"}},
                }
                fh.write(json.dumps(msg) + "\n")
                n += 1
    return n


def small_files(spark, settings: Settings, root: str) -> list[dict]:
    """Ingest of a day of many small files, per batch limit: by bytes (the shipped default)
    and by 1,000 files a batch."""
    from jobs.ingest.sources import with_sources
    from jobs.lake import Lake
    from jobs.pipeline import run_job

    out = []
    for label, limits in (
        ("by bytes (1 GiB a batch)", {}),
        ("1,000 files a batch", {"max_files_per_batch": 1000}),
    ):
        shutil.rmtree(root, ignore_errors=True)
        lines = write_small_files(f"{root}/raw", SMALL_FILES, LINES_PER_FILE)
        s = with_sources(settings_at(settings, root), [{"name": "web", "format": "segment"}])
        s = s.model_copy(update={"ingest": s.ingest.model_copy(update=limits)})
        report = run_job(Lake(spark, s), "ingest", "2026-11-01")
        out.append(
            {
                "limit": label,
                "files": report.read.get("web_files", 0),
                "lines": lines,
                "new": report.written.get("silver.events", 0),
                "seconds": report.seconds,
            }
        )
        say(f"[bench] small files, {label}: {report.seconds:.0f}s")
    return out


def with_hand_written(generated: str, out_md: str) -> str:
    """The generated tables, then the part of the existing file below ``HAND_WRITTEN`` (the
    readings and the dated measurements), so a new run never loses them."""
    kept = ""
    if os.path.exists(out_md):
        with open(out_md) as fh:
            old = fh.read()
        if HAND_WRITTEN in old:
            kept = old[old.index(HAND_WRITTEN) + len(HAND_WRITTEN) :]
    return generated.rstrip("\n") + "\n\n" + HAND_WRITTEN + (kept or "\n")


def _small_files_markdown(rows: list[dict]) -> str:
    lines = [
        "",
        f"## Many small files ({SMALL_FILES:,} gzipped Segment logs of {LINES_PER_FILE} "
        "messages, one day)",
        "",
        "| batch limit | files | lines | new events | ingest | files/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['limit']} | {r['files']:,} | {r['lines']:,} | {r['new']:,} | "
            f"{r['seconds']:.0f}s | {r['files'] / max(r['seconds'], 1e-9):,.0f} |"
        )
    return "\n".join(lines) + "\n"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def _cold(results, days, scales) -> list[str]:
    """The header and the cold pipeline's table."""
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {_machine()}. Spark `local[2]`, 8 shuffle partitions.",
        "",
        "Reproduce: `dmp-dev bench --people "
        + ",".join(map(str, scales))
        + f" --days {days}` (`make bench` runs "
        + ", ".join(f"{int(x):,}" for x in DEFAULT_PEOPLE.split(","))
        + f" people, {DEFAULT_DAYS} days)."
        " Each scale generates fresh data (seed 42), runs the whole "
        f"pipeline cold on the first {days - 1} days (the lake starts empty), then the daily "
        "run of the last day (new event files only, incremental identity), then a full identity "
        "rebuild of that day for comparison; then this project's connected components against "
        "networkx, and the core profile aggregation in Spark against DuckDB, on the same data.",
        "",
        f"## Cold pipeline ({days - 1} days at once)",
        "",
        "| people | events | raw lines | ingest lines/s | " + " | ".join(JOBS) + " | total |",
        "|---" * 12 + "|",
    ]
    for r in results:
        st = r["stages"]
        lines.append(
            f"| {r['people']:,} | {r['events']:,} | {r['lines']:,} | "
            f"{r['lines'] / max(st['ingest'], 1e-9):,.0f} | "
            + " | ".join(f"{st[j]:.0f}s" for j in JOBS)
            + f" | {r['total_s']:.0f}s |"
        )
    if len(results) > 1:
        a, b = results[0], results[-1]
        lines += [
            "",
            f"Growth from the smallest to the largest scale: events x"
            f"{b['events'] / a['events']:.1f}, time x{b['total_s'] / a['total_s']:.1f}.",
        ]
    return lines


def _daily(results) -> list[str]:
    """The daily run's table and incremental identity against a rebuild."""
    lines = [
        "",
        "## The daily run (one new day) and incremental identity",
        "",
        "| people | new events | " + " | ".join(JOBS) + " | daily total | daily / cold |",
        "|---" * (len(JOBS) + 4) + "|",
    ]
    for r in results:
        d = r["daily"]
        lines.append(
            f"| {r['people']:,} | {r['daily_events']:,} | "
            + " | ".join(f"{d[j]:.0f}s" for j in JOBS)
            + f" | {r['daily_s']:.0f}s | {_ratio(r['daily_s'], r['total_s'])} |"
        )
    lines += [
        "",
        "| people | identity incremental | identity full rebuild | incremental / full | "
        "identifiers recomputed | same person map |",
        "|---" * 6 + "|",
    ]
    for r in results:
        lines.append(
            f"| {r['people']:,} | {r['identity_incremental_s']:.1f}s | "
            f"{r['identity_full_s']:.1f}s | "
            f"{_ratio(r['identity_incremental_s'], r['identity_full_s'])} | "
            f"{r['identity_recomputed']:,} of {r['identity_nodes']:,} | "
            f"{'yes' if r['identity_same'] else 'NO'} |"
        )
    return lines


def _lookalike(results) -> list[str]:
    """The lookalike models of the daily run."""
    lines = [
        "",
        "## Lookalike model (daily run)",
        "",
        "Training = fitting logistic regression and gradient-boosted trees and choosing on the "
        "validation split; scoring = every eligible person plus the reach thresholds. AUC on "
        "held-out seeds against the rest (positive-unlabelled, so below what a labelled test "
        "would show), next to the cosine-similarity baseline.",
        "",
        "| people | seed | eligible | model | training | scoring | AUC | baseline AUC | "
        "recall at 10% | baseline recall at 10% |",
        "|---" * 10 + "|",
    ]
    for r in results:
        for la in r.get("lookalike", []):
            lines.append(
                f"| {r['people']:,} | {la['seed_size']:,.0f} | {la['eligible']:,.0f} | "
                f"{la['model']} | {la['train_seconds']:.1f}s | {la['score_seconds']:.1f}s | "
                f"{la['auc']:.3f} | {la['baseline_auc']:.3f} | "
                f"{la.get('recall_at_10pct', 0):.2f} | "
                f"{la.get('baseline_recall_at_10pct', 0):.2f} |"
            )
    return lines


def _components(results) -> list[str]:
    """This project's connected components against networkx."""
    lines = [
        "",
        "## Connected components on the identity graph",
        "",
        "The same edge list (`identity.edges`) through this project's `connected_components` "
        "(names to order-preserving long ids, Spark GraphX's `ConnectedComponents`, ids back to "
        "names, the convergence check) and through networkx in memory; agree = both give every "
        "node the same component.",
        "",
        "| people | nodes | edges | this project (GraphX) | networkx | agree |",
        "|---" * 6 + "|",
    ]
    for r in results:
        c = r["cc"]
        lines.append(
            f"| {r['people']:,} | {c['nodes']:,} | {c['edges']:,} | {c['ours_s']:.1f}s | "
            f"{c['networkx_s']:.1f}s | {'yes' if c['agree'] else 'NO'} |"
        )
    return lines


def _profiles(results) -> list[str]:
    """The profile aggregation in Spark and in DuckDB."""
    lines = [
        "",
        "## Profile aggregation: Spark vs DuckDB on the same Parquet",
        "",
        "The core profile aggregation (`dev/bench.py: PROFILE_SQL`: counts, first / last seen, "
        "sessions, purchases, revenue, channel mix, distinct categories per person) run by both "
        "engines on the same attributed events, each twice in a row: the first run carries the "
        "engine's warm-up (Spark's code generation and JIT), the second is the warm figure the "
        "ratio is taken on. Both outputs written to Parquet and compared row by row.",
        "",
        "| people | persons | Spark first | Spark warm | DuckDB first (2 threads) | DuckDB warm "
        "| Spark / DuckDB, warm | Spark / DuckDB, first | rows that differ |",
        "|---" * 9 + "|",
    ]
    for r in results:
        p = r["profiles"]
        lines.append(
            f"| {r['people']:,} | {p['persons']:,} | {p['spark_first_s']:.1f}s "
            f"| {p['spark_s']:.1f}s | {p['duckdb_first_s']:.2f}s | {p['duckdb_s']:.2f}s "
            f"| {_ratio(p['spark_s'], p['duckdb_s'])} "
            f"| {_ratio(p['spark_first_s'], p['duckdb_first_s'])} | {p['differ']} |"
        )
    return lines


def _memory(results, peak_mb) -> list[str]:
    """Peak memory, and why GraphFrames is not compared."""
    lines = [
        "",
        "## Memory",
        "",
        f"Peak driver (Python) memory: {peak_mb:,.0f} MiB. Peak JVM resident memory (local mode: "
        "driver and executors in one JVM), cumulative over the run: "
        + ", ".join(f"{r['jvm_peak_mib']:,.0f} MiB after {r['people']:,} people" for r in results)
        + ".",
        "",
        "GraphFrames is not on the comparison: Maven Central as reachable from this machine "
        "serves no `io.graphframes` artifact (checked again 2026-12-01; the `graphframes-py` "
        "wheel on PyPI carries no JVM code). Connected components run on Spark's own GraphX, "
        'the engine GraphFrames offers as `algorithm="graphx"`.',
        "",
    ]
    return lines


def _markdown(results, days, scales, peak_mb) -> str:
    return "\n".join(
        _cold(results, days, scales)
        + _daily(results)
        + _lookalike(results)
        + _components(results)
        + _profiles(results)
        + _memory(results, peak_mb)
    )
