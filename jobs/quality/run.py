"""Quality job: a Great Expectations checkpoint per silver table for the run date; results in
``quality.results``, Data Docs under the reports folder; a failed expectation fails the job."""

from __future__ import annotations

import json
import os

from pyspark.sql import functions as F

from jobs.cache import cached
from jobs.lake import Lake
from jobs.quality.suites import silver_crm_expectations, silver_events_expectations
from jobs.report import JobReport, say


class QualityGateError(RuntimeError):
    """A critical expectation failed: the pipeline must stop."""


def _context(reports_root: str):
    import great_expectations as gx

    if "://" in reports_root:  # Data Docs go to a local folder when the reports live remotely
        reports_root = os.path.abspath("data/reports")
    root = os.path.join(reports_root, "great_expectations")
    os.makedirs(root, exist_ok=True)
    return gx.get_context(mode="file", project_root_dir=root)


def run_checkpoint(context, name: str, df, expectations: list) -> dict:
    import great_expectations as gx

    ds = context.data_sources.add_or_update_spark(name=f"{name}_source")
    asset = (
        ds.add_dataframe_asset(name=name)
        if name not in [a.name for a in ds.assets]
        else ds.get_asset(name)
    )
    bd_name = f"{name}_batch"
    batch_def = next(
        (b for b in asset.batch_definitions if b.name == bd_name), None
    ) or asset.add_batch_definition_whole_dataframe(bd_name)
    suite = gx.ExpectationSuite(name=f"{name}_suite", expectations=expectations)
    suite = context.suites.add_or_update(suite)
    vd = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{name}_validation", data=batch_def, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{name}_checkpoint",
            validation_definitions=[vd],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": df})
    failed, warnings = [], []
    evaluated = 0
    for vr in result.run_results.values():
        for r in vr.results:
            evaluated += 1
            if not r.success:
                cfg = r.expectation_config
                text = (
                    f"{cfg.type}({cfg.kwargs.get('column') or 'table'}): "
                    f"{r.result.get('unexpected_count', r.result.get('observed_value', '?'))}"
                )
                is_warning = str(getattr(cfg, "severity", "critical")).lower().endswith("warning")
                (warnings if is_warning else failed).append(text)
    return {"success": not failed, "evaluated": evaluated, "failed": failed, "warnings": warnings}


def run(lake: Lake, report: JobReport, run_date: str) -> None:
    context = _context(lake.settings.resolve(lake.settings.storage.reports_root))
    events = lake.read("silver.events").where(F.col("event_date") == F.lit(run_date).cast("date"))
    checks = {"silver_events": (events, silver_events_expectations(run_date, events.columns))}
    if lake.exists("silver.crm"):
        checks["silver_crm"] = (lake.read("silver.crm"), silver_crm_expectations())
    rows = []
    for name, (df, expectations) in checks.items():
        # each expectation's metrics are a Spark job of their own: read the table once
        with report.step(f"checkpoint {name}"), cached() as keep:
            res = run_checkpoint(context, name, keep(df), expectations)
        rows.append(
            (
                run_date,
                name,
                res["success"],
                res["evaluated"],
                json.dumps(res["failed"]),
                json.dumps(res["warnings"]),
            )
        )
        met = res["evaluated"] - len(res["failed"]) - len(res["warnings"])
        report.facts[f"{name}"] = (
            f"{met}/{res['evaluated']} expectations met, {len(res['failed'])} critical failures, "
            f"{len(res['warnings'])} warnings"
        )
        for w in res["warnings"]:
            say(f"[quality] {name} warning: {w}")
    lake.replace_partition(
        lake.spark.createDataFrame(
            rows,
            "run_date string, checkpoint string, success boolean, expectations int, "
            "failures string, warnings string",
        ),
        "quality.results",
        "run_date",
        run_date,
    )
    docs = context.get_docs_sites_urls()
    if docs:
        report.facts["data docs"] = docs[0]["site_url"]
    failures = [(r[1], r[4]) for r in rows if not r[2]]
    if failures:
        for name, f in failures:
            say(f"[quality] {name} FAILED: {f}")
        raise QualityGateError(f"quality gate failed for {', '.join(n for n, _ in failures)}")
