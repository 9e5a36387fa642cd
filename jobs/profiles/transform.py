"""Pure transformations: attributed events (+ CRM) -> one profile row per person."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

AFFINITY_HALF_LIFE_DAYS = 14.0
# revenue is summed exactly (to 1/10,000 of the currency unit), so the total does not depend on
# the order Spark adds the purchases in (a sum of doubles changed in its last digits per plan)
MONEY = "decimal(24,4)"


def _count_if(cond):
    return F.sum(F.when(cond, 1).otherwise(0))


def distinct_count(col: str | Column) -> Column:
    """Exact COUNT(DISTINCT col), nulls not counted, without Spark's Expand: several
    countDistinct in one aggregation copy every input row once per distinct column and shuffle
    them all; a set per person is one pass (-28% on the profiles job at 3.1M events)."""
    return F.size(F.collect_set(col))


def behaviour(events: DataFrame, run_date: str, extra: Sequence[Column] = ()) -> DataFrame:
    """events(person_id, ...) -> behaviour, RFM and channel counts per person, plus any
    ``extra`` aggregate columns computed in the same pass."""
    c = F.col
    today = F.lit(run_date).cast("date")
    return (
        events.groupBy("person_id")
        .agg(
            F.min("event_ts").alias("first_seen"),
            F.max("event_ts").alias("last_seen"),
            F.count("*").alias("events"),
            distinct_count("session_id").alias("sessions"),
            _count_if(c("source") == "web").alias("web_events"),
            _count_if(c("source") == "app").alias("app_events"),
            _count_if(c("source") == "email").alias("email_events"),
            _count_if(c("event_type") == "product_view").alias("product_views"),
            _count_if(c("event_type") == "add_to_cart").alias("add_to_carts"),
            distinct_count(F.when(c("event_type") == "purchase", c("order_id"))).alias("purchases"),
            F.coalesce(
                F.sum(F.when(c("event_type") == "purchase", c("revenue").cast(MONEY))).cast(
                    "double"
                ),
                F.lit(0.0),
            ).alias("revenue"),
            F.max(F.when(c("event_type") == "purchase", c("event_ts"))).alias("last_purchase_at"),
            _count_if(c("event_type").isin("email_open", "email_click")).alias("email_engagements"),
            distinct_count("device_id").alias("devices"),
            distinct_count("anonymous_id").alias("cookies"),
            # the latest statement; two at the same instant that disagree count as a no
            F.max_by(
                "ad_consent",
                F.when(c("ad_consent").isNotNull(), F.struct(c("event_ts"), ~c("ad_consent"))),
            ).alias("event_consent"),
            F.max(F.when(c("ad_consent").isNotNull(), c("event_ts"))).alias("event_consent_at"),
            F.max_by("country", F.struct(c("event_ts"), c("country"))).alias("event_country"),
            *extra,
        )
        .withColumn("recency_days", F.datediff(today, F.to_date("last_seen")))
        .withColumn("days_since_purchase", F.datediff(today, F.to_date("last_purchase_at")))
        .withColumn("first_seen_days", F.datediff(today, F.to_date("first_seen")))
    )


def category_affinity(events: DataFrame, run_date: str) -> DataFrame:
    """Time-decayed category interest: each view/cart/purchase weighs 1/2/4, halved every
    ``AFFINITY_HALF_LIFE_DAYS``. Returns (person_id, category_affinity map, category_views map
    (decayed product views only: browsing interest without buying), top_category)."""
    c = F.col
    age = F.datediff(F.lit(run_date).cast("date"), c("event_date"))
    decay = F.pow(F.lit(0.5), age / F.lit(AFFINITY_HALF_LIFE_DAYS))
    weight = (
        F.when(c("event_type") == "purchase", 4.0)
        .when(c("event_type") == "add_to_cart", 2.0)
        .otherwise(1.0)
        * decay
    )
    per_cat = (
        events.where(c("category").isNotNull())
        .groupBy("person_id", "category")
        .agg(
            F.sum(weight).alias("score"),
            F.coalesce(F.sum(F.when(c("event_type") == "product_view", decay)), F.lit(0.0)).alias(
                "view_score"
            ),
        )
    )
    return per_cat.groupBy("person_id").agg(
        F.map_from_entries(F.collect_list(F.struct("category", F.round("score", 4)))).alias(
            "category_affinity"
        ),
        F.map_from_entries(F.collect_list(F.struct("category", F.round("view_score", 4)))).alias(
            "category_views"
        ),
        # highest score; a tie goes to the first name, so reruns agree (a bare max_by on the
        # score kept whichever tied row came last, which changed with the plan)
        F.min_by("category", F.struct(-F.round("score", 4), F.col("category"))).alias(
            "top_category"
        ),
    )


def consent(profiles: DataFrame) -> DataFrame:
    """Advertising consent: the latest statement wins (events' consent choices, CRM opt-outs);
    no statement at all means no consent."""
    c = F.col
    crm_says_no = c("crm_opt_out") == F.lit(True)
    crm_newer = c("event_consent_at").isNull() | (c("crm_updated_at") >= c("event_consent_at"))
    return profiles.withColumn(
        "ad_consent",
        F.when(crm_says_no & crm_newer, F.lit(False)).otherwise(
            F.coalesce(c("event_consent"), F.lit(False))
        ),
    )


def crm_traits(person_map: DataFrame, crm: DataFrame) -> DataFrame:
    """CRM facts per person (latest CRM record if a person has several)."""
    linked = person_map.where(F.col("id_type") == "crm").select(
        "person_id", F.col("id_value").alias("customer_id")
    )
    return (
        linked.join(crm, "customer_id")
        .groupBy("person_id")
        .agg(
            F.max_by("country", "updated_at").alias("crm_country"),
            F.max_by("zip", "updated_at").alias("zip"),
            F.max_by("opt_out", "updated_at").alias("crm_opt_out"),
            F.max("updated_at").alias("crm_updated_at"),
            F.count("*").alias("crm_records"),
        )
    )


def identifier_counts(person_map: DataFrame) -> DataFrame:
    types = ["cookie", "device", "user", "email", "phone", "crm"]
    counts = person_map.groupBy("person_id").pivot("id_type", types).count().na.fill(0)
    flags = person_map.groupBy("person_id").agg(
        F.max(F.coalesce(F.col("quarantined"), F.lit(False))).alias("identity_quarantined")
    )
    return counts.select("person_id", *[F.col(t).alias(f"n_{t}") for t in types]).join(
        flags, "person_id"
    )


def build_profiles(
    events: DataFrame,
    person_map: DataFrame,
    crm: DataFrame | None,
    run_date: str,
    extra: Sequence[Column] = (),
) -> DataFrame:
    """One row per person; ``extra`` aggregate columns (e.g. the activation identifiers) ride
    along in the behaviour pass, so the attributed events are aggregated once."""
    profiles = (
        behaviour(events, run_date, extra)
        .join(category_affinity(events, run_date), "person_id", "left")
        .join(identifier_counts(person_map), "person_id", "left")
    )
    if crm is not None:
        profiles = profiles.join(crm_traits(person_map, crm), "person_id", "left")
    else:
        profiles = profiles.select(
            "*",
            F.lit(None).cast("string").alias("crm_country"),
            F.lit(None).cast("string").alias("zip"),
            F.lit(None).cast("boolean").alias("crm_opt_out"),
            F.lit(None).cast("timestamp").alias("crm_updated_at"),
            F.lit(0).alias("crm_records"),
        )
    profiles = consent(profiles).withColumn("country", F.coalesce("crm_country", "event_country"))
    return profiles.withColumn("run_date", F.lit(run_date).cast("date"))
