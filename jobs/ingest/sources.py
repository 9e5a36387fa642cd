"""Where each clickstream source's files are, and how their arrival day is read from a path.

Each format's own writer has a layout; a source takes it unless its entry says otherwise:

- ``native``: ``<path>/dt=YYYY-MM-DD/*.ndjson.gz`` (this platform's generator and contract);
- ``segment``: ``<path>/segment-logs/<source-id>/<received day>/<file>.gz``, the day as the
  epoch milliseconds of its UTC midnight (Segment's S3 destination);
- ``rudderstack``: ``<path>/rudder-logs/<source-id>/<MM-DD-YYYY or YYYY-MM-DD>/<file>.json.gz``
  (RudderStack's object-storage destinations; the date form depends on the workspace);
- ``snowplow``: ``<path>/<yyyy-MM-dd-HHmmss>-<uuid or sequence numbers>.gz`` (the S3 loader's
  enriched output without a partition format);
- ``ga4``: ``<path>/events_YYYYMMDD/*`` (one folder per daily table, NDJSON or Parquet, as
  ``bq extract`` writes it).

The arrival day partitions bronze and picks a batch's partitions when it is read back; the
event day comes from the event's own time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.config import ArrivalDate, IngestSettings, Settings, SourceSettings

RUDDER_DAY = r"(\d{2}-\d{2}-\d{4}|\d{4}-\d{2}-\d{2})"
LAYOUTS: dict[str, tuple[str, ArrivalDate]] = {
    "native": (
        "dt=*/*.ndjson.gz",
        ArrivalDate(pattern=r"dt=(\d{4}-\d{2}-\d{2})", format="yyyy-MM-dd"),
    ),
    "segment": (
        "segment-logs/*/*/*.gz",
        ArrivalDate(pattern=r"/(\d{13})/[^/]*$", format="epoch_ms"),
    ),
    "rudderstack": (
        "rudder-logs/*/*/*.gz",
        ArrivalDate(pattern=rf"/{RUDDER_DAY}/[^/]*$", format="MM-dd-yyyy"),
    ),
    "snowplow": (
        "*.gz",
        ArrivalDate(pattern=r"(\d{4}-\d{2}-\d{2})-\d{6}-[^/]*$", format="yyyy-MM-dd"),
    ),
    "ga4": ("events_*/*", ArrivalDate(pattern=r"events_(\d{8})", format="yyyyMMdd")),
}


@dataclass(frozen=True)
class Source:
    """A configured source with its layout resolved."""

    settings: SourceSettings
    root: str
    files: str
    arrival: ArrivalDate

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def format(self) -> str:
        return self.settings.format

    @property
    def glob(self) -> str:
        return f"{self.root}/{self.files}"


def resolve_source(settings: Settings, source: SourceSettings) -> Source:
    files, arrival = LAYOUTS[source.format]
    raw = settings.resolve(settings.storage.raw_root).rstrip("/")
    root = settings.resolve(source.path).rstrip("/") if source.path else f"{raw}/{source.name}"
    return Source(source, root, source.files or files, source.arrival_date or arrival)


def sources(settings: Settings) -> list[Source]:
    return [resolve_source(settings, s) for s in settings.ingest.sources]


def with_sources(settings: Settings, entries: list[dict]) -> Settings:
    """``settings`` reading the sources ``entries`` (as ``ingest.sources`` gives them)."""
    ingest = IngestSettings.model_validate({**settings.ingest.model_dump(), "sources": entries})
    return settings.model_copy(update={"ingest": ingest})


def _day(text: str, fmt: str) -> str | None:
    try:
        if fmt in ("epoch_ms", "epoch_s"):
            seconds = int(text) / (1000 if fmt == "epoch_ms" else 1)
            return datetime.fromtimestamp(seconds, UTC).date().isoformat()
        if fmt == "MM-dd-yyyy" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text).isoformat()  # RudderStack writes either form
        pattern = {
            "yyyy-MM-dd": "%Y-%m-%d",
            "yyyyMMdd": "%Y%m%d",
            "MM-dd-yyyy": "%m-%d-%Y",
            "yyyy/MM/dd": "%Y/%m/%d",
        }[fmt]
        return datetime.strptime(text, pattern).date().isoformat()
    except (ValueError, OverflowError):
        return None


def arrival_day(path: str, arrival: ArrivalDate) -> str | None:
    """The arrival day (YYYY-MM-DD) of a file, or None when its path does not tell."""
    m = re.search(arrival.pattern, path)
    return _day(m.group(1), arrival.format) if m else None


def arrival_day_column(path: Column, arrival: ArrivalDate) -> Column:
    """``arrival_day`` as a Column expression (a string YYYY-MM-DD, or null)."""
    text = F.regexp_extract(path, arrival.pattern, 1)
    fmt = arrival.format
    if fmt in ("epoch_ms", "epoch_s"):
        seconds = (text.try_cast("long") / (1000 if fmt == "epoch_ms" else 1)).cast("long")
        # the session's time zone is UTC (jobs/session.py), so this is the UTC day
        day = F.date_format(F.timestamp_seconds(seconds), "yyyy-MM-dd")
    elif fmt == "MM-dd-yyyy":
        day = F.coalesce(F.try_to_date(text, "MM-dd-yyyy"), F.try_to_date(text, "yyyy-MM-dd")).cast(
            "string"
        )
    else:
        day = F.try_to_date(text, fmt).cast("string")
    return F.when(text != "", day)
