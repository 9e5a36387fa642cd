"""The run report: counts per stage, data quality, identity health, segment sizes and their
movement, lookalike evaluation and exports, as one self-contained HTML file (plots embedded as
PNG) and the same numbers as JSON, under ``<reports_root>/runs/<run_date>/``.

Only small aggregates come to the driver (a few rows per segment or stage), never data."""

from __future__ import annotations

import base64
import html
import io
import json
import os

from pyspark.sql import functions as F

from jobs.lake import Lake


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _of_date(lake: Lake, table: str, run_date: str):
    return lake.read(table).where(F.col("run_date") == run_date)


def _jobs(lake: Lake, run_date: str) -> list:
    latest = {}
    for r in _of_date(lake, "reports.runs", run_date).collect():  # each job's last report
        latest[r["job"]] = json.loads(r["report"])
    return list(latest.values())


def _identity(lake: Lake, run_date: str) -> dict:
    row = _of_date(lake, "identity.report", run_date).first()
    return row.asDict() if row else {}


def _segment_sizes(lake: Lake, run_date: str) -> dict:
    """segment -> run date -> size: from the small stats table, counted from the members only
    for runs older than it."""
    stats = (
        lake.read("gold.segment_stats").select("run_date", "segment", F.col("size").alias("n"))
        if lake.exists("gold.segment_stats")
        else None
    )
    counted = lake.read("gold.segment_membership")
    if stats is not None:
        counted = counted.join(stats.select("run_date").distinct(), "run_date", "left_anti")
    sizes = counted.groupBy("run_date", "segment").agg(F.count("*").alias("n"))
    if stats is not None:
        sizes = sizes.unionByName(stats)
    out: dict = {}
    for r in sizes.where(F.col("run_date") <= run_date).collect():
        out.setdefault(r["segment"], {})[str(r["run_date"])] = r["n"]
    return out


def _segment_changes(lake: Lake, run_date: str) -> dict:
    out: dict = {}
    changes = _of_date(lake, "gold.segment_changes", run_date).groupBy("segment", "change")
    for r in changes.agg(F.count("*").alias("n")).collect():
        out.setdefault(r["segment"], {})[r["change"]] = r["n"]
    return out


def _rows_of_date(table: str):
    def read(lake: Lake, run_date: str) -> list:
        rows = _of_date(lake, table, run_date).drop("run_date")
        return [r.asDict() for r in rows.orderBy(*rows.columns[:2]).collect()]

    return read


def _quality(lake: Lake, run_date: str) -> list:
    return [r.asDict() for r in _of_date(lake, "quality.results", run_date).collect()]


def _lookalike(lake: Lake, run_date: str) -> list:
    rows = _of_date(lake, "gold.lookalike_evaluation", run_date).collect()
    return [{"lookalike": r["lookalike"], **json.loads(r["metrics"])} for r in rows]


def _exports(lake: Lake, run_date: str) -> list:
    people = _of_date(lake, "gold.exports", run_date).groupBy("destination", "segment")
    people = people.agg(F.count("*").alias("people")).orderBy("destination", "segment")
    return [r.asDict() for r in people.collect()]


# key of the report -> (the table it needs, how it is read, what it is when the table is absent)
SECTIONS = {
    "jobs": ("reports.runs", _jobs, list),
    "quality": ("quality.results", _quality, list),
    "identity": ("identity.report", _identity, dict),
    "segments": ("gold.segment_membership", _segment_sizes, dict),
    "segment_changes": ("gold.segment_changes", _segment_changes, dict),
    "segment_stats": ("gold.segment_stats", _rows_of_date("gold.segment_stats"), list),
    "overlaps": ("gold.segment_overlap", _rows_of_date("gold.segment_overlap"), list),
    "lookalike": ("gold.lookalike_evaluation", _lookalike, list),
    "exports": ("gold.exports", _exports, list),
}


def collect_numbers(lake: Lake, run_date: str) -> dict:
    out: dict = {"run_date": run_date}
    for key, (table, read, absent) in SECTIONS.items():
        out[key] = read(lake, run_date) if lake.exists(table) else absent()
    return out


