"""Probabilistic matching of customer records: a Fellegi-Sunter model (Splink: trained on
DuckDB in the driver, scored on Spark) whose m and u probabilities are learned without labels
(u from random pairs, m by expectation maximisation), and whose matches above a threshold
become scored edges between customer ids.

It compares what ``silver.crm`` keeps, never a raw value: hashes for exact agreement, hashed
bigrams for the Dice similarity of names and street addresses (jobs/ingest/normalise.py
``hashed_grams``), the year, month and day of birth hashed apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from splink import Linker, SettingsCreator, SparkAPI, block_on

from jobs.ingest.crm import DETAIL_COLS, MATCH_COLS

FEATURES = [
    "first_name_meta_sha256",
    "last_name_meta_sha256",
    "email_sha256",
    "phone_sha256",
    "zip",
    "country",
    *DETAIL_COLS,
    *MATCH_COLS,
]
DOB = ["dob_year_sha256", "dob_month_sha256", "dob_day_sha256"]
M_SAME_CONTACT = 0.8  # two records of one person that both hold an email: the same one
M_NAME_DIFFERS = 0.1  # two records of one person whose names share almost no bigram
NAME_BANDS = [0.75, 0.5, 0.3]  # Dice similarity of two names' bigrams
ADDRESS_BANDS = [0.8, 0.6]


def customer_records(crm: DataFrame) -> DataFrame:
    """silver.crm -> what the model reads (columns an older table lacks are null)."""
    have = set(crm.columns)
    cols = [
        F.col(f) if f in have else F.lit(None).cast("array<string>" if "grams" in f else "string")
        for f in FEATURES
    ]
    return crm.select("customer_id", *[c.alias(f) for c, f in zip(cols, FEATURES, strict=True)])


def _null(*cols: str):
    either = " OR ".join(f"{c}_{s} IS NULL" for c in cols for s in ("l", "r"))
    return cll.CustomLevel(either, label_for_charts="null").configure(is_null_level=True)


def _dice_sql(grams: str) -> str:
    """Spark SQL that DuckDB reads the same (``cardinality``: an array's size in both)."""
    left, right = f"{grams}_l", f"{grams}_r"
    return (
        f"2 * cardinality(array_intersect({left}, {right})) / "
        f"(cardinality({left}) + cardinality({right}))"
    )


def _dice(grams: str, at: float):
    return cll.CustomLevel(f"{_dice_sql(grams)} >= {at}", label_for_charts=f"similar>={at}")


def _similar(name: str, exact: str, grams: str, bands: list[float]):
    """Null, equal, Dice bands, else: the levels of a name or an address."""
    levels = [
        _null(exact),
        cll.ExactMatchLevel(exact).configure(label_for_charts="exact"),
        *[_dice(grams, b) for b in bands],
        # set, not learned: EM drives it to nearly 0 (few duplicates differ this much), and then
        # one transposed short name ("Sam", "Sma") outweighs an equal address and birth date
        cll.ElseLevel().configure(m_probability=M_NAME_DIFFERS, fix_m_probability=True),
    ]
    return cl.CustomComparison(comparison_levels=levels, output_column_name=name)


def _contact(name: str, col: str, m_same: float):
    """An email or a phone: equal or not. Its m is set, not learned: records keyed in twice
    rarely both carry one, so EM learns it from namesakes (who differ) and would make a
    differing email no evidence at all."""
    fixed = {"fix_m_probability": True}
    levels = [
        _null(col),
        cll.ExactMatchLevel(col).configure(label_for_charts="exact", m_probability=m_same, **fixed),
        cll.ElseLevel().configure(m_probability=1 - m_same, **fixed),
    ]
    return cl.CustomComparison(comparison_levels=levels, output_column_name=name)


def _date_of_birth():
    agree = [f"CAST({c}_l = {c}_r AS INT)" for c in DOB]
    levels = [
        _null(*DOB),
        cll.CustomLevel(" + ".join(agree) + " = 3", label_for_charts="exact"),
        cll.CustomLevel(" + ".join(agree) + " = 2", label_for_charts="two of three"),
        cll.ElseLevel(),
    ]
    return cl.CustomComparison(comparison_levels=levels, output_column_name="date_of_birth")


def _home():
    """Street address, zip and city as one comparison: they agree together or not at all for
    two records of one person, and counted apart they would count one fact three times."""
    near = "(levenshtein(zip_l, zip_r) <= 1 OR city_meta_sha256_l = city_meta_sha256_r)"
    same = "address_sha256_l = address_sha256_r"
    levels = [
        cll.CustomLevel(
            "(zip_l IS NULL OR zip_r IS NULL) AND (city_meta_sha256_l IS NULL OR "
            "city_meta_sha256_r IS NULL)",
            label_for_charts="null",
        ).configure(is_null_level=True),
        cll.CustomLevel(f"{same} AND {near}", label_for_charts="same address"),
        *[
            cll.CustomLevel(
                f"{_dice_sql('address_grams')} >= {b} AND {near}",
                label_for_charts=f"address similar>={b}",
            )
            for b in ADDRESS_BANDS
        ],
        cll.CustomLevel(same, label_for_charts="same street address, other zip and city"),
        cll.CustomLevel("levenshtein(zip_l, zip_r) <= 1", label_for_charts="zip within one edit"),
        cll.CustomLevel("city_meta_sha256_l = city_meta_sha256_r", label_for_charts="same city"),
        cll.ElseLevel(),
    ]
    return cl.CustomComparison(comparison_levels=levels, output_column_name="home")


def comparisons() -> list:
    return [
        _similar("first_name", "first_name_meta_sha256", "first_name_grams", NAME_BANDS),
        _similar("last_name", "last_name_meta_sha256", "last_name_grams", NAME_BANDS),
        _home(),
        _date_of_birth(),
        _contact("email", "email_sha256", M_SAME_CONTACT),
        _contact("phone", "phone_sha256", M_SAME_CONTACT),
    ]


# pairs the model scores: any pair agreeing on one of these (a pair never shares none of them
# and still matches: a typo in the first name and the zip, no date of birth and no email)
BLOCKING = [
    ("zip", "last_name_meta_sha256"),
    ("zip", "first_name_meta_sha256"),
    ("zip", "address_sha256"),
    ("first_name_meta_sha256", "last_name_meta_sha256"),
    tuple(DOB),
    ("email_sha256",),
    ("phone_sha256",),
]


# EM passes: each learns the m of the comparisons its block leaves free. The first keeps
# people who share a home but not a birth year (a household: same surname, address and zip)
# out of the pairs that teach what a first name does between two records of one person
EM_BLOCKS = [
    ("zip", "dob_year_sha256"),
    ("first_name_meta_sha256", "last_name_meta_sha256"),
]


def settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="customer_id",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=[block_on(*cols) for cols in BLOCKING],
        retain_matching_columns=True,  # with the gammas: the evidence
        retain_intermediate_calculation_columns=False,
    )


