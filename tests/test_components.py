"""connected_components against networkx on graphs with known structure."""

import random

import networkx as nx

from jobs.identity import connected_components


def _check(spark, edges, isolated=()):
    rows = [(a, b) for a, b in edges] + [(n, n) for n in isolated]
    df = spark.createDataFrame(rows, "src string, dst string")
    got = {r["node"]: r["component"] for r in connected_components(df).collect()}
    g = nx.Graph()
    g.add_edges_from(edges)
    g.add_nodes_from(isolated)
    expected = {n: min(c) for c in nx.connected_components(g) for n in c}
    assert got == expected


def test_long_chain_and_star(spark):
    chain = [(f"n{i:03d}", f"n{i + 1:03d}") for i in range(60)]
    star = [("hub", f"s{i}") for i in range(20)]
    _check(spark, chain + star, isolated=["lonely"])


def test_random_graph_matches_networkx(spark):
    rng = random.Random(3)
    nodes = [f"v{i}" for i in range(300)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(220)]
    _check(spark, [e for e in edges if e[0] != e[1]], isolated=["z1", "z2"])
