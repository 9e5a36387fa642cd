"""``dmp``: the command line through which people and DAGs run the platform."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date, timedelta

from jobs.config import ConfigError, load_settings

JOB_HELP = {
    "ingest": "raw files -> bronze -> silver (exactly once; bad rows quarantined)",
    "quality": "Great Expectations checkpoints on the silver layer (fails on a broken gate)",
    "identity": "identifier graph -> connected components -> person map",
    "profiles": "one profile row per person",
    "segments": "evaluate conf/segments/*.yaml; membership with entered/exited history",
    "lookalike": "expand seed segments with a Spark ML model; scores, reach segments, evaluation",
    "export": "audience files per ad platform: full + add/remove, consent and size gates",
}


def _date(text: str) -> str:
    if text == "latest":  # resolved by the job against the lake (e.g. the last segment run)
        return text
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _formats(text: str) -> dict[str, str]:
    from jobs.generate.formats import parse_formats

    try:
        return parse_formats(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dmp", description="Open DMP: Spark jobs for marketing data.")
    sub = p.add_subparsers(dest="command", required=True)

    def with_conf(sp):
        sp.add_argument("--conf", help="configuration file (default: conf/dmp.yaml or $DMP_CONF)")
        return sp

    g = with_conf(sub.add_parser("generate", help="write sample raw data with ground truth"))
    g.add_argument("--people", type=int, default=5000)
    g.add_argument("--days", type=int, default=14)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--start", type=_date, default="2026-11-01", help="first day (YYYY-MM-DD)")
    g.add_argument(
        "--format",
        type=_formats,
        default="native",
        help="how the raw files are written: native, segment, rudderstack, snowplow, ga4, mix "
        "(web via Segment, app via Snowplow, email native) or source=format pairs, e.g. "
        "web=segment,app=ga4; sources.yaml beside raw/ says how to read them",
    )
    g.add_argument(
        "--out",
        default=None,
        help="output folder; raw/ and truth/ are written inside "
        "(default: the parent of storage.raw_root)",
    )
    for job, text in JOB_HELP.items():
        sp = with_conf(sub.add_parser(job, help=text, description=text))
        sp.add_argument(
            "--date",
            type=_date,
            required=True,
            help="run date (YYYY-MM-DD), or 'latest' for the last date the lake has",
        )
        if job == "identity":
            sp.add_argument(
                "--full",
                action="store_true",
                help="rebuild the whole graph instead of the components new edges reach "
                "(automatic on a rerun, out-of-order date or identity config change)",
            )
    r = with_conf(
        sub.add_parser(
            "retention", help="delete raw files, bronze and silver events past their retention"
        )
    )
    r.add_argument("--date", type=_date, required=True)
    v = with_conf(
        sub.add_parser(
            "vacuum",
            help="delete the files no current table version reads, once older than "
            "privacy.vacuum_hours",
        )
    )
    v.add_argument("--date", type=_date, required=True)
    e = with_conf(
        sub.add_parser(
            "erase",
            help="erase a person everywhere: tables, old versions, published audience "
            "folders, landing files; queue audience removals; audit",
        )
    )
    e.add_argument(
        "--identifier",
        action="append",
        default=[],
        metavar="TYPE=VALUE",
        help="email=..., phone=..., cookie=..., device=..., user=..., crm=... (repeatable)",
    )
    e.add_argument("--person-id", action="append", default=[], help="a person id (repeatable)")
    e.add_argument("--keep-raw-files", action="store_true", help="do not rewrite the landing files")
    with_conf(
        sub.add_parser(
            "scan-pii", help="look for email- or phone-shaped values in every table and audience"
        )
    )
    x = with_conf(
        sub.add_parser(
            "explain-person",
            help="a person's identifiers, the edges that joined them, the links not followed, "
            "their merges and splits",
        )
    )
    x.add_argument("person_id")
    x.add_argument("--json", action="store_true", help="print JSON instead of text")
    u = with_conf(sub.add_parser("unlock", help="remove a job's lock left by a run that died"))
    u.add_argument("job")
    pl = with_conf(sub.add_parser("pipeline", help="every job in order for one date"))
    pl.add_argument("--date", type=_date, required=True)
    d = with_conf(sub.add_parser("demo", help="generate sample data and run the whole pipeline"))
    d.add_argument("--people", type=int, default=5000)
    d.add_argument("--days", type=int, default=14)
    d.add_argument("--seed", type=int, default=42)
    d.add_argument(
        "--format",
        type=_formats,
        default="native",
        help="formats of the generated raw files, as for `dmp generate` (e.g. mix)",
    )
    return p


def _lake(settings):
    from jobs.lake import Lake
    from jobs.session import get_spark

    return Lake(get_spark(settings), settings)


def cmd_generate(settings, args) -> dict:
    import os

    from jobs.generate import generate

    out = args.out or os.path.dirname(settings.resolve(settings.storage.raw_root).rstrip("/"))
    print(
        f"generating {args.people:,} people x {args.days} days (seed {args.seed}) into {out}",
        file=sys.stderr,
    )
    formats = args.format
    summary = generate(
        out, args.people, args.days, args.seed, date.fromisoformat(args.start), formats=formats
    )
    print(
        f"wrote {summary['lines']:,} raw lines ({summary['events']:,} events, "
        f"{summary['duplicate_deliveries']:,} duplicate deliveries, {summary['late_events']:,} "
        f"late, {summary['malformed_lines']:,} malformed, {summary['bot_events']:,} bot) and "
        f"{summary['crm_rows']:,} CRM rows; ground truth in {out}/truth"
    )
    if set(formats.values()) != {"native"}:
        print(f"the raw files are read with the ingest.sources of {out}/sources.yaml")
    return summary


def cmd_demo(settings, args) -> None:
    import os
    import shutil

    raw = settings.resolve(settings.storage.raw_root)
    for key in ("lake_root", "audience_root", "reports_root"):  # a demo starts from nothing
        path = settings.resolve(getattr(settings.storage, key))
        if "://" not in path:
            shutil.rmtree(path, ignore_errors=True)
    if "://" not in raw:
        shutil.rmtree(raw, ignore_errors=True)
    args.out, args.start = None, "2026-11-01"
    cmd_generate(settings, args)
    settings = demo_sources(settings, os.path.dirname(raw.rstrip("/")))
    run_date = (date(2026, 11, 1) + timedelta(days=args.days - 1)).isoformat()
    from jobs.pipeline import run_pipeline

    lake = _lake(settings)
    reports = run_pipeline(lake, run_date)
    print_demo_summary(reports, settings)
    print_identity_accuracy(lake, os.path.join(os.path.dirname(raw.rstrip("/")), "truth"))
    print(f"run report          {reports[-1].facts['run report']}")


def demo_sources(settings, out: str):
    """The demo reads the sources its generator wrote (``sources.yaml``), whatever the
    configuration names."""
    import yaml

    from jobs.ingest.sources import with_sources

    with open(os.path.join(out, "sources.yaml")) as fh:
        entries = yaml.safe_load(fh)["ingest"]["sources"]
    for e in entries:
        print(f"source {e['name']:<8} {e['format']}", file=sys.stderr)
    return with_sources(settings, entries)


def print_identity_accuracy(lake, truth_dir: str) -> None:
    """On generated data the truth is known: score the person map against it."""
    from jobs.identity.evaluate import pairwise_scores

    read = lake.spark.read.option("header", "true").csv
    shared = read(f"{truth_dir}/shared_identifiers.csv")
    truth = read(f"{truth_dir}/identifiers.csv").join(shared, ["id_type", "value"], "left_anti")
    scores = pairwise_scores(lake.read("identity.person_map"), truth)
    print(
        f"identity vs truth   pairwise precision {scores['precision']:.3f}, "
        f"recall {scores['recall']:.3f}, F1 {scores['f1']:.3f} "
        f"(over {int(scores['identifiers']):,} identifiers; shared ones left out)"
    )


def _fact(value) -> str:
    """A job's fact as printed: numbers with thousands separators, anything else as it is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def print_demo_summary(reports, settings) -> None:
    by = {r.job: r for r in reports}
    ing = by["ingest"]
    quarantined = ing.written.get("silver.quarantine", 0)
    print("\n=== Open DMP demo summary ===")
    print(
        f"events ingested     {ing.written.get('silver.events', 0):,} "
        f"(quarantined {quarantined:,}, duplicates dropped "
        f"{ing.dropped.get('duplicate_event', 0):,})"
    )
    print(
        f"persons resolved    {by['identity'].facts.get('persons', 0):,} "
        f"(largest cluster {by['identity'].facts.get('largest cluster')}, hubs cut "
        f"{by['identity'].facts.get('hub identifiers')}, "
        f"quarantined {by['identity'].facts.get('quarantined clusters')})"
    )
    for job in ("segments", "lookalike"):
        for k, v in by[job].facts.items():
            print(f"{k:<40} {_fact(v)}")
    print("audience files:")
    for k, v in by["export"].facts.items():
        if k != "run report":
            print(f"  {k}: {v}")
    for k, v in by["quality"].facts.items():
        print(f"quality {k}: {v}")


