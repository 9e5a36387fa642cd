"""Connected components on long chains: the hybrid (GraphX propagation for
``identity.propagation_supersteps``, then Large-Star / Small-Star) beside GraphX propagation
alone, on a chain of H hops inside a random graph of 4,800 edges. The chain's names follow its
order, the worst case for propagation (the smallest label moves one hop per superstep).

    .venv/bin/python -m dev.bench_chains 400,5000,50000 --graphx 400,2000

Prints a Markdown table for BENCHMARKS.md; each result is checked against networkx."""

from __future__ import annotations

import argparse
import random
import time

import networkx as nx

from jobs.config import load_settings
from jobs.identity.components import connected_components
from jobs.session import get_spark


def _graph(hops: int, seed: int = 1) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    others = [f"r{i:05d}" for i in range(6000)]
    edges = [(rng.choice(others), rng.choice(others)) for _ in range(4800)]
    edges += [(f"c{i:06d}", f"c{i + 1:06d}") for i in range(hops)]
    rng.shuffle(edges)
    return edges


def _timed(spark, edges, supersteps: int) -> tuple[float, dict]:
    df = spark.createDataFrame(edges, "src string, dst string")
    started = time.perf_counter()
    got = {r["node"]: r["component"] for r in connected_components(df, supersteps).collect()}
    return time.perf_counter() - started, got


def _check(edges, got: dict) -> None:
    g = nx.Graph(edges)
    expected = {n: min(c) for c in nx.connected_components(g) for n in c}
    assert got == expected, "components differ from networkx"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("hops", help="chain lengths, comma-separated")
    parser.add_argument("--graphx", default="", help="chain lengths to time GraphX alone on")
    args = parser.parse_args()
    settings = load_settings()
    spark = get_spark(settings, "bench-chains")
    spark.sparkContext.setLogLevel("ERROR")
    supersteps = settings.identity.propagation_supersteps
    _timed(spark, _graph(100), supersteps)  # warm the JVM and both engines
    print("| chain hops | edges | hybrid s | GraphX alone s |")
    print("|---:|---:|---:|---:|")
    alone = {int(h) for h in args.graphx.split(",") if h}
    for hops in (int(h) for h in args.hops.split(",")):
        edges = _graph(hops)
        took, got = _timed(spark, edges, supersteps)
        _check(edges, got)
        graphx = "not run"
        if hops in alone:
            took_alone, got = _timed(spark, edges, hops + 2)
            _check(edges, got)
            graphx = f"{took_alone:.1f}"
        print(f"| {hops:,} | {len(edges):,} | {took:.1f} | {graphx} |", flush=True)


if __name__ == "__main__":
    main()
