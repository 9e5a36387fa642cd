"""``dmp-dev``: the development tools, apart from the product's ``dmp`` (which holds only what
an operator runs): the benchmark (``dmp-dev bench``) and the crash harness
(``dmp-dev crash-test``). They need the ``dev`` extra (networkx, DuckDB)."""

from __future__ import annotations

import argparse
import sys

from jobs.cli import run_command


def cmd_bench(settings, args) -> None:
    from dev.bench import DEFAULT_DAYS, DEFAULT_PEOPLE, run_bench

    if args.history:
        from dev.history_bench import DEFAULT_PEOPLE as HISTORY_PEOPLE
        from dev.history_bench import run_history_bench

        histories = [int(x) for x in args.history.split(",")]
        print(run_history_bench(settings, args.people or HISTORY_PEOPLE, histories, args.out))
        return

    scales = [int(x) for x in (args.people or DEFAULT_PEOPLE).split(",")]
    print(run_bench(settings, scales, args.days or DEFAULT_DAYS, args.out))


def cmd_crash(settings, args) -> int:
    from dev.crash import run_crash_test

    jobs = args.jobs.split(",")
    workdir = settings.resolve(args.workdir)
    results = run_crash_test(settings, args.people, args.days, jobs, args.trials, workdir)
    for r in results:
        state = "identical" if r["identical"] else f"DIFFERS in {', '.join(r['differ'])}"
        print(
            f"{r['job']:<10} trial {r['trial']} killed={r['killed']!s:<5} "
            f"after {r['delay_s']}s: {state}"
        )
    return 1 if any(not r["identical"] for r in results) else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dmp-dev", description="Open DMP development tools.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="time every stage at several scales -> BENCHMARKS.md")
    b.add_argument("--people", help="comma-separated scales (people); default: make bench's")
    b.add_argument("--days", type=int, help="days per scale; default: that of `make bench`")
    b.add_argument(
        "--history",
        help="comma-separated history lengths (days): the daily run against the days the lake "
        "holds, at one scale (--people, one number)",
    )
    b.add_argument("--out", default="BENCHMARKS.md")
    c = sub.add_parser(
        "crash-test",
        help="SIGKILL jobs at random moments, rerun, compare with an uninterrupted run",
    )
    c.add_argument("--people", type=int, default=200)
    c.add_argument("--days", type=int, default=3)
    c.add_argument("--jobs", default="ingest,identity,segments,export")
    c.add_argument("--trials", type=int, default=3)
    c.add_argument("--workdir", default="data/crash-test")
    for sp in (b, c):
        sp.add_argument("--conf", help="configuration file (default: conf/dmp.yaml or $DMP_CONF)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = {"bench": cmd_bench, "crash-test": cmd_crash}[args.command]
    return run_command(args, command, prog="dmp-dev")


if __name__ == "__main__":
    sys.exit(main())
