"""Typed configuration: ``conf/dmp.yaml`` (plus ``conf/segments/*.yaml``), validated at start-up.

A wrong key or value fails at once with the file, the key and what was expected. Environment
variables override file values: ``DMP_LAKE__ROOT=s3a://lake`` sets ``lake.root``. S3 credentials
are never read from files: they come from the environment / the AWS credential chain.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONF = PROJECT_ROOT / "conf" / "dmp.yaml"
ENV_PREFIX = "DMP_"


class ConfigError(Exception):
    """A configuration problem, always naming the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkSettings(_Strict):
    master: str = "local[2]"
    app_name: str = "open-dmp"
    shuffle_partitions: int = Field(8, ge=1)
    driver_memory: str = "4g"
    ui_enabled: bool = False
    jar_dir: str = ".cache/jars"
    # the cluster's workers hold jar_dir at the same path (an image, a shared disk): the jars
    # are named as local: URIs and read in place instead of shipped to every executor
    jars_on_workers: bool = False
    extra_conf: dict[str, str] = Field(default_factory=dict)


class S3Settings(_Strict):
    endpoint: str | None = None
    region: str = "us-east-1"
    path_style_access: bool = True
    ssl_enabled: bool = False
    # bounded retries: an unreachable or failing store fails the job in seconds, not hours
    max_attempts: int = Field(3, ge=1)  # AWS SDK attempts per request
    retry_limit: int = Field(3, ge=0)  # s3a retries of a failed operation, backing off
    retry_interval: str = "500ms"  # first back-off, doubled each retry
    connect_timeout: str = "5s"


class StorageSettings(_Strict):
    lake_root: str = "data/lake"
    raw_root: str = "data/raw"
    audience_root: str = "data/audiences"
    reports_root: str = "data/reports"


FORMATS = ("native", "segment", "rudderstack", "snowplow", "ga4")
DATE_FORMATS = ("yyyy-MM-dd", "yyyyMMdd", "MM-dd-yyyy", "yyyy/MM/dd", "epoch_ms", "epoch_s")
CHANNELS = ("web", "app", "email", "server")


class ArrivalDate(_Strict):
    """How a file's arrival day is read from its path: the first group of ``pattern`` (a regex
    searched in the whole path), read as ``format``."""

    pattern: str
    format: Literal[DATE_FORMATS] = "yyyy-MM-dd"

    @field_validator("pattern")
    @classmethod
    def _one_group(cls, value: str) -> str:
        try:
            groups = re.compile(value).groups
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if groups != 1:
            raise ValueError(f"needs exactly one capturing group (has {groups})")
        return value


