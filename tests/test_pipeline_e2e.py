"""The whole pipeline on one generated world (tests/cluster_dag.py: 500 people, 10 days, three
collectors' formats), checked against the generator's ground truth.

One in-process run builds the module's lake (the ``world`` fixture: about 100 s, so it is built
once). The tests run in file order. Those before ``test_a_seed_too_small_...`` only read the
lake. That one runs the day's lookalike and export again with one weak lookalike of its own,
and ``test_rerun_is_idempotent`` then runs the day's jobs again with the module's settings and
finds the lake as it was; the two read-only tests after it see that lake. Then each test
changes the lake, leaving what the next expects: ``test_stable_ids_...`` adds two events of the
next day and runs identity on it;
``test_erasure_...`` erases one person and runs the next day's profiles, segments and export;
``test_profiles_with_rules_...`` writes that day's profiles again; ``test_retention_...`` drops
the first days, so it comes last but for the cluster comparison, which reads a snapshot taken
before any of them."""

from __future__ import annotations

import base64
import csv
import glob
import gzip
import hashlib
import json
import os
import re
from collections import Counter, defaultdict

import pytest
import yaml
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.ingest.sources import arrival_day, sources
from jobs.lake import Lake
from jobs.pipeline import run_pipeline

from .cluster_dag import (
    RUN_DATE,
    cluster_test_selected,
    generate_world,
    lake_snapshot,
    with_world_sources,
)

pytestmark = pytest.mark.slow  # the fast tier (make test-fast) leaves it out

SEGMENT = "browse_abandoners_winter_coats"  # the audience the checks of its files read


@pytest.fixture(scope="module")
def world(request, settings, spark, workdir):
    landing = workdir / "landing"
    summary = generate_world(landing)
    settings = with_world_sources(settings, landing)
    lake = Lake(spark, settings)
    reports = {r.job: r for r in run_pipeline(lake, RUN_DATE)}
    local = None
    if cluster_test_selected(request.session):
        from jobs.lookalike.published import segment_name

        # the lake as the in-process run left it, before any later test here changes it; the
        # cluster run has no lookalike
        lookalikes = [
            segment_name(la.name, p) for la in settings.lookalikes for p in la.reach_percents
        ]
        local = lake_snapshot(lake, lookalikes)
    truth = landing / "truth"
    with open(truth / "people.csv") as fh:
        people = {r["person_key"]: r for r in csv.DictReader(fh)}
    with open(truth / "shared_identifiers.csv") as fh:
        shared = {(r["id_type"], r["value"]) for r in csv.DictReader(fh)}
    with open(truth / "identifiers.csv") as fh:
        idents = [r for r in csv.DictReader(fh) if (r["id_type"], r["value"]) not in shared]
    return {
        "truth_dir": truth,
        "lake": lake,
        "summary": summary,
        "reports": reports,
        "people": people,
        "idents": idents,
        "settings": settings,
        "local_snapshot": local,
    }


def _node(id_type: str, value: str) -> str:
    if id_type in ("email", "phone"):
        value = hashlib.sha256(value.encode()).hexdigest()
    return f"{id_type}:{value}"


def _truth_to_pipeline(world) -> dict[str, Counter]:
    pm = {
        r["node"]: r["person_id"]
        for r in world["lake"].read("identity.person_map").select("node", "person_id").collect()
    }
    mapping: dict[str, Counter] = defaultdict(Counter)
    for r in world["idents"]:
        pid = pm.get(_node(r["id_type"], r["value"]))
        if pid:
            mapping[r["person_key"]][pid] += 1
    return mapping


def test_ingest_counts_match_truth_exactly(world):
    lake, s = world["lake"], world["summary"]
    assert lake.read("silver.events").count() == s["events"]
    q = Counter(
        {
            r["reason"]: r["count"]
            for r in lake.read("silver.quarantine").groupBy("reason").count().collect()
        }
    )
    malformed = (
        q["unparseable_json"]
        + q["wrong_field_count"]  # Snowplow's truncated and non-TSV lines
        + q["missing_event_id"]
        + q["invalid_event_ts"]
        + q["invalid_price"]
    )
    assert malformed == s["malformed_lines"]
    assert q["bot_user_agent"] + q["bot_volume"] == s["bot_events"]
    assert q["missing_customer_id"] == s["crm_rows_missing_id"]
    assert world["reports"]["ingest"].dropped["duplicate_event"] == s["duplicate_deliveries"]
    assert lake.read("silver.crm").count() == s["crm_rows"] - s["crm_rows_missing_id"]


def _arrival_days(world, files: list[str]) -> dict[str, str | None]:
    """The arrival day of each raw file, as its source's layout dates it."""
    by_root = [(s.root.replace("file://", ""), s.arrival) for s in sources(world["settings"])]
    out = {}
    for f in files:
        local = re.sub("^file:/+", "/", f)
        arrival = next(a for root, a in by_root if local.startswith(root + "/"))
        out[f] = arrival_day(local, arrival)
    return out


def test_late_events_land_on_their_event_date(world):
    ev = world["lake"].read("silver.events")
    files = [r[0] for r in ev.select("source_file").distinct().collect()]
    days = world["lake"].spark.createDataFrame(
        list(_arrival_days(world, files).items()), "source_file string, arrival string"
    )
    late = ev.join(days, "source_file").where(F.col("arrival") > F.col("event_date"))
    assert late.count() >= world["summary"]["late_events"] * 0.9  # some are also redelivered


