"""Runs one DAG with ``dag.test()`` in a process of its own, so the suite can go on with other
tests while it runs; writes the run's state and its tasks' states as JSON.

    python -m tests.dag_runner DAG_ID YYYY-MM-DD OUT.json
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(dag_id: str, day: str, out: str) -> int:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[dag_id]
    run = dag.test(logical_date=datetime.fromisoformat(day).replace(tzinfo=UTC))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    Path(out).write_text(json.dumps({"state": str(run.state), "tasks": states}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