class SourceSettings(_Strict):
    """One clickstream source: what wrote it (``format``), where its files are (``path``, a
    folder or bucket prefix; default ``<raw_root>/<name>``), which files under it (``files``, a
    Hadoop glob) and how their arrival day is read from the path (``arrival_date``). ``files``
    and ``arrival_date`` default to the layout the format's own writer uses."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    format: Literal[FORMATS] = "native"
    path: str | None = None
    files: str | None = None
    arrival_date: ArrivalDate | None = None
    # the channel of a message that does not say (Segment `channel`, Snowplow `platform`...)
    channel: Literal[CHANNELS] | None = None
    # collector event name -> platform event type, on top of the format's own mapping
    event_names: dict[str, str] = Field(default_factory=dict)
    # platform field -> property names tried before the format's own (e.g. category: [dept])
    properties: dict[str, list[str]] = Field(default_factory=dict)
    # consent categories that mean advertising (Segment categoryPreferences, Snowplow scopes)
    ad_consent_categories: list[str] = Field(
        default_factory=lambda: ["advertising", "marketing", "targeting", "ads"]
    )

    @field_validator("files")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or "://" in value):
            raise ValueError("a glob relative to the source's path, not a path of its own")
        return value


class IngestSettings(_Strict):
    # a bare name is a native source under <raw_root>/<name>
    sources: list[SourceSettings] = Field(
        default_factory=lambda: [SourceSettings(name=n) for n in ("web", "app", "email")]
    )
    bot_user_agent_patterns: list[str] = Field(
        default_factory=lambda: ["bot", "crawler", "spider", "headless"]
    )
    default_country: str = Field("US", pattern=r"^[A-Z]{2}$")
    max_events_per_cookie_per_day: int = Field(2000, ge=1)
    max_line_chars: int = Field(65_536, ge=100)
    # a micro-batch takes new files up to this many bytes (compressed, as stored): collectors
    # write many small files, and each batch costs seconds whatever its size
    max_bytes_per_batch: int = Field(1 << 30, ge=1 << 20)
    # or up to this many files instead, when set
    max_files_per_batch: int | None = Field(None, ge=1)
    # a source that sends no session id (Segment's) gets one per cookie, a new session after
    # this long without an event (GA4's default and Segment's dbt package's)
    session_timeout_minutes: int = Field(30, ge=1)

    @field_validator("sources", mode="before")
    @classmethod
    def _bare_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> IngestSettings:
        names = [s.name for s in self.sources]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"source names must be unique: {', '.join(twice)} given twice")
        if "crm" in names:
            raise ValueError("'crm' is the customer-file source; name a clickstream source else")
        return self


class MatchingSettings(_Strict):
    """Probabilistic matching of customer records (jobs/identity/matching.py)."""

    enabled: bool = True
    # pairs of customer records at or above this match probability become scored edges
    threshold: float = Field(0.5, gt=0, lt=1)
    retrain_days: int = Field(30, ge=1)  # the model is trained again once it is this old
    sample_pairs: int = Field(1_000_000, ge=1_000)  # random record pairs that estimate u


class IdentitySettings(_Strict):
    # Identifier types in order of trust: an event is attributed through the first one present.
    link_types: list[str] = Field(
        default_factory=lambda: ["user", "crm", "email", "phone", "device", "cookie"]
    )
    anchor_types: list[str] = Field(default_factory=lambda: ["user", "crm"])
    blocked_emails: list[str] = Field(default_factory=list)
    blocked_value_patterns: list[str] = Field(default_factory=list)
    max_anchor_links: int = Field(1, ge=1)
    max_degree: int = Field(500, ge=2)
    # GraphX label-propagation supersteps of connected components (one per hop of a
    # component's longest shortest path) before Large-Star / Small-Star finishes the rest
    # (the jobs' own default is jobs.identity.components.PROPAGATION_SUPERSTEPS)
    propagation_supersteps: int = Field(30, ge=1)
    # at most this many identifiers of a type in one person; more splits at the weakest link
    max_per_person: dict[str, int] = Field(default_factory=lambda: {"user": 1})
    split_rounds: int = Field(5, ge=0)
    max_cluster_size: int = Field(200, ge=2)  # larger clusters are quarantined, never exported
    guards_enabled: bool = True  # off only to see what the guards prevent
    matching: MatchingSettings = Field(default_factory=MatchingSettings)


class LookalikeSettings(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,99}$")
    seed_segment: str
    reach_percents: list[float] = Field(default_factory=lambda: [1.0, 5.0, 10.0], min_length=1)
    min_seed_size: int = Field(100, ge=1)
    holdout_fraction: float = Field(0.2, gt=0, lt=1)
    unlabelled_ratio: float = Field(5.0, gt=0)
    consented_only: bool = True
    seed: int = 7
    # profile feature groups the model sees (the cosine baseline always uses the affinities)
    features: list[Literal["affinity", "counts", "channels", "recency"]] = Field(
        default_factory=lambda: ["affinity", "counts", "channels", "recency"], min_length=1
    )


class DestinationSettings(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,99}$")
    platform: Literal["google", "meta", "ttd", "generic"]
    segments: list[str]
    min_audience_size: int = Field(100, ge=0)
    max_rows_per_file: int = Field(1_000_000, ge=1)
    # send the CRM's customer id (Meta's EXTERN_ID; a column of the generic file): it matches
    # only where the advertiser sends the same id to the platform itself
    send_external_id: bool = False

    @model_validator(mode="after")
    def _external_id_where_taken(self):
        if self.send_external_id and self.platform not in ("meta", "generic"):
            raise ValueError(
                f"send_external_id: {self.platform} takes no external id in these files "
                "(only meta and generic do)"
            )
        return self

    def opted(self) -> frozenset[str]:
        """The opt-in columns this destination sends (``jobs.activation.rules.Rule.opt_in``)."""
        return frozenset({"send_external_id"} if self.send_external_id else ())


class PrivacySettings(_Strict):
    # after an erasure, table versions older than this are vacuumed so time travel cannot bring
    # the person back; 0 = at once (run erasures when no other job writes the lake)
    erasure_vacuum_hours: int = Field(0, ge=0)
    # retention job: days of raw landing files, bronze and silver events to keep (None = all)
    raw_days: int | None = Field(None, ge=1)
    bronze_days: int | None = Field(None, ge=1)
    silver_days: int | None = Field(None, ge=1)
    # vacuum job: files no current table version reads are deleted once this old (Delta's
    # default, 168, keeps a week of time travel and readers in flight safe)
    vacuum_hours: int = Field(168, ge=0)


class OpsSettings(_Strict):
    # a job's lock whose owner is not provably alive is taken over after this long
    lock_stale_minutes: int = Field(360, ge=1)
    # an erasure and the jobs that write the lake wait this long for each other, then give up
    lock_wait_minutes: float = Field(120, gt=0)
    lock_poll_seconds: float = Field(5, gt=0)


class Settings(_Strict):
    storage: StorageSettings = Field(default_factory=StorageSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    segments_dir: str = "conf/segments"
    # segment overlaps are exact while the self-join has at most this many (person, a, b) rows,
    # estimated from Theta sketches above it
    segment_overlap_exact_max_pairs: int = Field(50_000_000, ge=0)
    lookalikes: list[LookalikeSettings] = Field(default_factory=list)
    destinations: list[DestinationSettings] = Field(default_factory=list)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)

    def resolve(self, path: str) -> str:
        """Resolve a configured location: URIs stay as they are, relative paths hang off the
        project root, so the same config works from any working directory."""
        if "://" in path or path.startswith("/"):
            return path
        return str(PROJECT_ROOT / path)


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """``DMP_A__B=v`` -> {"a": {"b": v}}; values parsed as YAML so numbers and lists work."""
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = yaml.safe_load(raw)
    return tree


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def format_validation_error(path: Path, exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            what = "unknown key"
        elif err["type"] == "missing":
            what = "required key is missing"
        else:
            what = f"{err['msg']} (got {err.get('input')!r})"
        lines.append(f"{path}: {prefix}{key}: {what}")
    return "\n".join(lines)


def load_settings(
    path: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    environ = dict(os.environ if environ is None else environ)
    conf_path = Path(path or environ.get("DMP_CONF") or DEFAULT_CONF)
    data = read_yaml(conf_path)
    if not isinstance(data, dict):
        raise ConfigError(f"{conf_path}: expected a mapping of sections at the top level")
    data = _merge(data, _env_overrides(environ))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(conf_path, exc)) from exc