def test_no_raw_pii_in_silver(world):
    ev = world["lake"].read("silver.events")
    for col in ("email_sha256", "phone_sha256", "email_google_sha256"):
        assert ev.where(F.col(col).isNotNull() & ~F.col(col).rlike("^[0-9a-f]{64}$")).count() == 0
    assert "email" not in ev.columns and "phone" not in ev.columns
    bronze = world["lake"].read("bronze.events")
    assert (
        bronze.where(
            F.col("unparsed_line").rlike(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]+")
        ).count()
        == 0
    )


def _delta_logs(lake: Lake) -> dict[str, list[str]]:
    """Every file of every table's Delta log -> its lines (a checkpoint's rows as JSON)."""
    from jobs.lake import TABLES

    out = {}
    for table in TABLES:
        if not lake.exists(table):
            continue
        for path in glob.glob(f"{lake.path(table)}/_delta_log/**/*", recursive=True):
            if os.path.isdir(path):
                continue
            if path.endswith(".parquet"):
                df = lake.spark.read.parquet(path)
                rows = df.select(F.to_json(F.struct(*df.columns))).collect()
                out[path] = [r[0] for r in rows]
            else:
                with open(path, errors="replace") as fh:
                    out[path] = fh.read().splitlines()
    return out


def _stats_strings(logs: dict[str, list[str]]) -> dict[str, set[str]]:
    """file of the log -> every string min / max value in the statistics of the files it adds."""
    out: dict[str, set[str]] = defaultdict(set)

    def strings(d):
        for v in (d or {}).values():
            if isinstance(v, dict):
                yield from strings(v)
            elif isinstance(v, str):
                yield v

    for path, lines in logs.items():
        for line in lines:
            try:
                add = json.loads(line).get("add")
            except (json.JSONDecodeError, AttributeError):
                continue
            if add and add.get("stats"):
                st = json.loads(add["stats"])
                out[path] |= set(strings(st.get("minValues"))) | set(strings(st.get("maxValues")))
    return out


def test_no_table_log_keeps_statistics_of_an_identifier(world):
    """Delta's file statistics (min / max, in the log, kept after a row is deleted) hold no
    hashed email or phone, no id of a cookie, device, user, CRM record or person, in any table;
    plain columns keep theirs."""
    lake = world["lake"]
    pm = lake.read("identity.person_map").select("person_id", "id_value").collect()
    ids = {v for r in pm for v in r} | {r["value"] for r in world["idents"]}
    prefixes = {v[:32] for v in ids if v and len(v) >= 8}  # Delta cuts string statistics at 32
    stats = _stats_strings(_delta_logs(lake))
    found = {
        path: sorted(v for v in values if v[:32] in prefixes or re.match("[0-9a-f]{32}", v))
        for path, values in stats.items()
    }
    assert {p: v for p, v in found.items() if v} == {}
    # ... while the columns readers filter on keep them (the test would pass on no statistics)
    kept = {p.split("/_delta_log")[0].split("/lake/")[1] for p, v in stats.items() if v}
    assert {"bronze/events", "silver/events", "gold/segment_membership", "gold/exports"} <= kept


def test_identity_against_ground_truth(world):
    mapping = _truth_to_pipeline(world)
    # completeness: a true person's identifiers end up in one resolved person
    complete = sum(1 for c in mapping.values() if len(c) == 1) / len(mapping)
    # purity: a resolved person holds one true person
    owners: dict[str, set] = defaultdict(set)
    for key, c in mapping.items():
        for pid in c:
            owners[pid].add(key)
    pure = sum(1 for o in owners.values() if len(o) == 1) / len(owners)
    assert complete >= 0.97, complete
    assert pure >= 0.97, pure
    hubs = world["lake"].read("identity.person_map").where("is_hub").count()
    assert hubs >= 1  # the family iPads were cut, not used to merge households


def test_browse_abandoners_against_ground_truth(world):
    mapping = _truth_to_pipeline(world)
    truth = {k for k, p in world["people"].items() if p["is_browse_abandoner"] == "True"}
    members = {
        r["person_id"]
        for r in world["lake"]
        .read("gold.segment_membership")
        .where(
            (F.col("run_date") == RUN_DATE) & (F.col("segment") == "browse_abandoners_winter_coats")
        )
        .collect()
    }
    predicted = {k for k, c in mapping.items() if c.most_common(1)[0][0] in members}
    tp = len(truth & predicted)
    assert len(truth) >= 20
    assert tp / len(predicted) >= 0.9 and tp / len(truth) >= 0.9, (len(truth), len(predicted), tp)
    # people identity resolved cleanly (one person each way, no identifier shared with others
    # such as a family tablet, whose events go to nobody by design): recovered exactly
    with open(world["truth_dir"] / "shared_identifiers.csv") as fh:
        shared = {(r["id_type"], r["value"]) for r in csv.DictReader(fh)}
    with open(world["truth_dir"] / "identifiers.csv") as fh:
        rows = list(csv.DictReader(fh))
    sharing = {r["person_key"] for r in rows if (r["id_type"], r["value"]) in shared}
    owners: dict[str, set] = defaultdict(set)
    for key, c in mapping.items():
        for pid in c:
            owners[pid].add(key)
    clean = {
        k
        for k, c in mapping.items()
        if len(c) == 1 and len(owners[next(iter(c))]) == 1 and k not in sharing
    }
    assert len(clean) >= 0.9 * len(mapping)
    assert truth & clean == predicted & clean, (truth & clean) ^ (predicted & clean)


