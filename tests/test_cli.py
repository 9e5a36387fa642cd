"""The dmp command: help for every subcommand, clear errors, exit codes (no Spark needed)."""

import subprocess
import sys

import pytest

from jobs.cli import JOB_HELP, main


def test_every_subcommand_has_help(capsys):
    for cmd in ["generate", "pipeline", "demo", "explain-person", *JOB_HELP]:
        with pytest.raises(SystemExit) as ex:
            main([cmd, "--help"])
        assert ex.value.code == 0
        assert "usage: dmp" in capsys.readouterr().out


def test_bad_date_is_refused(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["ingest", "--date", "2026-13-01"])
    assert ex.value.code == 2
    assert "expected a date as YYYY-MM-DD" in capsys.readouterr().err


def test_config_error_exits_2_with_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("spark:\n  masterr: local\n")
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "ingest", "--date", "2026-11-01", "--conf", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert first.startswith("dmp: configuration error:") and "spark.masterr: unknown key" in first
    assert str(bad) in first


def test_development_tools_are_apart_from_the_product(capsys):
    """`dmp` holds what an operator runs; the benchmark and the crash harness are `dmp-dev`."""
    from dev.cli import main as dev_main

    for cmd in ["bench", "crash-test"]:
        with pytest.raises(SystemExit) as ex:
            main([cmd, "--help"])
        assert ex.value.code == 2  # not a dmp command
        with pytest.raises(SystemExit) as ex:
            dev_main([cmd, "--help"])
        assert ex.value.code == 0
        assert "usage: dmp-dev" in capsys.readouterr().out


def test_a_failing_command_exits_1_with_its_reason_first(capsys):
    from jobs.cli import run_command

    def broken(settings, args):
        raise ValueError("the lake is on fire\nand more detail")

    args = type("Args", (), {"conf": None, "command": "ingest"})()
    assert run_command(args, broken) == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert first == "dmp ingest: failed: ValueError: the lake is on fire"
