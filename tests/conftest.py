"""One SparkSession for the whole test run (a JVM start costs seconds), tuned for speed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

# py4j logs at interpreter exit, after pytest has closed the captured streams
logging.getLogger("py4j").setLevel(logging.WARNING)

TEST_CONF = Path(__file__).parent / "conf" / "dmp-test.yaml"


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dmp")


@pytest.fixture(scope="session")
def settings(workdir):
    from jobs.config import load_settings

    env = {
        "DMP_STORAGE__LAKE_ROOT": str(workdir / "lake"),
        "DMP_STORAGE__RAW_ROOT": str(workdir / "landing" / "raw"),
        "DMP_STORAGE__AUDIENCE_ROOT": str(workdir / "audiences"),
        "DMP_STORAGE__REPORTS_ROOT": str(workdir / "reports"),
    }
    return load_settings(TEST_CONF, environ=env)


@pytest.fixture(scope="session")
def spark(settings):
    from jobs.session import get_spark

    session = get_spark(settings, app_name="dmp-tests")
    yield session
    session.stop()
