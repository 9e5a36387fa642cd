"""The DAG folder loads in Airflow with no import error; order, settings and assets are right."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out

DAGS = Path(__file__).resolve().parent.parent / "dags"
ORDER = ["ingest", "quality", "identity", "profiles", "segments", "lookalike", "export"]


def _bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dagbag_loads_without_errors():
    bag = _bag()
    assert bag.import_errors == {}
    assert set(bag.dags) == {"dmp_daily", "dmp_segments_refresh", "dmp_export", "dmp_privacy"}


def test_daily_order_settings_and_templating():
    dag = _bag().dags["dmp_daily"]
    assert [t.task_id for t in dag.topological_sort()] == ORDER
    from jobs.vocabulary import DAILY_JOBS

    assert list(DAILY_JOBS) == ORDER  # the pipeline and the CLI read the same order
    assert dag.catchup and dag.max_active_runs == 1
    for t in dag.tasks:
        assert t.retries == 2 and t.execution_timeout is not None
        assert t.application_args == [t.task_id, "--date", "{{ ds }}"]
        assert t.application.endswith("jobs/cli.py")
    assert "spark" in dag.tags and dag.doc_md


def test_export_follows_segment_updates():
    bag = _bag()
    refresh, export = bag.dags["dmp_segments_refresh"], bag.dags["dmp_export"]
    outlets = [a.uri for a in refresh.get_task("lookalike").outlets]
    assert outlets == ["dmp://lake/gold/segment_membership"]
    assert "dmp://lake/gold/segment_membership" in str(export.timetable.asset_condition)
    assert export.get_task("export").application_args == ["export", "--date", "latest"]


def test_no_heavy_imports_at_dag_top_level():
    text = (DAGS / "dmp_daily.py").read_text()
    for banned in ("import pyspark", "from pyspark", "import pandas", "from jobs", "import jobs"):
        assert banned not in text


def test_privacy_dag_runs_retention_vacuum_then_a_scan_that_parses():
    from jobs.cli import build_parser

    dag = _bag().dags["dmp_privacy"]
    assert [t.task_id for t in dag.topological_sort()] == ["retention", "vacuum", "scan-pii"]
    for t in dag.tasks:  # every command line the DAG would run is one the CLI accepts
        args = [a.replace("{{ ds }}", "2026-11-29") for a in t.application_args]
        assert build_parser().parse_args(args).command == t.task_id