@contextmanager
def splink_api(spark: SparkSession) -> Iterator[SparkAPI]:
    """Splink's Spark back end, its tables cached in the session (no checkpoint directory
    needed) and all of them dropped when the block ends: what the block returns must already
    be written or collected. Linkers are made with ``set_up_basic_logging=False``: Splink
    would otherwise configure the root logger and print its training progress in the job's
    output."""

    def views() -> set[str]:
        return {r["viewName"] for r in spark.sql("SHOW VIEWS").collect() if r["isTemporary"]}

    before = views()
    try:
        yield SparkAPI(
            spark_session=spark,
            break_lineage_method="persist",
            register_udfs_automatically=False,  # no string-distance UDF jar: none is used
        )
    finally:
        for name in views() - before:
            if name.startswith("__splink"):
                spark.catalog.uncacheTable(name)
                spark.catalog.dropTempView(name)


def train(records: DataFrame, max_pairs: int, seed: int) -> str:
    """-> the trained model (Splink's settings JSON, in Spark's dialect). The prior that two
    random records match comes from records sharing a name and a date of birth; u from
    ``max_pairs`` random pairs; m by EM in two passes whose blocks leave every comparison free
    in one of them.

    Training runs in DuckDB (Splink's own in-process engine) on the records collected to the
    driver, at most ``TRAIN_RECORDS`` of them: on Spark the same training is hundreds of small
    jobs (41 s for FEBRL's 1,000 records, most of it job start-up); what it learns is a few
    dozen numbers, which go into the Spark settings that score every pair."""
    import duckdb
    from splink import DuckDBAPI

    # one thread: EM's sums then add up in one order, and a rerun learns the same last digits
    con = duckdb.connect(config={"threads": 1})
    try:
        used = training_sample(records).select("customer_id", *TRAINING_COLUMNS)
        con.register("crm_records", used.toArrow())
        api = DuckDBAPI(connection=con)
        linker = Linker("crm_records", settings(), db_api=api, set_up_basic_logging=False)
        t = linker.training
        t.estimate_probability_two_random_records_match(
            [block_on("first_name_meta_sha256", "last_name_meta_sha256", *DOB)], recall=0.7
        )
        t.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
        for cols in EM_BLOCKS:
            t.estimate_parameters_using_expectation_maximisation(block_on(*cols))
        trained = linker.misc.save_model_to_json()
    finally:
        con.close()
    return json.dumps(with_parameters(settings().create_settings_dict("spark"), trained))


