"""The documents name only what exists: every repository path and every configuration key in
backquotes in README.md and docs/*.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobs.config import Settings
from jobs.lake import TABLES

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = re.compile(r"[*<>{}\[\]$]|YYYY|\.\.\.|=|://|^~|^/")
TOP = {p.name for p in ROOT.iterdir()}


def _quoted(doc: Path) -> list[str]:
    return re.findall(r"`([^`\n]+)`", doc.read_text())


def _paths(doc: Path) -> list[str]:
    """Quoted repository paths: a top-level name of the repository, then more (``jobs/lake.py``,
    ``conf/segments``); a ``path: name`` reference keeps its path. ``data/`` is what runs
    write, not the repository."""
    found = []
    for q in _quoted(doc):
        token = q.split(":")[0].split()[0] if q.split() else ""
        top = token.split("/")[0]
        if "/" in token and not PLACEHOLDER.search(token) and top in TOP and top != "data":
            found.append(token.rstrip("/"))
    return found


def _keys(doc: Path) -> list[str]:
    """Quoted dotted names that start with a configuration section (``identity.matching``)."""
    sections = set(Settings.model_fields) - {"spark"}  # Spark's own keys share the prefix
    return [
        q
        for q in _quoted(doc)
        if re.fullmatch(r"[a-z_]+(\.[a-z_0-9]+)+", q) and q.split(".")[0] in sections
    ]


def _is_key(dotted: str) -> bool:
    model = Settings
    for part in dotted.split("."):
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return False
        model = fields[part].annotation
    return True


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_quoted_path_exists(doc):
    missing = [p for p in _paths(doc) if not (ROOT / p).exists()]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_quoted_configuration_key_exists(doc):
    unknown = [k for k in _keys(doc) if k not in TABLES and not _is_key(k)]
    assert not unknown, f"{doc.name} names configuration keys that do not exist: {unknown}"


def test_the_checks_see_paths_and_keys():
    assert "jobs/identity/matching.py" in _paths(ROOT / "docs" / "identity.md")
    assert _is_key("identity.matching.threshold") and not _is_key("identity.max_iterations")
