"""The segment rule language, validated at load time and compiled to Spark Columns.

A rule is one of::

    all: [rule, ...]          any: [rule, ...]          not: rule
    segment: other_segment_name
    profile: {field: purchases, gte: 3}            # ops: eq ne gt gte lt lte in
    events:  {type: product_view, category: winter_coats, within_days: 14, count: {gte: 2}}
    events:  {type: purchase, within_days: 90, sum: {field: revenue, gte: 500}}

Event filters: type, category, product, source (a value or a list). Rules never become SQL
text: user values only ever reach Spark as literals.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.config import ConfigError, read_yaml
from jobs.profiles.transform import MONEY

OPS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
EVENT_FILTERS = {
    "type": "event_type",
    "category": "category",
    "product": "product_id",
    "source": "source",
}
SUMMABLE = {"revenue", "price", "quantity"}
PROFILE_FIELDS = {
    "events",
    "sessions",
    "web_events",
    "app_events",
    "email_events",
    "product_views",
    "add_to_carts",
    "purchases",
    "revenue",
    "recency_days",
    "days_since_purchase",
    "email_engagements",
    "devices",
    "cookies",
    "ad_consent",
    "country",
    "top_category",
    "n_cookie",
    "n_device",
    "n_user",
    "n_email",
    "n_phone",
    "n_crm",
    "first_seen_days",
}


@dataclass
class EventCondition:
    name: str
    filters: dict[str, list[str]]
    within_days: int
    measure: str  # "count" or a summable field
    op: str
    value: float


@dataclass
class Segment:
    name: str
    description: str
    rule: Any
    source: str
    event_conditions: list[EventCondition] = field(default_factory=list)


class _Parser:
    def __init__(self, source: str, segment: str):
        self.source, self.segment = source, segment
        self.conditions: list[EventCondition] = []

    def fail(self, path: str, what: str):
        raise ConfigError(f"{self.source}: segment {self.segment!r}: {path}: {what}")

    def comparison(self, spec: Any, path: str, allowed: set[str]) -> tuple[str, str, Any]:
        if not isinstance(spec, dict):
            self.fail(path, f"expected a mapping like {{field: x, gte: 1}}, got {spec!r}")
        unknown = set(spec) - allowed - set(OPS) - {"in"}
        if unknown:
            self.fail(
                path,
                f"unknown key(s) {sorted(unknown)}; expected one of "
                f"{sorted(allowed | set(OPS) | {'in'})}",
            )
        ops = [k for k in spec if k in OPS or k == "in"]
        if len(ops) != 1:
            self.fail(path, f"expected exactly one comparison of {sorted(OPS)} or 'in'")
        return ops[0], ops[0], spec[ops[0]]

    def parse(self, node: Any, path: str = "rule") -> Any:
        if not isinstance(node, dict) or len(node) != 1:
            self.fail(path, "expected exactly one of all / any / not / segment / profile / events")
        ((kind, body),) = node.items()
        if kind in ("all", "any"):
            if not isinstance(body, list) or not body:
                self.fail(f"{path}.{kind}", "expected a non-empty list of rules")
            return (kind, [self.parse(b, f"{path}.{kind}[{i}]") for i, b in enumerate(body)])
        if kind == "not":
            return ("not", self.parse(body, f"{path}.not"))
        if kind == "segment":
            if not isinstance(body, str):
                self.fail(f"{path}.segment", "expected a segment name")
            return ("segment", body)
        if kind == "profile":
            if not isinstance(body, dict) or body.get("field") not in PROFILE_FIELDS:
                self.fail(
                    f"{path}.profile.field",
                    f"expected one of {sorted(PROFILE_FIELDS)}, got {body!r}",
                )
            op, _, value = self.comparison(body, f"{path}.profile", {"field"})
            return ("profile", body["field"], op, value)
        if kind == "events":
            return ("events", self.events(body, f"{path}.events"))
        self.fail(path, f"unknown rule kind {kind!r}")

    def events(self, body: Any, path: str) -> str:
        if not isinstance(body, dict):
            self.fail(path, "expected a mapping")
        allowed = set(EVENT_FILTERS) | {"within_days", "count", "sum"}
        unknown = set(body) - allowed
        if unknown:
            self.fail(path, f"unknown key(s) {sorted(unknown)}; expected {sorted(allowed)}")
        days = body.get("within_days")
        if not isinstance(days, int) or days < 1:
            self.fail(f"{path}.within_days", f"expected a whole number of days >= 1, got {days!r}")
        filters = self.event_filters(body, path)
        measure, op, value = self.measure(body, path)
        name = f"_ev_{self.segment}_{len(self.conditions)}"
        self.conditions.append(EventCondition(name, filters, days, measure, op, float(value)))
        return name

    def event_filters(self, body: dict, path: str) -> dict[str, list[str]]:
        """type / category / product / source: one name or a list of names each."""
        filters = {}
        for key, col in EVENT_FILTERS.items():
            if key in body:
                v = body[key]
                vals = v if isinstance(v, list) else [v]
                if not vals or not all(isinstance(x, str) for x in vals):
                    self.fail(f"{path}.{key}", "expected a name or a list of names")
                filters[col] = vals
        return filters

    def measure(self, body: dict, path: str) -> tuple[str, str, float]:
        """count: {op: n} or sum: {field, op: n} -> (measure, op, n)."""
        if ("count" in body) == ("sum" in body):
            self.fail(path, "expected exactly one of count: {...} or sum: {field: ..., ...}")
        if "count" in body:
            op, _, value = self.comparison(body["count"], f"{path}.count", set())
            measure = "count"
        else:
            op, _, value = self.comparison(body["sum"], f"{path}.sum", {"field"})
            measure = body["sum"].get("field")
            if measure not in SUMMABLE:
                self.fail(f"{path}.sum.field", f"expected one of {sorted(SUMMABLE)}")
        if op == "in" or not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(
                f"{path}.{measure if measure == 'count' else 'sum'}",
                "expected a number compared with eq/ne/gt/gte/lt/lte",
            )
        return measure, op, value


NAME_PATTERN = r"^[a-z][a-z0-9_]{0,99}$"


def parse_segment(name: str, spec: Any, source: str) -> Segment:
    if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        raise ConfigError(
            f"{source}: segment {name!r}: names are lowercase letters, digits and underscores "
            "(they become table keys and audience folder names)"
        )
    if not isinstance(spec, dict):
        raise ConfigError(f"{source}: segment {name!r}: expected a mapping with description, rule")
    unknown = set(spec) - {"description", "rule"}
    if unknown:
        raise ConfigError(f"{source}: segment {name!r}: unknown key(s) {sorted(unknown)}")
    if "rule" not in spec:
        raise ConfigError(f"{source}: segment {name!r}: rule: required key is missing")
    p = _Parser(source, name)
    rule = p.parse(spec["rule"])
    return Segment(name, spec.get("description", ""), rule, source, p.conditions)


def load_segments(folder: str | Path) -> dict[str, Segment]:
    folder = Path(folder)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{folder}: no segment definitions (*.yaml) found")
    segments: dict[str, Segment] = {}
    for f in files:
        data = read_yaml(f)
        if not isinstance(data, dict) or not isinstance(data.get("segments"), dict):
            raise ConfigError(f"{f}: expected a top-level 'segments:' mapping of name -> segment")
        for name, spec in data["segments"].items():
            if name in segments:
                raise ConfigError(
                    f"{f}: segment {name!r} is already defined in {segments[name].source}"
                )
            segments[name] = parse_segment(name, spec, str(f))
    for seg in segments.values():  # references must exist and must not loop
        _check_refs(seg.name, seg.rule, segments, [seg.name])
    return segments


def _refs(rule) -> list[str]:
    kind = rule[0]
    if kind == "segment":
        return [rule[1]]
    if kind in ("all", "any"):
        return [r for sub in rule[1] for r in _refs(sub)]
    if kind == "not":
        return _refs(rule[1])
    return []


def _check_refs(name, rule, segments, chain):
    for ref in _refs(rule):
        if ref not in segments:
            raise ConfigError(
                f"{segments[name].source}: segment {name!r}: rule refers to unknown segment {ref!r}"
            )
        if ref in chain:
            raise ConfigError(
                f"{segments[name].source}: segment {name!r}: circular reference "
                f"{' -> '.join(chain + [ref])}"
            )
        _check_refs(ref, segments[ref].rule, segments, chain + [ref])


def all_conditions(segments: dict[str, Segment]) -> list[EventCondition]:
    return [c for s in segments.values() for c in s.event_conditions]


CHECKED_FILTERS = ("event_type", "category", "source")  # small vocabularies, unlike products


def unseen_values(segments: dict[str, Segment], known: dict[str, set[str]]) -> list[str]:
    """A warning for each event filter value no event in the lake has, with the closest names
    it has (a typo such as ``type: purchse`` validates and would match nobody). ``known``:
    filtered column (``CHECKED_FILTERS``) -> the values the lake's events have."""
    rule_key = {column: key for key, column in EVENT_FILTERS.items()}
    warnings = []
    for seg in segments.values():
        for cond in seg.event_conditions:
            for column, values in cond.filters.items():
                if column not in known:
                    continue
                key = rule_key[column]
                for value in values:
                    if value in known[column]:
                        continue
                    lowered = {k.lower(): k for k in known[column]}
                    close = difflib.get_close_matches(value.lower(), lowered, n=3, cutoff=0.6)
                    hint = ", ".join(lowered[c] for c in close) or "none close"
                    warnings.append(
                        f"segment {seg.name!r}: no event has {key} {value!r} "
                        f"(closest known: {hint})"
                    )
    return sorted(set(warnings))


