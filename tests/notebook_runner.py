"""Runs a notebook top to bottom with nbclient in a real kernel, with DMP_CONF set for it."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def execute(path: Path, conf: Path, workdir: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    old = os.environ.get("DMP_CONF")
    os.environ["DMP_CONF"] = str(conf)  # the kernel process inherits this environment
    try:
        client.execute()
    finally:
        if old is None:
            os.environ.pop("DMP_CONF", None)
        else:
            os.environ["DMP_CONF"] = old
    return nb
