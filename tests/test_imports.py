"""Dependencies point one way, raw -> bronze -> silver -> identity -> gold -> audiences: a stage
imports the shared modules and the stages before it, never a later one, and never another
stage's ``run`` (stages talk through lake tables). The shared modules import no stage."""

from __future__ import annotations

import ast
from pathlib import Path

JOBS = Path(__file__).resolve().parent.parent / "jobs"
SHARED = {"config", "lake", "report", "cache", "session", "storage", "locks", "vocabulary"}
TOP = {"cli", "pipeline"}  # they run every stage
RANK = {  # the order of the lake's layers; stages of one rank may share pure modules
    "ingest": 0,
    "quality": 1,
    "identity": 2,
    "profiles": 3,
    "segments": 3,
    "lookalike": 3,
    "activation": 4,
    "privacy": 5,  # erasure reaches every layer
    "reporting": 6,
    "generate": 6,  # writes the raw files ingest reads, in its formats
}


def _imports(source: str) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return [n for n in names if n == "jobs" or n.startswith("jobs.")]


def violations(path: str, source: str) -> list[str]:
    """What a module of ``jobs/`` at ``path`` (relative to ``jobs/``) imports against the rule."""
    own = path.split("/")[0].removesuffix(".py")
    found = []
    for name in _imports(source):
        parts = name.split(".")
        target = parts[1] if len(parts) > 1 else ""
        if own in TOP or target in SHARED or target == own:
            continue
        if own in SHARED or own == "__init__":
            found.append(f"{path}: the shared module imports {name}")
        elif target in TOP or RANK.get(target, 99) > RANK[own]:
            found.append(f"{path}: imports {name}, a later stage")
        elif parts[-1] == "run":
            found.append(f"{path}: imports {name}, another stage's run")
    return found


def test_imports_point_one_way():
    found = []
    for file in sorted(JOBS.rglob("*.py")):
        rel = file.relative_to(JOBS).as_posix()
        found += violations(rel, file.read_text())
    assert not found, "\n".join(found)


def test_every_stage_has_a_place_in_the_order():
    stages = {p.name for p in JOBS.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert stages <= set(RANK), stages - set(RANK)


def test_the_vocabulary_is_plain_python():
    """The DAG file loads it at parse time, where neither Spark nor the project may be
    importable."""
    assert _imports((JOBS / "vocabulary.py").read_text()) == []
    assert "pyspark" not in (JOBS / "vocabulary.py").read_text()


def test_the_rule_catches_what_it_forbids():
    assert violations("ingest/run.py", "from jobs.identity.graph import node")
    assert violations("segments/run.py", "from jobs.profiles.run import run")
    assert violations("lake.py", "from jobs.ingest.crm import CRM_FIELDS")
    assert violations("activation/run.py", "import jobs.cli")
    assert not violations("activation/run.py", "from jobs.profiles.identifiers import x")
    assert not violations("segments/run.py", "from jobs.segments.rules import x")