def cmd_erase(settings, args) -> int:
    from jobs.privacy.erase import ErasureError, erase, parse_identifier
    from jobs.report import job_report

    try:
        identifiers = [parse_identifier(t) for t in args.identifier]
    except ErasureError as exc:
        print(f"dmp erase: {exc}", file=sys.stderr)
        return 2
    if not identifiers and not args.person_id:
        print("dmp erase: give at least one --identifier or --person-id", file=sys.stderr)
        return 2
    from jobs.locks import erase_lock
    from jobs.pipeline import JOBS, MAINTENANCE

    lake = _lake(settings)
    today = date.today().isoformat()
    writers = [*JOBS, *MAINTENANCE]
    with erase_lock(lake, today, writers), job_report("erase", today) as report:
        audit = erase(lake, report, identifiers, args.person_id, not args.keep_raw_files)
    print(
        f"erasure {audit['erasure_id']}: {audit['persons']} person(s) erased; audit row in "
        "privacy.erasures"
    )
    return 0


def cmd_scan(settings) -> int:
    from jobs.privacy.scan import scan

    findings = scan(_lake(settings))
    for f in findings:
        print(f"PII-shaped {f['shape']}: {f['rows']:,} rows in {f['where']} column {f['column']}")
    print(f"scan-pii: {len(findings)} finding(s)")
    return 1 if findings else 0