def condition_values(conditions: list[EventCondition], run_date: str) -> dict[str, Column]:
    """Per event, what each event condition adds up: 1 (count) or the measure, when the event
    matches the condition's filters and time window. Measures as decimal(24,4): exact sums."""
    today = F.lit(run_date).cast("date")
    values = {}
    for cond in conditions:
        match = (F.col("event_date") > F.date_sub(today, cond.within_days)) & (
            F.col("event_date") <= today
        )
        for col, vals in cond.filters.items():
            match = match & F.col(col).isin(vals)
        value = F.lit(1) if cond.measure == "count" else F.col(cond.measure).cast(MONEY)
        values[cond.name] = F.when(match, value)
    return values


def event_aggregates(
    events: DataFrame, conditions: list[EventCondition], run_date: str, sum_by_person=None
):
    """One column per event condition, aggregated per person over its own time window.
    ``events`` carry ``person_id``, or ``sum_by_person(events, {name: value})`` attributes
    them and sums (the segments job: ``identity.resolve.attributed_sums``)."""
    values = condition_values(conditions, run_date)
    # only the days some condition looks at: no other event adds anything, and on a table
    # partitioned by event_date the rest is never read (90 of 365 days for the shipped rules)
    today = F.lit(run_date).cast("date")
    widest = max(c.within_days for c in conditions)
    events = events.where(
        (F.col("event_date") > F.date_sub(today, widest)) & (F.col("event_date") <= today)
    )
    if sum_by_person is None:
        sums = events.groupBy("person_id").agg(*[F.sum(v).alias(n) for n, v in values.items()])
    else:
        sums = sum_by_person(events, values)
    return sums.select("person_id", *[_finished(F.col(c.name), c) for c in conditions])


