"""connected_components against networkx on graphs with known structure."""

import random

import networkx as nx
import pytest

from jobs.identity import connected_components


def _check(spark, edges, isolated=()):
    rows = [(a, b) for a, b in edges] + [(n, n) for n in isolated]
    df = spark.createDataFrame(rows, "src string, dst string")
    got = {r["node"]: r["component"] for r in connected_components(df).collect()}
    g = nx.Graph()
    g.add_nodes_from(isolated)
    g.add_edges_from((a, b) for a, b in edges if a != b)
    g.add_nodes_from(a for a, b in edges)
    expected = {n: min(c) for c in nx.connected_components(g) for n in c}
    assert got == expected


def test_long_chain_star_isolated_self_loops_and_duplicates(spark):
    chain = [(f"n{i:03d}", f"n{i + 1:03d}") for i in range(60)]
    star = [("hub", f"s{i}") for i in range(20)]
    loops = [("self", "self"), ("n010", "n010")]
    dups = [("n001", "n000"), ("n000", "n001"), ("hub", "s3")]
    _check(spark, chain[::-1] + star + loops + dups, isolated=["lonely"])


@pytest.mark.parametrize("seed,n_nodes,n_edges", [(3, 300, 220), (4, 200, 400), (5, 500, 150)])
def test_random_graphs_match_networkx(spark, seed, n_nodes, n_edges):
    rng = random.Random(seed)
    nodes = [f"v{i}" for i in range(n_nodes)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(n_edges)]
    _check(spark, edges, isolated=["z1", "z2"])


def test_a_path_longer_than_the_superstep_cap_raises(spark):
    """GraphX's Pregel stops silently at its cap: the check turns that into an error."""
    from jobs.identity.components import NoConvergenceError

    path = [(f"p{i:02d}", f"p{i + 1:02d}") for i in range(12)]
    df = spark.createDataFrame(path, "src string, dst string")
    with pytest.raises(NoConvergenceError, match="identity.max_iterations"):
        connected_components(df, max_iterations=3).collect()
    assert {r["component"] for r in connected_components(df, max_iterations=20).collect()} == {
        "p00"
    }