def cmd_explain(settings, args) -> int:
    from jobs.identity.explain import as_text, explain

    lake = _lake(settings)
    tables = [lake.read(t) for t in ("identity.person_map", "identity.edges", "identity.lineage")]
    scored = lake.read("identity.match_edges") if lake.exists("identity.match_edges") else None
    found = explain(*tables, args.person_id, scored)
    print(json.dumps(found, default=str, indent=2) if args.json else as_text(found))
    return 0 if found["identifiers"] or found["lineage"] else 1


def cmd_unlock(settings, args) -> None:
    from jobs.locks import release

    n = release(_lake(settings), args.job)
    print(f"dmp unlock: {n} lock(s) on {args.job} removed")


def cmd_pipeline(settings, args) -> None:
    from jobs.pipeline import run_pipeline

    run_pipeline(_lake(settings), args.date)


def cmd_job(settings, args) -> None:
    from jobs.pipeline import run_job

    options = {"full": True} if getattr(args, "full", False) else {}
    run_job(_lake(settings), args.command, args.date, **options)


COMMANDS = {  # every other command is a job (jobs.pipeline.JOBS)
    "generate": cmd_generate,
    "demo": cmd_demo,
    "erase": cmd_erase,
    "unlock": cmd_unlock,
    "explain-person": cmd_explain,
    "scan-pii": lambda settings, args: cmd_scan(settings),
    "pipeline": cmd_pipeline,
}


def run_command(args, command, prog: str = "dmp") -> int:
    """Runs ``command(settings, args)``. A command that returns a status exits with it; one
    that returns nothing says it is done. A configuration error exits 2 naming the key, any
    other failure 1, each with one line of reason first."""
    t0 = time.time()
    try:
        status = command(load_settings(args.conf), args)
    except ConfigError as exc:
        print(f"{prog}: configuration error: {str(exc).splitlines()[0]}", file=sys.stderr)
        print(str(exc), file=sys.stderr)
        return 2
    except Exception as exc:  # one line of reason first, then the detail
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"{prog} {args.command}: failed: {type(exc).__name__}: {first}", file=sys.stderr)
        import traceback

        traceback.print_exc()
        return 1
    if status is not None:
        return status
    print(f"{prog} {args.command}: done in {time.time() - t0:.1f}s", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args, COMMANDS.get(args.command, cmd_job))


if __name__ == "__main__":
    sys.exit(main())
