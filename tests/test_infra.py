"""The deployable infrastructure in infra/, validated with what runs here: Terraform parsed as
HCL2 with every reference resolved and the security rules checked; the compose file and the
Kubernetes job checked against this project's own config schema and CLI."""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest
import yaml

from jobs.cli import build_parser
from jobs.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
TF = ROOT / "infra" / "terraform"


def _unq(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {_unq(k): _unq(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_unq(v) for v in value]
    return value


@pytest.fixture(scope="module")
def tf():
    blocks: dict[str, list] = {}
    for path in sorted(TF.glob("*.tf")):
        with open(path) as fh:
            for kind, items in _unq(hcl2.load(fh)).items():
                blocks.setdefault(kind, []).extend(items)
    return blocks


def _named(blocks, kind):
    """{(type, name): body} for resources and data, {name: body} for variables."""
    out = {}
    for item in blocks.get(kind, []):
        for a, body in item.items():
            if kind in ("resource", "data"):
                for b, inner in body.items():
                    out[(a, b)] = inner
            else:
                out[a] = body
    return out


def test_every_reference_resolves(tf):
    variables = set(_named(tf, "variable"))
    resources = set(_named(tf, "resource"))
    data = set(_named(tf, "data"))
    local_names = {k for item in tf.get("locals", []) for k in item}
    text = "\n".join(p.read_text() for p in TF.glob("*.tf"))
    assert set(re.findall(r"\bvar\.(\w+)", text)) <= variables
    assert set(re.findall(r"\blocal\.(\w+)", text)) <= local_names
    assert set(re.findall(r"\bdata\.(\w+)\.(\w+)", text)) <= data
    refs = set(re.findall(r"(?<![.\w])(aws_\w+)\.(\w+)", text))
    assert refs <= resources, refs - resources
    bucket_keys = set(re.findall(r'aws_s3_bucket\.dmp\["(\w+)"\]', text))
    assert bucket_keys == {"raw", "lake", "audiences"}
    for name, body in _named(tf, "variable").items():
        assert body.get("description"), f"variable {name} has no description"


def test_buckets_are_encrypted_private_and_expire(tf):
    res = _named(tf, "resource")
    sse = res[("aws_s3_bucket_server_side_encryption_configuration", "dmp")]
    default = sse["rule"][0]["apply_server_side_encryption_by_default"][0]
    assert (
        default["sse_algorithm"] == "aws:kms" and "aws_kms_key.dmp" in default["kms_master_key_id"]
    )
    pab = res[("aws_s3_bucket_public_access_block", "dmp")]
    for key in ("block_public_acls", "block_public_policy", "ignore_public_acls"):
        assert pab[key] is True
    assert pab["restrict_public_buckets"] is True
    for each in ("aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_versioning"):
        assert res[(each, "dmp")]["for_each"] == "${aws_s3_bucket.dmp}"
    for bucket, days in (("raw", "raw_retention_days"), ("audiences", "audience_retention_days")):
        rule = res[("aws_s3_bucket_lifecycle_configuration", bucket)]["rule"][0]
        assert rule["status"] == "Enabled"
        assert rule["expiration"][0]["days"] == f"${{var.{days}}}"


def test_each_ad_platform_reads_only_its_own_prefix(tf):
    doc = _named(tf, "data")[("aws_iam_policy_document", "audiences")]
    allows = [d['"statement"' if '"statement"' in d else "statement"] for d in doc["dynamic"]]
    contents = [a["content"][0] for a in allows]
    get = next(c for c in contents if c["actions"] == ["s3:GetObject"])
    assert get["resources"] == ['${aws_s3_bucket.dmp["audiences"].arn}/${statement.key}/*']
    listing = next(c for c in contents if c["actions"] == ["s3:ListBucket"])
    cond = listing["condition"][0]
    assert cond["variable"] == "s3:prefix" and cond["values"] == ["${statement.key}/*"]
    for c in contents:
        assert c["principals"][0]["identifiers"] == ["${statement.value.principal_arn}"]
    # the only statement for everyone is the deny of plain HTTP
    for st in doc["statement"]:
        assert st["effect"] == "Deny"
    role = _named(tf, "data")[("aws_iam_policy_document", "spark_jobs")]
    for st in role["statement"]:
        assert "*" not in st["resources"] and "s3:*" not in st["actions"]


def _dmp_env(env: dict) -> dict:
    return {k: str(v) for k, v in env.items() if k.startswith("DMP_") and k != "DMP_CONF"}


def test_compose_stack_is_consistent_with_the_project():
    path = ROOT / "infra" / "compose" / "docker-compose.yml"
    doc = yaml.safe_load(path.read_text())
    services = doc["services"]
    assert {"minio", "buckets", "spark-master", "spark-worker", "airflow"} <= set(services)
    for name, svc in services.items():
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image"
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} must bind to loopback"
        deps = svc.get("depends_on", [])
        assert set(deps) <= set(services), name
        for vol in svc.get("volumes", []):
            host = vol.split(":")[0]
            if host.startswith("."):
                assert (path.parent / host / "dags").is_dir()
    env = services["airflow"]["environment"]
    settings = load_settings(ROOT / "conf" / "dmp.yaml", environ=_dmp_env(env))
    assert settings.storage.lake_root.startswith("s3a://")
    assert settings.s3.endpoint == "http://minio:9000"
    buckets = re.findall(r"local/([\w-]+)", services["buckets"]["command"][0])
    for root in (settings.storage.raw_root, settings.storage.lake_root):
        assert root.split("/")[2] in buckets
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/dmp/dags"


def test_kubernetes_job_runs_a_real_cli_command_with_a_valid_config():
    doc = yaml.safe_load((ROOT / "infra" / "k8s" / "dmp-job.yaml").read_text())
    assert doc["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    assert doc["kind"] == "SparkApplication"
    spec = doc["spec"]
    main = spec["mainApplicationFile"].removeprefix("local:///opt/dmp/")
    assert (ROOT / main).is_file()
    args = build_parser().parse_args(spec["arguments"])
    assert args.command == "identity"
    env = {e["name"]: e["value"] for e in spec["driver"]["env"]}
    settings = load_settings(ROOT / "conf" / "dmp.yaml", environ=_dmp_env(env))
    assert settings.storage.audience_root.startswith("s3a://")