def test_segments_from_the_profiles_sums_equal_a_pass_over_the_events(world):
    """The segments job takes its event conditions' sums from the profiles run of the date
    (gold.segment_event_sums); they give the members that attributing and summing the events
    again gives, and sums made for another date or another version of gold.profiles are not
    used."""
    from jobs.identity.resolve import attributed_sums
    from jobs.lake import events_until
    from jobs.report import JobReport
    from jobs.segments.rules import evaluate, load_segments
    from jobs.segments.run import profile_sums

    lake, settings = world["lake"], world["settings"]
    segments = load_segments(settings.resolve(settings.segments_dir))
    facts = world["reports"]["segments"].facts
    assert facts["segment event sums"] == "from the profiles run of this date"
    report = JobReport("segments", RUN_DATE)
    sums = profile_sums(lake, segments, RUN_DATE, report)
    assert sums is not None, report.facts
    profiles = lake.read("gold.profiles")
    person_map = lake.read("identity.person_map")
    link_types = settings.identity.link_types

    def members(**how):
        return sorted(tuple(r) for r in evaluate(profiles, segments=segments, **how).collect())

    from_sums = members(events=None, run_date=RUN_DATE, sums=sums)
    from_events = members(
        events=events_until(lake, RUN_DATE),
        run_date=RUN_DATE,
        sum_by_person=lambda ev, values: attributed_sums(ev, person_map, link_types, values),
    )
    assert from_sums and from_sums == from_events
    stale = JobReport("segments", "2026-11-11")
    assert profile_sums(lake, segments, "2026-11-11", stale) is None
    assert "another date" in stale.facts["segment event sums"]


def test_lookalike_finds_the_planted_persona(world):
    mapping = _truth_to_pipeline(world)
    by_pid = {c.most_common(1)[0][0]: k for k, c in mapping.items()}
    seg = (
        world["lake"]
        .read("gold.segment_membership")
        .where(
            (F.col("run_date") == RUN_DATE)
            & (F.col("segment") == "winter_coat_buyers_lookalike_10pct")
        )
        .collect()
    )
    personas = [
        world["people"][by_pid[r["person_id"]]]["persona"] for r in seg if r["person_id"] in by_pid
    ]
    base = sum(p["persona"] == "outdoor" for p in world["people"].values()) / len(world["people"])
    share = sum(p == "outdoor" for p in personas) / max(len(personas), 1)
    assert len(personas) >= 10
    assert share >= 2 * base, (share, base)
    ev = json.loads(world["lake"].read("gold.lookalike_evaluation").first()["metrics"])
    assert ev["auc"] > 0.7
    assert ev["model"] in ("logistic_regression", "gradient_boosted_trees")
    # the baseline is reported on the same hold-out; that the model beats it is tested on a
    # planted feature space (test_lookalike.py): 5 held-out seeds here are too few to rank two
    assert 0 <= ev["baseline_auc"] <= 1 and "baseline_recall_at_10pct" in ev
    assert ev["lift_at_10pct"] >= 2


def test_audience_files_are_exact_and_consent_safe(world):
    root = world["settings"].resolve(world["settings"].storage.audience_root)
    google = os.path.join(root, "google_ads", SEGMENT, f"dt={RUN_DATE}")
    assert os.path.exists(os.path.join(google, "_SUCCESS"))
    manifest = json.load(open(os.path.join(google, "manifest.json")))
    files = glob.glob(os.path.join(google, "full", "*.csv.gz"))
    assert manifest["rows"] > 0 and files
    rows = []
    for path in files:
        with gzip.open(path, "rt", newline="") as fh:
            header, *lines = list(csv.reader(fh))
            rows += lines
    emails, phones = ["Email"] * 3, ["Phone"] * 3
    assert header == [*emails, *phones, "First Name", "Last Name", "Country", "Zip"]
    for r in rows:
        assert all(v == "" or re.fullmatch("[0-9a-f]{64}", v) for v in r[:6])
        assert r[0] or not r[1]  # the latest first, then the others
        assert "@" not in ",".join(r)
    # the manifest counts each identifier type's values in the files
    filled = {h: sum(bool(r[i]) for r in rows for i in range(6) if header[i] == h) for h in header}
    assert {h: manifest["identifiers"][h] for h in ("Email", "Phone")} == {
        "Email": filled["Email"],
        "Phone": filled["Phone"],
    }
    # nobody without advertising consent is in any file
    lake = world["lake"]
    no_consent = {
        r["person_id"] for r in lake.read("gold.profiles").where(~F.col("ad_consent")).collect()
    }
    exported = {r["person_id"] for r in lake.read("gold.exports").collect()}
    assert exported and not (exported & no_consent)
    # the audience's people and the people it left out for consent, counted here by hand
    members = {
        r["person_id"]
        for r in lake.read("gold.segment_membership")
        .where((F.col("run_date") == RUN_DATE) & (F.col("segment") == SEGMENT))
        .collect()
    }
    sendable = {
        r["person_id"]
        for r in lake.read("gold.profiles")
        .where(F.col("ad_consent") & ~F.coalesce("identity_quarantined", F.lit(False)))
        .collect()
    }
    assert manifest["people"] == len(members & sendable) > 0
    dropped = world["reports"]["export"].dropped
    assert dropped[f"google_ads/{SEGMENT} no consent"] == len(members - sendable) > 0
    # The Trade Desk ids are Base64 SHA-256 digests (32 bytes) or raw device ids
    ttd = os.path.join(root, "the_trade_desk", "browse_abandoners_winter_coats", f"dt={RUN_DATE}")
    for f in glob.glob(os.path.join(ttd, "full", "*.csv.gz")):
        for line in gzip.open(f, "rt").read().splitlines()[1:]:
            kind, value = line.split(",")
            if kind in ("EmailHash", "PhoneHash"):
                assert len(base64.b64decode(value)) == 32
    # the size gate: too small an audience is not exported and the run says so
    assert not os.path.exists(os.path.join(root, "google_too_small"))
    assert "skipped" in world["reports"]["export"].facts["google_too_small/new_visitors"]