# records the training reads: a fixed sample of customer ids beyond it. The prior and the m and
# u estimates are ratios over pairs, which a uniform sample of records keeps
TRAIN_RECORDS = 500_000
TRAINED_KEYS = ("m_probability", "u_probability", "fix_m_probability", "fix_u_probability")
# what the comparisons and blocks read (the features kept for scoring's evidence aside)
TRAINING_COLUMNS = [
    "first_name_meta_sha256",
    "first_name_grams",
    "last_name_meta_sha256",
    "last_name_grams",
    "zip",
    "city_meta_sha256",
    "address_sha256",
    "address_grams",
    *DOB,
    "email_sha256",
    "phone_sha256",
]


def training_sample(records: DataFrame) -> DataFrame:
    """At most about ``TRAIN_RECORDS`` records, the same ones on every run (by a hash of the
    customer id)."""
    n = records.count()
    if n <= TRAIN_RECORDS:
        return records
    bucket = F.pmod(F.xxhash64("customer_id"), F.lit(1_000_000))
    keep = bucket < F.lit(TRAIN_RECORDS * 1_000_000 // n)
    return records.where(keep)


def with_parameters(model: dict, trained: dict) -> dict:
    """``model`` (settings in one dialect) with the prior and every level's m and u of
    ``trained`` (the same comparisons, trained in another dialect)."""
    model = json.loads(json.dumps(model))
    model["probability_two_random_records_match"] = trained["probability_two_random_records_match"]
    pairs = zip(model["comparisons"], trained["comparisons"], strict=True)
    for comparison, learned in pairs:
        name = comparison["output_column_name"]
        if name != learned["output_column_name"]:
            raise ValueError(f"trained comparisons out of order at {name}")
        levels = zip(comparison["comparison_levels"], learned["comparison_levels"], strict=True)
        for level, got in levels:
            level.update({k: got[k] for k in TRAINED_KEYS if k in got})
    return model


def levels(model: str) -> dict[str, list[str]]:
    """comparison -> its levels' labels, indexed by Splink's gamma (null is -1, else 0)."""
    out = {}
    for comp in json.loads(model)["comparisons"]:
        labels = [lv.get("label_for_charts", "") for lv in comp["comparison_levels"]]
        non_null = [
            lab
            for lv, lab in zip(comp["comparison_levels"], labels, strict=True)
            if not lv.get("is_null_level")
        ]
        out[comp["output_column_name"]] = list(reversed(non_null))
    return out


def evidence(model: str) -> Column:
    """The fields on which a scored pair agreed, fully or in part ("last_name:similar>=0.75")."""
    parts = []
    for name, labels in levels(model).items():
        gamma = F.col(f"gamma_{name}")
        label = F.element_at(F.array(*[F.lit(x) for x in labels]), gamma + 1)
        parts.append(F.when(gamma > 0, F.concat(F.lit(name + ":"), label)))
    return F.filter(F.array(*parts), lambda x: x.isNotNull())


def predict(spark: SparkSession, records: DataFrame, model: str, threshold: float, write) -> None:
    """Scores every blocked pair with ``model`` and hands the pairs at or above ``threshold``,
    (customer_id_l, customer_id_r, match_probability, match_weight, evidence), to ``write``
    while Splink's tables still exist."""
    with splink_api(spark) as api:
        linker = Linker(records, json.loads(model), db_api=api, set_up_basic_logging=False)
        scored = linker.inference.predict(threshold_match_probability=threshold)
        pairs = scored.as_spark_dataframe()
        write(
            pairs.select(
                "customer_id_l",
                "customer_id_r",
                "match_probability",
                "match_weight",
                evidence(model).alias("evidence"),
            )
        )


def scored_edges(pairs: DataFrame, crm: DataFrame) -> DataFrame:
    """Matched pairs -> edges between customer-id nodes, (src, dst, first_seen, last_seen,
    count, match_probability, match_weight, evidence). ``count`` is 0: no record holds both
    ids, so a split over a per-person limit cuts a scored edge before any deterministic one.
    Seen from when the later of the two records was updated."""
    when = crm.select("customer_id", "updated_at")
    left = when.select(F.col("customer_id").alias("customer_id_l"), F.col("updated_at").alias("l"))
    right = when.select(F.col("customer_id").alias("customer_id_r"), F.col("updated_at").alias("r"))
    a, b = (F.concat(F.lit("crm:"), F.col(f"customer_id_{s}")) for s in ("l", "r"))
    seen = F.greatest("l", "r")
    return (
        pairs.join(left, "customer_id_l")
        .join(right, "customer_id_r")
        .select(
            F.least(a, b).alias("src"),
            F.greatest(a, b).alias("dst"),
            seen.alias("first_seen"),
            seen.alias("last_seen"),
            F.lit(0).cast("long").alias("count"),
            "match_probability",
            "match_weight",
            "evidence",
        )
    )