def event_sums(conditions: list[EventCondition], run_date: str) -> list[Column]:
    """The conditions' sums as aggregate columns for a ``groupBy("person_id")`` of attributed
    events, finished as ``event_aggregates`` finishes them: the profiles job computes them in its
    own pass over the events (``gold.segment_event_sums``), so segments need not read them again."""
    values = condition_values(conditions, run_date)
    return [_finished(F.sum(values[c.name]), c) for c in conditions]


def _finished(total: Column, cond: EventCondition) -> Column:
    """A condition's total as a long count or a double measure, 0 when nothing matched."""
    kind = "long" if cond.measure == "count" else "double"
    return F.coalesce(total.cast(kind), F.lit(0)).alias(cond.name)


def sums_fingerprint(conditions: list[EventCondition], run_date: str, profiles_version: int) -> str:
    """What precomputed sums are valid for: these conditions (filters, window, measure) on this
    run date, next to this version of ``gold.profiles`` (an erasure or a rerun makes a new one)."""
    spec = [(c.name, c.filters, c.within_days, c.measure) for c in conditions]
    text = json.dumps([spec, run_date, profiles_version], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compile_rule(rule, segments: dict[str, Segment]) -> Column:
    kind = rule[0]
    if kind == "all":
        out = compile_rule(rule[1][0], segments)
        for sub in rule[1][1:]:
            out = out & compile_rule(sub, segments)
        return out
    if kind == "any":
        out = compile_rule(rule[1][0], segments)
        for sub in rule[1][1:]:
            out = out | compile_rule(sub, segments)
        return out
    if kind == "not":
        return ~compile_rule(rule[1], segments)
    if kind == "segment":
        return compile_rule(segments[rule[1]].rule, segments)
    if kind == "profile":
        _, fld, op, value = rule
        col = F.col(fld)
        out = (
            col.isin(value if isinstance(value, list) else [value])
            if op == "in"
            else OPS[op](col, F.lit(value))
        )
        return F.coalesce(out, F.lit(False))
    if kind == "events":
        cond = next(c for s in segments.values() for c in s.event_conditions if c.name == rule[1])
        return OPS[cond.op](F.col(cond.name), F.lit(cond.value))
    raise ValueError(kind)


def evaluate(
    profiles: DataFrame,
    events: DataFrame,
    segments: dict[str, Segment],
    run_date: str,
    sum_by_person=None,
    sums: DataFrame | None = None,
) -> DataFrame:
    """-> (segment, person_id) for every member of every segment. ``events`` and
    ``sum_by_person``: as for ``event_aggregates``; ``sums``: the conditions' aggregates per
    person if already computed (then ``events`` are not read)."""
    conditions = all_conditions(segments)
    wide = profiles
    if conditions:
        aggregates = sums
        if aggregates is None:
            aggregates = event_aggregates(events, conditions, run_date, sum_by_person)
        wide = wide.join(aggregates, "person_id", "left")
        wide = wide.na.fill(0, [c.name for c in conditions])
    flags = [F.when(compile_rule(s.rule, segments), F.lit(s.name)) for s in segments.values()]
    return (
        wide.select("person_id", F.explode(F.array(*flags)).alias("segment"))
        .where(F.col("segment").isNotNull())
        .select("segment", "person_id")
    )