def test_run_report_is_self_contained_with_its_plots(world):
    from html.parser import HTMLParser

    path = world["reports"]["export"].facts["run report"]
    assert path.endswith(f"runs/{RUN_DATE}/report.html")

    class Images(HTMLParser):
        def __init__(self):
            super().__init__()
            self.srcs = []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.srcs.append(dict(attrs)["src"])

    parser = Images()
    page = open(path).read()
    parser.feed(page)
    # the jobs' notes are on the page, e.g. why an audience was not shipped
    assert re.search(
        r"<td>export</td><td>google_too_small/new_visitors</td><td>skipped \([\d,]+ &lt; 100,000\)",
        page,
    )
    assert len(parser.srcs) >= 4
    for src in parser.srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.load(open(path.replace(".html", ".json")))
    assert {j["job"] for j in numbers["jobs"]} == set(world["reports"])
    assert numbers["segments"]["browse_abandoners_winter_coats"][RUN_DATE] > 0
    assert numbers["identity"]["persons"] > 0 and numbers["lookalike"]
    # the overlap matrix covers every pair of the run's segments and equals set arithmetic
    members: dict[str, set] = defaultdict(set)
    for r in (
        world["lake"].read("gold.segment_membership").where(F.col("run_date") == RUN_DATE).collect()
    ):
        members[r["segment"]].add(r["person_id"])
    pairs = {(o["segment_a"], o["segment_b"]): o for o in numbers["overlaps"]}
    assert len(pairs) == len(members) * (len(members) - 1) // 2
    for (a, b), o in pairs.items():
        assert o["method"] == "exact"
        assert o["overlap"] == len(members[a] & members[b]), (a, b)
    stats = {r["segment"]: r for r in numbers["segment_stats"]}
    assert stats["browse_abandoners_winter_coats"]["size"] == len(
        members["browse_abandoners_winter_coats"]
    )


def test_demo_summary_prints_this_run(world, capsys):
    """`dmp demo` ends with this summary; it once failed on a fact that was text."""
    from jobs.cli import print_demo_summary, print_identity_accuracy
    from jobs.segments.rules import load_segments

    settings = world["settings"]
    rules = set(load_segments(settings.resolve(settings.segments_dir)))
    print_demo_summary(list(world["reports"].values()), settings)
    print_identity_accuracy(world["lake"], str(world["truth_dir"]))
    out = capsys.readouterr().out
    events = world["lake"].read("silver.events").count()
    assert f"events ingested     {events:,} " in out
    sizes = Counter(  # the rule segments (the lookalike job reports its own)
        r["segment"]
        for r in world["lake"]
        .read("gold.segment_membership")
        .where(F.col("run_date") == RUN_DATE)
        .collect()
        if r["segment"] in rules
    )
    assert sizes
    for name, size in sizes.items():
        assert re.search(rf"^segment {name} +{size:,} people", out, re.M), name
    f1 = re.search(r"F1 (\d\.\d{3})", out)
    assert f1 and float(f1.group(1)) >= 0.9, out


@pytest.fixture(scope="module")
def lake_conf(world, tmp_path_factory):
    """A configuration file pointing at this module's lake, for processes of their own."""

    path = tmp_path_factory.mktemp("conf") / "dmp.yaml"
    path.write_text(yaml.safe_dump(world["settings"].model_dump()))
    return path


def test_notebooks_run_on_this_lake(lake_conf, tmp_path):
    from tests.notebook_runner import NOTEBOOKS, execute

    assert NOTEBOOKS
    for nb_path in NOTEBOOKS:
        nb = execute(nb_path, lake_conf, tmp_path)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.output_type == "error"], nb_path
        assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4, nb_path


