"""connected_components against networkx on graphs with known structure, with propagation
alone and with the Large-Star / Small-Star finish doing most of the work."""

import random

import networkx as nx
import pytest

from jobs.identity import connected_components
from jobs.identity.components import _max_rounds, recorded, star_roots


def _check(spark, edges, isolated=(), **options):
    rows = [(a, b) for a, b in edges] + [(n, n) for n in isolated]
    df = spark.createDataFrame(rows, "src string, dst string")
    got = {r["node"]: r["component"] for r in connected_components(df, **options).collect()}
    g = nx.Graph()
    g.add_nodes_from(isolated)
    g.add_edges_from((a, b) for a, b in edges if a != b)
    g.add_nodes_from(a for a, b in edges)
    expected = {n: min(c) for c in nx.connected_components(g) for n in c}
    assert got == expected


# the fast tier runs the cut-off at every superstep; the whole suite the usual limit too
@pytest.mark.parametrize("supersteps", [pytest.param(30, marks=pytest.mark.slow), 1])
def test_long_chain_star_isolated_self_loops_and_duplicates(spark, supersteps):
    chain = [(f"n{i:03d}", f"n{i + 1:03d}") for i in range(60)]
    star = [("hub", f"s{i}") for i in range(20)]
    loops = [("self", "self"), ("n010", "n010")]
    dups = [("n001", "n000"), ("n000", "n001"), ("hub", "s3")]
    _check(spark, chain[::-1] + star + loops + dups, ["lonely"], supersteps=supersteps)


@pytest.mark.parametrize(
    "seed,n_nodes,n_edges,supersteps",
    [
        (3, 300, 220, 30),
        (4, 200, 400, 1),
        (5, 500, 150, 2),
        pytest.param(6, 2000, 2100, 1, marks=pytest.mark.slow),
    ],
)
def test_random_graphs_match_networkx(spark, seed, n_nodes, n_edges, supersteps):
    rng = random.Random(seed)
    nodes = [f"v{i}" for i in range(n_nodes)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(n_edges)]
    _check(spark, edges, isolated=["z1", "z2"], supersteps=supersteps)


@pytest.mark.slow
def test_chains_of_thousands_of_hops_finish(spark):
    """Three chains of 6,000 hops: names in the chain's order (propagation moves the smallest
    label one hop per superstep), in reverse, and shuffled; beside a random graph. Propagation
    alone would need 6,000 supersteps."""
    rng = random.Random(8)
    ordered = [f"a{i:05d}" for i in range(6001)]
    shuffled = [f"c{i:05d}" for i in range(6001)]
    rng.shuffle(shuffled)
    chains = [ordered, [f"b{i:05d}" for i in range(6001)][::-1], shuffled]
    edges = [(c[i], c[i + 1]) for c in chains for i in range(len(c) - 1)]
    others = [f"r{i}" for i in range(3000)]
    edges += [(rng.choice(others), rng.choice(others)) for _ in range(2500)]
    rng.shuffle(edges)
    with recorded() as finish:
        _check(spark, edges, supersteps=5, checkpoint=False)
    # after 5 supersteps each chain still holds thousands of labels that an edge joins
    assert finish["finish_label_edges"] >= 3 * (6000 // 6)
    assert 0 < finish["finish_rounds"] <= _max_rounds(18003 + 3000)
    with recorded() as none_left:
        _check(spark, [("x", "y"), ("y", "z")], supersteps=30)
    assert none_left == {"finish_label_edges": 0, "finish_rounds": 0}


@pytest.mark.slow
def test_star_rounds_stay_logarithmic_on_a_path(spark):
    """The finish on its own: a 4,096-node path in id order (the worst order for propagation)
    ends in stars around node 0, in rounds that grow with log2 of the size (12 here)."""
    path = spark.createDataFrame([(i, i + 1) for i in range(4095)], "lo long, hi long")
    roots, rounds = star_roots(path, lambda df: df.localCheckpoint())
    assert {r["root"] for r in roots.collect()} == {0}
    assert roots.count() == 4095
    assert rounds <= 2 * 12 < _max_rounds(4096)
