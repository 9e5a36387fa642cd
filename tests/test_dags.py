"""The DAG folder loads in Airflow with no import error and the jobs run in pipeline order."""

import os
from pathlib import Path

DAGS = Path(__file__).resolve().parent.parent / "dags"


def test_dagbag_loads_and_orders_tasks(tmp_path):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path / "airflow"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.dags["dmp_daily"]
    order = ["ingest", "quality", "identity", "profiles", "segments", "lookalike", "export"]
    assert [t.task_id for t in dag.topological_sort()] == order
    for t in dag.tasks:
        assert t.retries == 2 and t.execution_timeout is not None
        assert t.application_args == [t.task_id, "--date", "{{ ds }}"]
    assert "spark" in dag.tags and dag.doc_md