def test_explain_person_on_this_lake(world, lake_conf, capsys):
    """`dmp explain-person` on the largest person: its identifiers are the person map's, and
    the edges it lists inside the person connect them all (checked with networkx)."""
    import networkx as nx

    from jobs.cli import main

    pm = world["lake"].read("identity.person_map").where(~F.col("is_hub"))
    biggest = pm.groupBy("person_id").count().orderBy(F.desc("count"), "person_id").first()
    nodes = {r["node"] for r in pm.where(F.col("person_id") == biggest["person_id"]).collect()}
    assert main(["explain-person", biggest["person_id"], "--json", "--conf", str(lake_conf)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert {i["node"] for i in found["identifiers"]} == nodes and len(nodes) > 2
    assert found["joined_by"]["total"] <= 50  # all listed: a person this size has few edges
    graph = nx.Graph([(e["src"], e["dst"]) for e in found["joined_by"]["edges"]])
    assert set(graph) == nodes and nx.is_connected(graph)


def test_a_seed_too_small_skips_its_lookalike_and_its_audiences(world, tmp_path):
    """The lookalike job does not fail the day for one weak seed, and export ships nothing
    for a lookalike that was not computed (not an empty audience: that would remove everyone)."""
    from jobs.config import LookalikeSettings
    from jobs.pipeline import run_job

    settings = world["settings"]
    tiny = LookalikeSettings(
        name="tiny", seed_segment="winter_coat_buyers", reach_percents=[10], min_seed_size=10**6
    )
    generic = settings.destinations[3].model_copy(update={"segments": ["tiny_10pct"]})
    assert generic.platform == "generic" and generic.min_audience_size == 0
    storage = settings.storage.model_copy(update={"audience_root": str(tmp_path)})
    lake = Lake(
        world["lake"].spark,
        settings.model_copy(
            update={"lookalikes": [tiny], "destinations": [generic], "storage": storage}
        ),
    )
    report = run_job(lake, "lookalike", RUN_DATE)
    assert "fewer than the minimum of 1000000" in report.facts["tiny skipped"]
    scored = lake.read("gold.lookalike_scores").where(F.col("lookalike") == "tiny").count()
    assert scored == 0
    report = run_job(lake, "export", RUN_DATE)
    assert report.facts["generic/tiny_10pct"].startswith("skipped (its lookalike was not")
    assert not list(tmp_path.rglob("*tiny*"))


def test_rerun_is_idempotent(world):
    """A rerun of the date changes nothing. Identity's rerun is checked id for id in
    test_stable_ids_rerun_merge_and_split; profiles is a plain overwrite."""
    from jobs.pipeline import run_job

    lake = world["lake"]
    tables = (
        "silver.events",
        "bronze.events",
        "gold.segment_membership",
        "gold.segment_history",
        "gold.segment_changes",
        "gold.exports",
    )
    before = {
        t: sorted(repr(tuple(r)) for r in lake.read(t).drop("ingested_at").collect())
        for t in tables
    }
    for job in ("ingest", "segments", "lookalike", "export"):
        run_job(lake, job, RUN_DATE)
    after = {
        t: sorted(repr(tuple(r)) for r in lake.read(t).drop("ingested_at").collect())
        for t in tables
    }
    assert after == before


def _truth_df(world):
    spark = world["lake"].spark
    rows = [(r["person_key"], r["id_type"], r["value"]) for r in world["idents"]]
    return spark.createDataFrame(rows, "person_key string, id_type string, value string")


def test_pairwise_f1_with_guards_and_the_giant_cluster_without(world):
    from jobs.identity.evaluate import pairwise_scores
    from jobs.identity.graph import build_edges, find_hubs
    from jobs.identity.resolve import Resolution, build_person_map

    lake = world["lake"]
    truth = _truth_df(world)
    guarded = pairwise_scores(lake.read("identity.person_map"), truth)
    assert guarded["f1"] >= 0.95, guarded
    # the same silver data with every guard off: shared devices and test emails glue people
    events = lake.read("silver.events")
    edges = build_edges(events, lake.read("silver.crm"), [], []).cache()
    no_hubs = find_hubs(edges, ["user"], 1, 10**9).where("false")
    pm, _, _ = build_person_map(edges, no_hubs, Resolution(), None, RUN_DATE)
    pm = pm.cache()
    unguarded = pairwise_scores(pm, truth)
    largest_off = pm.groupBy("person_id").count().agg({"count": "max"}).first()[0]
    rep = lake.read("identity.report").first()
    largest_on = rep["largest_cluster"]
    # propagation finished every component of this graph: nothing was left to the finish
    assert (rep["finish_label_edges"], rep["finish_rounds"]) == (0, 0)
    # 26 against 8 on the native world of this seed, 22 against 8 on its mixed one (Snowplow's
    # identify event carries no phone, so fewer phones glue people)
    assert largest_off > 2 * largest_on
    assert unguarded["precision"] < guarded["precision"] - 0.1, (unguarded, guarded)


def test_typo_duplicates_are_matched_and_namesakes_kept_apart(world):
    """Every customer keyed in twice (a typo in a name, the street written short, no email or
    phone: nothing deterministic joins them) is one person; the household members who share
    a surname and an address stay apart, the guard cutting any scored link that would join
    two logins; with matching off the duplicates stay people of their own."""
    lake, rep = world["lake"], world["reports"]["identity"]
    person = {
        r["node"]: r["person_id"]
        for r in lake.read("identity.person_map").where("id_type = 'crm'").collect()
    }
    twins = [n for n in person if n.startswith("crm:D")]
    assert len(twins) == world["summary"]["crm_typo_duplicates"] > 0
    assert all(person[t] == person["crm:C" + t[5:]] for t in twins)
    scored = lake.read("identity.match_edges").collect()
    assert {(e["src"], e["dst"]) for e in scored} >= {("crm:C" + t[5:], t) for t in twins}
    assert all(e["count"] == 0 and e["match_probability"] >= 0.5 for e in scored)
    truth = _truth_df(world)
    from jobs.identity.evaluate import pairwise_scores

    on = pairwise_scores(lake.read("identity.person_map"), truth)
    keyed = {(r["person_key"], r["value"]) for r in world["idents"] if r["id_type"] == "crm"}
    owner = {"crm:" + v: k for k, v in keyed}
    for e in scored:  # a scored link between two people was cut, never followed (the broken
        # row, a copy of a customer under another id, is not in the truth: left out)
        if e["src"] in owner and e["dst"] in owner and owner[e["src"]] != owner[e["dst"]]:
            assert person[e["src"]] != person[e["dst"]], e
    cut = rep.facts["scored links cut"]
    assert cut == sum(person[e["src"]] != person[e["dst"]] for e in scored)
    # matching off: nothing else joins a duplicate (no email, no phone), so it would be alone
    pm = lake.read("identity.person_map")
    off_map = pm.withColumn(
        "person_id", F.when(F.col("node").isin(twins), F.col("node")).otherwise(F.col("person_id"))
    )
    off = pairwise_scores(off_map, truth)
    assert on["precision"] >= off["precision"] and on["recall"] > off["recall"], (on, off)
    assert on["f1"] > off["f1"] and on["f1"] >= 0.95


def test_stable_ids_rerun_merge_and_split(world):
    """Rerun of a day: identical ids. Next day with new data: untouched persons keep their ids,
    a merge and a split show up in the lineage."""
    from jobs.pipeline import run_job
    from jobs.vocabulary import EVENT_IDENTIFIERS

    lake = world["lake"]
    before = {r["node"]: r["person_id"] for r in lake.read("identity.person_map").collect()}
    run_job(lake, "identity", RUN_DATE)
    again = {r["node"]: r["person_id"] for r in lake.read("identity.person_map").collect()}
    assert again == before

    pm = lake.read("identity.person_map")
    # an anonymous one-cookie person, and a known person with an email
    lone = pm.where("cluster_size = 1 AND id_type = 'cookie' AND NOT is_hub").orderBy("node")
    lone = lone.first()
    known = pm.where("id_type = 'email' AND NOT is_hub AND cluster_size > 2").orderBy("node")
    known = known.first()
    # a known person's own app device, and another person's login
    dev = pm.where("id_type = 'device' AND NOT is_hub AND cluster_size > 2").orderBy("node")
    dev = dev.first()
    other_user = (
        pm.where(
            f"id_type = 'user' AND person_id NOT IN ('{dev['person_id']}', '{known['person_id']}')"
        )
        .orderBy("node")
        .first()
    )
    template = lake.read("silver.events").limit(1)
    next_day = "2026-11-11"
    from pyspark.sql import functions as F

    def event(eid, **cols):
        df = (
            template.withColumn("event_id", F.lit(eid))
            .withColumn("event_date", F.lit(next_day).cast("date"))
            .withColumn("event_ts", F.lit(next_day + " 12:00:00").cast("timestamp"))
            .withColumn("ingested_at", F.current_timestamp())
        )
        # every identifier column: the template row's own (e.g. an advertising id) would link
        # the new event to its person too
        for c in EVENT_IDENTIFIERS:
            df = df.withColumn(c, F.lit(cols.get(c)).cast("string"))
        return df

    new = event("merge-1", anonymous_id=lone["id_value"], email_sha256=known["id_value"])
    new = new.unionByName(
        event("split-1", device_id=dev["id_value"], user_id=other_user["id_value"])
    )
    lake.append(new, "silver.events")
    report = run_job(lake, "identity", next_day)
    assert report.facts["mode"] == "incremental"
    assert report.read["silver.events"] == 2  # only the new events were read
    # no customer record changed, nor the model: the scored edges are kept, not scored again
    assert report.facts["scored edges"] == f"kept from {RUN_DATE} (nothing changed)"
    assert "identity.match_edges" not in report.written
    assert report.facts["recomputed identifiers"] < len(before) / 10
    after = {r["node"]: r["person_id"] for r in lake.read("identity.person_map").collect()}
    lineage_rows = lake.read("identity.lineage").where(F.col("run_date") == next_day)
    lineage = {(r["old_person_id"], r["reason"]) for r in lineage_rows.collect()}
    # the same day as a full rebuild: the same map, row for row, and the same lineage
    # held in memory: the full rebuild below overwrites the tables
    inc_map = lake.read("identity.person_map").localCheckpoint()
    inc_lineage = lineage_rows.localCheckpoint()
    full = run_job(lake, "identity", next_day, full=True)
    assert full.facts["mode"].startswith("full")
    assert_df_equality(lake.read("identity.person_map"), inc_map, ignore_row_order=True)
    lineage_rows = lake.read("identity.lineage").where(F.col("run_date") == next_day)
    assert_df_equality(lineage_rows, inc_lineage, ignore_row_order=True)
    touched = {lone["person_id"], known["person_id"], dev["person_id"], other_user["person_id"]}
    untouched = [n for n, p in before.items() if p not in touched]
    assert all(after[n] == before[n] for n in untouched)
    assert after[lone["node"]] == after[known["node"]]  # merged
    assert (max(lone["person_id"], known["person_id"]), "merge") in lineage or (
        min(lone["person_id"], known["person_id"]),
        "merge",
    ) in lineage
    assert after[dev["node"]] != before[dev["node"]]  # the device became a hub: split off
    assert (dev["person_id"], "split") in lineage


def _mentions(df, values: list[str]):
    """Rows whose full JSON text mentions any of the values: independent of which columns the
    eraser looked at."""
    text = F.to_json(F.struct(*[F.col(c) for c in df.columns]))
    hit = F.lit(False)
    for v in values:
        hit = hit | text.contains(v)
    return df.where(hit)


def _their_forms(raw_emails: list[str], node_values: list[str]) -> list[str]:
    """Every form a platform file may hold of a person, computed here from their raw emails
    (hashlib, and the UID2 SDK for The Trade Desk) and their graph nodes (hex hashes of phones,
    device ids), not by the eraser's code."""
    from uid2_client import input_util

    forms = set()
    for e in raw_emails:
        e = e.strip().lower()
        local, _, domain = e.partition("@")
        google = f"{local.replace('.', '')}@{domain}" if domain in GMAIL else e
        forms |= {_sha(e), _sha(google), input_util.normalize_and_hash_email(e)}
    for v in node_values:
        if re.fullmatch(r"[0-9a-f]{64}", v):
            forms |= {v, base64.b64encode(bytes.fromhex(v)).decode()}
        elif len(v) >= 8:
            forms |= {v, v.lower()}
    return sorted(forms)


GMAIL = ("gmail.com", "googlemail.com")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _audience_files_holding(root: str, forms: list[str]) -> list[str]:
    """Every file under the audience root (CSV, gzipped or not, Parquet, manifests) whose
    text holds any of ``forms``."""
    import duckdb

    hits = []
    for path in sorted(p for p in glob.glob(f"{root}/**/*", recursive=True) if os.path.isfile(p)):
        if path.endswith(".parquet"):
            text = str(duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall())
        elif path.endswith(".gz"):
            text = gzip.open(path, "rt").read()
        else:
            text = open(path, errors="replace").read()
        if any(f in text for f in forms):
            hits.append(path.removeprefix(root))
    return hits


def test_erasure_reaches_every_table_old_versions_raw_files_and_audiences(world):
    from delta.tables import DeltaTable

    from jobs.identity.run import choose_mode, config_hash
    from jobs.lake import TABLES, per_table
    from jobs.pipeline import run_job
    from jobs.privacy.erase import erase
    from jobs.privacy.scan import scan
    from jobs.report import JobReport

    lake, settings = world["lake"], world["settings"]
    sent = lake.read("gold.exports").where(
        (F.col("run_date") == RUN_DATE)
        & (F.col("destination") == "meta")
        & (F.col("segment") == "browse_abandoners_winter_coats")
    )
    emails = {_node("email", r["value"]): r for r in world["idents"] if r["id_type"] == "email"}
    pm = lake.read("identity.person_map")
    customers = pm.where(F.col("id_type") == "crm").select("person_id")
    target = (  # a customer too: the meta destination sends customer ids (EXTERN_ID)
        pm.where(F.col("node").isin(list(emails)) & ~F.col("is_hub"))
        .join(sent, "person_id", "left_semi")
        .join(customers, "person_id", "left_semi")
        .orderBy("node")
        .first()
    )
    raw_email = emails[target["node"]]["value"]
    pid = target["person_id"]
    nodes = [r["node"] for r in pm.where(F.col("person_id") == pid).collect()]
    values = [pid] + [n.split(":", 1)[1] for n in nodes]
    their_events = _mentions(lake.read("silver.events"), values).count()
    others_before = lake.read("silver.events").count() - their_events
    assert their_events > 0
    versions_before = {t: lake.version(t) for t in TABLES if lake.exists(t)}

    audience_root = settings.resolve(settings.storage.audience_root)
    forms = _their_forms([emails[n]["value"] for n in nodes if n in emails], values)
    assert _audience_files_holding(audience_root, forms)  # they were published
    crm_ids = [n.split(":", 1)[1].lower() for n in nodes if n.startswith("crm:")]
    assert any("/meta/" in f for f in _audience_files_holding(audience_root, crm_ids))

    audit = erase(lake, JobReport("erase", RUN_DATE), [("email", raw_email.upper())], [])

    assert audit["persons"] == 1 and audit["removals_queued"] >= 1
    # no file in the audience bucket holds them any more, in any platform's form
    assert _audience_files_holding(audience_root, forms) == []
    assert audit["audience_folders_rewritten"] >= 1 and audit["audience_rows_removed"] >= 1
    assert audit["raw_lines_removed"] > 0
    # zero rows about them in every table, whatever column they would hide in
    kept = [t for t in TABLES if lake.exists(t) and t != "privacy.pending_removals"]
    left = per_table(lambda t: _mentions(lake.read(t), values).count(), kept)
    assert dict(zip(kept, left, strict=True)) == dict.fromkeys(kept, 0)

    # ... and none in the versions before the erasure: vacuumed, so time travel fails or is clean
    def in_old_version(table: str) -> int:
        try:
            return _mentions(lake.read_version(table, versions_before[table]), values).count()
        except Exception:  # the files of that version are gone
            return 0

    old = per_table(in_old_version, list(versions_before))
    assert dict(zip(versions_before, old, strict=True)) == dict.fromkeys(versions_before, 0)
    # other people untouched
    assert lake.read("silver.events").count() == others_before
    # the audit row says what and how much, never who
    row = lake.read("privacy.erasures").first()
    assert json.loads(row["request"])["identifier_types"] == ["email"]
    assert json.loads(row["rows_deleted"])["silver.events"] == their_events
    # the landing zone no longer holds their email or their ids
    raw_root = settings.resolve(settings.storage.raw_root)
    for path in [p for p in glob.glob(f"{raw_root}/**/*", recursive=True) if os.path.isfile(p)]:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt") as fh:
            text = fh.read().lower()
        assert raw_email.lower() not in text, path
        assert not any(v.lower() in text for v in values if len(v) >= 8), path
    # the next identity run cannot trust its incremental state any more
    _, why = choose_mode(lake, "2026-11-12", config_hash(settings.identity), False)
    assert "erased" in why
    # the next audience delta removes them from every audience they were sent in
    next_day = "2026-11-11"
    for job in ("profiles", "segments", "export"):
        run_job(lake, job, next_day)
    folder = os.path.join(
        settings.resolve(settings.storage.audience_root),
        "meta",
        "browse_abandoners_winter_coats",
        f"dt={next_day}",
    )

    def text(part):
        return "".join(gzip.open(f, "rt").read() for f in glob.glob(f"{folder}/{part}/*.csv.gz"))

    removed = text("remove")
    # the delta is exact against what was shipped before: prev - remove + add == full
    prev_folder = folder.replace(f"dt={next_day}", f"dt={RUN_DATE}")

    def rows(path):
        out = set()
        for f in glob.glob(f"{path}/*.csv.gz"):
            out |= set(gzip.open(f, "rt").read().splitlines()[1:])
        return out

    prev_rows, now_rows = rows(f"{prev_folder}/full"), rows(f"{folder}/full")
    adds, removes = rows(f"{folder}/add"), rows(f"{folder}/remove")
    # the folder before was rewritten without them: their removal comes from the queue
    theirs = {r for r in removes if any(f in r for f in forms)}
    assert theirs and not (theirs & prev_rows)
    assert removes - theirs <= prev_rows and not (adds & prev_rows)
    assert (prev_rows - removes) | adds == now_rows
    # the remove parts of this export are the only files that name them again
    holding = _audience_files_holding(audience_root, forms)
    assert holding and all(f"dt={next_day}/remove/" in p for p in holding), holding
    assert hashlib.sha256(raw_email.strip().lower().encode()).hexdigest() in removed
    full = text("full")
    assert hashlib.sha256(raw_email.strip().lower().encode()).hexdigest() not in full
    # sent with every audience exported that day; still queued for an audience not exported
    # (e.g. a lookalike audience whose model did not run that day), to go with its next export
    exported = {
        (r["destination"], r["segment"])
        for r in lake.read("gold.exports")
        .where(F.col("run_date") == next_day)
        .select("destination", "segment")
        .distinct()
        .collect()
    }
    pending = lake.read("privacy.pending_removals").collect()
    assert any(r["sent_run_date"] for r in pending)
    for r in pending:
        if (r["destination"], r["segment"]) in exported:
            assert str(r["sent_run_date"]) == next_day, r
        else:
            assert r["sent_run_date"] is None, r
    assert DeltaTable.forPath(lake.spark, lake.path("privacy.erasures")).toDF().count() == 1
    # and nothing email- or phone-shaped anywhere in the lake or the audience files
    assert scan(lake) == []
    # nor in any table's Delta log: no DELETE or UPDATE predicate, no file statistics held them
    hashed = hashlib.sha256(raw_email.strip().lower().encode()).hexdigest()
    logged = {
        path: [v for v in [*values, hashed] if len(v) >= 8 and any(v in line for line in lines)]
        for path, lines in _delta_logs(lake).items()
    }
    assert {p: v for p, v in logged.items() if v} == {}


def test_profiles_with_rules_of_no_event_condition_write_and_report_no_sums(world, tmp_path):
    """Segment files whose rules read only profile fields: the profiles job computes no event
    sums and reports none (it reported the table's last write, and failed where there was none)."""
    from jobs.pipeline import run_job

    (tmp_path / "s.yaml").write_text(
        "segments:\n  engaged:\n    rule: {profile: {field: events, gte: 3}}\n"
    )
    base = world["lake"]
    lake = Lake(base.spark, world["settings"].model_copy(update={"segments_dir": str(tmp_path)}))
    before = lake.version("gold.segment_event_sums")
    report = run_job(lake, "profiles", "2026-11-11")
    assert "gold.segment_event_sums" not in report.written
    assert report.written["gold.profiles"] > 0
    assert lake.version("gold.segment_event_sums") == before


def test_retention_keeps_exactly_the_configured_days(world):
    from jobs.config import PrivacySettings
    from jobs.pipeline import run_job

    base = world["lake"]
    days = PrivacySettings(raw_days=5, bronze_days=5, silver_days=5)
    lake = Lake(base.spark, world["settings"].model_copy(update={"privacy": days}))
    cutoff = "2026-11-05"
    silver = lake.read("silver.events")
    keep = silver.where(F.col("event_date") >= cutoff).count()
    drop = silver.count() - keep
    bronze_keep = lake.read("bronze.events").where(F.col("dt") >= cutoff).count()
    report = run_job(lake, "retention", RUN_DATE)
    assert lake.read("silver.events").count() == keep and drop > 0
    assert report.dropped[f"silver.events before {cutoff}"] == drop
    assert lake.read("silver.events").where(F.col("event_date") < cutoff).count() == 0
    assert lake.read("bronze.events").count() == bronze_keep
    raw = world["settings"].resolve(world["settings"].storage.raw_root)
    left = [p for p in glob.glob(f"{raw}/*/**/*", recursive=True) if os.path.isfile(p)]
    events = [p for p in left if "/crm/" not in p]
    days_left = set(_arrival_days(world, events).values())
    days_left |= {re.search(r"dt=([0-9-]+)", p).group(1) for p in left if "/crm/" in p}
    assert days_left and min(days_left) >= cutoff and None not in days_left
    assert report.dropped[f"raw files before {cutoff}"] > 0
    assert lake.read("privacy.retention").where(F.col("run_date") == RUN_DATE).count() == 3


def test_daily_dag_on_the_cluster_matches_the_local_run(world, cluster_dag):
    """Waits for the DAG run that started with the session (tests/cluster_dag.py). Every task
    ran its job through spark-submit on the cluster, and the lake it left equals the one this
    module's in-process run left (snapshot taken before any later test changed it)."""
    from jobs.config import load_settings
    from jobs.pipeline import JOBS

    code = cluster_dag["proc"].wait(timeout=1800)
    log = cluster_dag["log"].read_text()[-3000:]
    assert code == 0, log
    result = json.loads(cluster_dag["out"].read_text())
    assert result["state"] == "success", (result, log)
    assert set(result["tasks"]) == set(JOBS)
    remote = Lake(world["lake"].spark, load_settings(cluster_dag["conf"], environ={}))
    local, cluster = world["local_snapshot"], lake_snapshot(remote, [])
    assert local["silver"] > 0 and local["segments"] and local["exports"]
    assert cluster == local
    runs = remote.read("reports.runs").select("job").collect()
    assert len(runs) == len(JOBS)  # every job ran once, through spark-submit
    # the worker holds the project at the same path: its executors read the jars in place
    apps = list(cluster_dag["worker_folder"].glob("app-*"))
    assert len(apps) >= len(JOBS)
    assert not list(cluster_dag["worker_folder"].rglob("*.jar"))