def _plots(numbers: dict) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {}
    jobs = numbers["jobs"]
    if jobs:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.barh([j["job"] for j in jobs], [j["seconds"] for j in jobs], color="#4477aa")
        ax.set_xlabel("seconds")
        ax.set_title("Time per stage")
        ax.invert_yaxis()
        plots["Time per stage"] = _png(fig)
        plt.close(fig)
    segs = numbers["segments"]
    if segs:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for name, by_date in sorted(segs.items()):
            dates = sorted(by_date)
            ax.plot(dates, [by_date[d] for d in dates], marker="o", label=name)
        ax.set_ylabel("people")
        ax.set_title("Segment sizes by run date")
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5))
        plots["Segment sizes"] = _png(fig)
        plt.close(fig)
    if numbers["overlaps"]:
        plots["Segment overlaps (Jaccard)"] = _overlap_heatmap(plt, numbers["overlaps"])
    hist = json.loads(numbers["identity"].get("size_histogram") or "{}")
    if hist:
        order = sorted(hist, key=lambda k: (len(k), k))
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(order, [hist[k] for k in order], color="#228833")
        ax.set_yscale("log")
        ax.set_xlabel("identifiers per person")
        ax.set_ylabel("persons (log)")
        ax.set_title("Identity cluster sizes")
        plots["Identity cluster sizes"] = _png(fig)
        plt.close(fig)
    for la in numbers["lookalike"]:
        reach = sorted(float(k.split("_at_")[1][:-3]) for k in la if k.startswith("recall_at_"))
        if reach:
            fig, ax = plt.subplots(figsize=(5, 3))
            ax.plot(reach, [la[f"recall_at_{p:g}pct"] for p in reach], marker="o", label="model")
            if f"baseline_recall_at_{reach[0]:g}pct" in la:
                ax.plot(
                    reach,
                    [la[f"baseline_recall_at_{p:g}pct"] for p in reach],
                    marker="s",
                    label="cosine baseline",
                )
            ax.plot(reach, [p / 100 for p in reach], linestyle="--", label="random")
            ax.set_xlabel("reach (% of eligible people)")
            ax.set_ylabel("held-out seeds found")
            ax.set_title(f"{la['lookalike']} (AUC {la['auc']:.2f})")
            ax.legend()
            plots[f"Lookalike {la['lookalike']}"] = _png(fig)
            plt.close(fig)
    return plots


def _overlap_heatmap(plt, rows: list[dict]) -> str:
    names = sorted({r["segment_a"] for r in rows} | {r["segment_b"] for r in rows})
    idx = {n: i for i, n in enumerate(names)}
    grid = [[1.0 if i == j else 0.0 for j in range(len(names))] for i in range(len(names))]
    for r in rows:
        a, b = idx[r["segment_a"]], idx[r["segment_b"]]
        grid[a][b] = grid[b][a] = r["jaccard"] or 0.0
    size = 2 + 0.45 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(grid, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_title(f"Segment overlaps, Jaccard ({rows[0]['method']})")
    fig.colorbar(im, ax=ax, fraction=0.04)
    png = _png(fig)
    plt.close(fig)
    return png


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>none</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(numbers: dict, plots: dict[str, str], data_docs: str | None) -> str:
    jobs = [
        {
            "job": j["job"],
            "seconds": j["seconds"],
            "read": ", ".join(f"{k}={v:,}" for k, v in j["read"].items()),
            "written": ", ".join(f"{k}={v:,}" for k, v in j["written"].items()),
            "dropped": sum(j["dropped"].values()),
        }
        for j in numbers["jobs"]
    ]
    segs = numbers["segment_stats"] or [
        {"segment": s, "size": by[max(by)], **numbers["segment_changes"].get(s, {})}
        for s, by in sorted(numbers["segments"].items())
    ]
    overlaps = [
        {k: (round(v, 3) if k == "jaccard" else v) for k, v in r.items()}
        for r in numbers["overlaps"]
        if r["overlap"]
    ]
    ident = {
        k: v
        for k, v in numbers["identity"].items()
        if k not in ("largest_clusters", "size_histogram")
    }
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>DMP run {html.escape(numbers['run_date'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px}img{max-width:100%}</style></head><body>",
        f"<h1>Open DMP run report: {html.escape(numbers['run_date'])}</h1>",
        "<h2>Stages</h2>",
        _table(jobs),
        # what each job noted: segment sizes, models, audiences shipped or skipped and why
        "<h3>What the jobs noted</h3>",
        _table(
            [
                {"job": j["job"], "fact": k, "value": v}
                for j in numbers["jobs"]
                for k, v in j.get("facts", {}).items()
            ]
        ),
        "<h2>Data quality</h2>",
        _table(numbers["quality"]),
    ]
    if data_docs:
        parts.append(f"<p><a href='{html.escape(data_docs)}'>Great Expectations Data Docs</a></p>")
    parts += [
        "<h2>Identity health</h2>",
        _table([ident] if ident else []),
        "<h2>Segments</h2>",
        _table(segs),
        "<h3>Pairwise overlaps (pairs sharing nobody left out)</h3>",
        _table(overlaps),
        "<h2>Lookalike evaluation</h2>",
        _table(numbers["lookalike"]),
        "<h2>Exports</h2>",
        _table(numbers["exports"]),
        "<h2>Plots</h2>",
    ]
    for title, png in plots.items():
        parts.append(
            f"<h3>{html.escape(title)}</h3>"
            f"<img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_run_report(lake: Lake, run_date: str, data_docs: str | None = None) -> str:
    """Writes report.html and report.json for the run date; returns the HTML path."""
    numbers = collect_numbers(lake, run_date)
    folder = os.path.join(
        lake.settings.resolve(lake.settings.storage.reports_root), "runs", run_date
    )
    if "://" in folder:  # reports are read by people: keep a local copy when the lake is remote
        folder = os.path.join(lake.settings.resolve("data/reports"), "runs", run_date)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "report.json"), "w") as fh:
        json.dump(numbers, fh, indent=2, default=str)
    path = os.path.join(folder, "report.html")
    with open(path, "w") as fh:
        fh.write(render_html(numbers, _plots(numbers), data_docs))
    return path
