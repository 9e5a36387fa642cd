"""Benchmark: generate data at chosen scales, time every pipeline stage, and compare this
project's connected components with networkx on the same identity graph. Writes BENCHMARKS.md.

Not part of `make test`: run `make bench` (or `dmp bench --people 2000,10000`)."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import time
from datetime import date, timedelta

from jobs.config import Settings
from jobs.pipeline import JOBS
from jobs.report import say


def _machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )


def _cc_vs_networkx(lake) -> dict:
    import networkx as nx

    from jobs.identity import connected_components

    edges = lake.read("identity.edges").select("src", "dst").cache()
    n_edges = edges.count()
    t0 = time.time()
    ours = connected_components(edges).cache()
    n_nodes = ours.count()
    t_ours = time.time() - t0
    # networkx is the single-machine reference: the edge list comes to the driver on purpose
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


def run_bench(settings: Settings, people_scales: list[int], days: int, out_md: str) -> str:
    from jobs.generate import generate
    from jobs.lake import Lake
    from jobs.pipeline import run_pipeline
    from jobs.session import get_spark

    base = settings.resolve("data/bench")
    results = []
    spark = None
    for people in people_scales:
        root = f"{base}/{people}"
        shutil.rmtree(root, ignore_errors=True)
        storage = settings.storage.model_copy(
            update={
                "raw_root": f"{root}/raw",
                "lake_root": f"{root}/lake",
                "audience_root": f"{root}/audiences",
                "reports_root": f"{root}/reports",
            }
        )
        s = settings.model_copy(update={"storage": storage})
        t0 = time.time()
        summary = generate(root, people, days, 42, date(2026, 11, 1), progress=say)
        t_gen = time.time() - t0
        spark = spark or get_spark(s, app_name="dmp-bench")
        lake = Lake(spark, s)
        run_date = (date(2026, 11, 1) + timedelta(days=days - 1)).isoformat()
        t0 = time.time()
        reports = run_pipeline(lake, run_date)
        total = time.time() - t0
        cc = _cc_vs_networkx(lake)
        results.append(
            {
                "people": people,
                "events": summary["events"],
                "lines": summary["lines"],
                "generate_s": t_gen,
                "total_s": total,
                "stages": {r.job: r.seconds for r in reports},
                "cc": cc,
            }
        )
    peak_driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = _markdown(results, days, people_scales, peak_driver)
    with open(out_md, "w") as fh:
        fh.write(text)
    return text


def _markdown(results, days, scales, peak_mb) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {_machine()}. Spark `local[2]`, 8 shuffle partitions.",
        "",
        "Reproduce: `make bench` (= `dmp bench --people "
        + ",".join(map(str, scales))
        + f" --days {days}`). Each scale generates fresh data with "
        "seed 42, runs the whole pipeline once (cold: the lake starts empty), then runs this "
        "project's connected components and networkx on the identity graph it produced.",
        "",
        "## Pipeline",
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
    lines += [
        "",
        "## Connected components on the identity graph",
        "",
        "| people | nodes | edges | this project | networkx | agree |",
        "|---" * 6 + "|",
    ]
    for r in results:
        c = r["cc"]
        lines.append(
            f"| {r['people']:,} | {c['nodes']:,} | {c['edges']:,} | {c['ours_s']:.1f}s | "
            f"{c['networkx_s']:.1f}s | {'yes' if c['agree'] else 'NO'} |"
        )
    lines += [
        "",
        f"Peak driver (Python) memory: {peak_mb:,.0f} MiB.",
        "",
        "GraphFrames is not on the comparison: Maven Central as reachable from this machine "
        "serves no `io.graphframes` artifact (checked 2026-11-29), so it cannot be resolved here.",
        "",
    ]
    return "\n".join(lines)
