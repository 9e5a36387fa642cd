from pathlib import Path

import pytest

from jobs.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_loads():
    s = load_settings(ROOT / "conf" / "dmp.yaml", environ={})
    assert s.spark.master == "local[2]"
    assert {d.platform for d in s.destinations} == {"google", "meta", "ttd", "generic"}


def test_unknown_key_names_file_and_key(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("identity:\n  max_anchor_linkz: 3\n")
    with pytest.raises(ConfigError) as err:
        load_settings(f, environ={})
    assert str(f) in str(err.value)
    assert "identity.max_anchor_linkz: unknown key" in str(err.value)


def test_wrong_type_says_what_was_expected(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("spark:\n  shuffle_partitions: many\n")
    with pytest.raises(ConfigError, match=r"spark\.shuffle_partitions: .*integer.*'many'"):
        load_settings(f, environ={})


def test_missing_file_and_missing_required_key(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml", environ={})
    f = tmp_path / "bad.yaml"
    f.write_text("lookalikes:\n  - name: x\n")
    with pytest.raises(ConfigError, match=r"lookalikes\.0\.seed_segment: required key is missing"):
        load_settings(f, environ={})


def test_environment_overrides_file(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text("storage:\n  lake_root: here\n")
    s = load_settings(
        f,
        environ={"DMP_STORAGE__LAKE_ROOT": "s3a://lake/dmp", "DMP_SPARK__SHUFFLE_PARTITIONS": "16"},
    )
    assert s.storage.lake_root == "s3a://lake/dmp"
    assert s.spark.shuffle_partitions == 16
    assert s.resolve(s.storage.lake_root) == "s3a://lake/dmp"


def test_an_external_id_only_where_the_platform_takes_one(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(
        "destinations:\n  - {name: g, platform: google, segments: [s], send_external_id: true}\n"
    )
    with pytest.raises(ConfigError, match=r"destinations\.0.*send_external_id: google takes no"):
        load_settings(f, environ={})


def test_the_jar_cache_is_read_in_place_not_copied(spark, settings):
    """A local master this process starts and workers that hold the project read the jars
    from their class paths. Spark copies every ``spark.jars`` entry into each JVM's folder:
    641 MB per start, left behind by a killed job."""
    from pyspark import SparkFiles

    from jobs.session import jar_conf, jar_paths

    jars = jar_paths(settings)
    assert any("bundle" in j for j in jars)
    on_workers = settings.model_copy(
        update={"spark": settings.spark.model_copy(update={"jars_on_workers": True})}
    )
    for read_in_place in (jar_conf(settings, True), jar_conf(on_workers, False)):
        assert "spark.jars" not in read_in_place
        assert read_in_place["spark.driver.extraClassPath"].split(":") == jars
        assert read_in_place["spark.executor.extraClassPath"].split(":") == jars
    assert jar_conf(settings, launched_here=False) == {"spark.jars": ",".join(jars)}
    # the suite's own session: nothing copied
    spark.range(1).count()
    assert not list(Path(SparkFiles.getRootDirectory()).glob("*.jar"))
