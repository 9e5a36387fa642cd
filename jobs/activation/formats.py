"""Platform file formats, from per-person identifiers; each column as ``rules.RULES`` says.

Input columns (one row per person): ``identifiers.IDENTIFIER_COLS``.
Each function returns (rows, rejected): a person with nothing the platform can match on is
rejected on its own, the rest of the file still ships.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.activation.files import REPEAT
from jobs.activation.rules import EXTERNAL_ID, RULES, columns, rules


def _split(df: DataFrame, usable) -> tuple[DataFrame, DataFrame]:
    return df.where(usable), df.where(~usable).select("person_id")


def _country(default_country: str):
    return F.coalesce(F.upper(F.trim("country")), F.lit(default_country))


NONE: frozenset[str] = frozenset()


def google(ids: DataFrame, default_country: str = "US", opted=NONE) -> tuple[DataFrame, DataFrame]:
    """Customer Match CSV: hashed email, phone and names; country and zip in clear."""
    rows = ids.select("person_id", *columns("google", _country(default_country), opted))
    return _split(rows, F.col("Email").isNotNull() | F.col("Phone").isNotNull())


def meta(ids: DataFrame, default_country: str = "US", opted=NONE) -> tuple[DataFrame, DataFrame]:
    """Custom Audiences multi-key: everything hashed except MADID (mobile advertiser id) and,
    for a destination that opts in, EXTERN_ID."""
    rows = ids.select("person_id", *columns("meta", _country(default_country), opted))
    usable = F.col("EMAIL").isNotNull() | F.col("PHONE").isNotNull() | F.col("MADID").isNotNull()
    return _split(rows, usable)


def ttd(ids: DataFrame, default_country: str = "US", opted=NONE) -> tuple[DataFrame, DataFrame]:
    """The Trade Desk first-party data: one row per identifier (IdType, Id), every email and
    phone the person has."""
    cols = columns("ttd", _country(default_country), opted)
    per_type = [
        F.transform(F.coalesce(col, F.array().cast("array<string>")), _typed(r.header))
        for r, col in zip(rules("ttd", opted), cols, strict=True)
    ]
    cands = F.flatten(F.array(*per_type))
    rows = ids.select("person_id", F.explode(cands).alias("x")).where(F.col("x.Id").isNotNull())
    rows = rows.select("person_id", "x.IdType", "x.Id")
    rejected = ids.join(rows.select("person_id").distinct(), "person_id", "left_anti").select(
        "person_id"
    )
    return rows, rejected


def generic(ids: DataFrame, default_country: str = "US", opted=NONE) -> tuple[DataFrame, DataFrame]:
    """Every identifier column as the lake holds it; the customer id only if opted in."""
    rows = ids if EXTERNAL_ID in opted else ids.drop("customer_id")
    return rows, ids.where(F.lit(False)).select("person_id")


def _typed(id_type: str):
    """(IdType, Id) of one value (a one-argument lambda: Spark reads a second as the index)."""
    return lambda v: F.struct(F.lit(id_type).alias("IdType"), v.alias("Id"))


def identifier_counts(platform: str, rows: DataFrame) -> dict[str, int]:
    """Rows per identifier type, for the manifest: how many values each column (all the
    columns of a repeated header together; The Trade Desk: each IdType) holds."""
    if platform == "ttd":
        return {
            r["IdType"]: r["n"]
            for r in rows.groupBy("IdType").agg(F.count("*").alias("n")).collect()
        }
    if platform not in RULES:
        return {}
    headers = {r.header: REPEAT.sub("", r.header) for r in RULES[platform]}
    headers = {c: h for c, h in headers.items() if c in rows.columns}  # opt-ins left out
    counts = rows.agg(*[F.count(F.col(f"`{c}`")).alias(c) for c in headers]).first().asDict()
    out: dict[str, int] = {}
    for column, header in headers.items():
        out[header] = out.get(header, 0) + int(counts[column])
    return out


FORMATS = {"google": google, "meta": meta, "ttd": ttd, "generic": generic}
