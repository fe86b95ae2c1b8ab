"""The docker-compose deployment: the file is valid for the compose client, runs every Airflow 3
component on PostgreSQL with Celery, mounts the project, and takes every secret from the
environment (never a default). The services cannot run here (no container engine); the same
configuration, PostgreSQL metadata and the LocalExecutor, is run by test_airflow_standalone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {"LIFECYCLE_HASH_SECRET": "h" * 32, "AIRFLOW_JWT_SECRET": "j" * 32, "AIRFLOW_ADMIN_PASSWORD": "a",
           "S3_SECRET_KEY": "s", "S3_SSE_KEY": "k" * 64}


def _compose() -> list[str]:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("no compose client: install Debian's docker-compose (.ci/run does) or the docker compose plugin",
                pytrace=False)


def _config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run([*_compose(), "-f", str(ROOT / "docker-compose.yaml"), "config"], capture_output=True,
                          text=True, env={**clean, **env}, cwd=ROOT)


def test_compose_file_is_valid_and_complete() -> None:
    done = _config(SECRETS)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert {"postgres", "redis", "s3", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer", "airflow-worker", "airflow-init"} <= set(services)
    worker = services["airflow-worker"]
    assert worker["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert worker["environment"]["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis")
    assert "postgresql" in worker["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    mounts = {str(v["target"] if isinstance(v, dict) else v.split(":")[1]) for v in worker["volumes"]}
    assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/lifecycle/include", "/opt/lifecycle/expectations"} <= mounts
    assert worker["environment"]["LIFECYCLE_HASH_SECRET"] == SECRETS["LIFECYCLE_HASH_SECRET"]
    tagstore = json.loads(worker["environment"]["AIRFLOW_CONN_LIFECYCLE_TAGSTORE"])
    assert tagstore["conn_type"] == "postgres" and tagstore["host"] == "postgres"
    assert "airflow db migrate" in " ".join(services["airflow-init"]["command"])


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_every_secret_must_come_from_the_environment(missing: str) -> None:
    done = _config({k: v for k, v in SECRETS.items() if k != missing})
    assert done.returncode != 0 and missing in done.stderr


def test_init_prepares_versioned_buckets(s3_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.s3server import ACCESS_KEY, SECRET_KEY

    from lifecycle_airflow.deploy import prepare_buckets

    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_S3", json.dumps({
        "conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY, "extra": {"endpoint_url": s3_server.endpoint_url}}))
    monkeypatch.setenv("LIFECYCLE_BUCKETS", "lifecycle-deploy-data lifecycle-deploy-artifacts")
    monkeypatch.setenv("LIFECYCLE_LOCKED_BUCKETS", "lifecycle-deploy-artifacts")
    prepare_buckets()
    prepare_buckets()  # idempotent: the init service runs on every `up`
    from lifecycle_airflow.runtime import object_store

    store = object_store("lifecycle_s3")
    assert store.is_versioned("lifecycle-deploy-data") and store.is_versioned("lifecycle-deploy-artifacts")
    lock = store.client.get_object_lock_configuration(Bucket="lifecycle-deploy-artifacts")["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled" and "Rule" not in lock  # no default retention
    with pytest.raises(store.client.exceptions.ClientError):
        store.client.get_object_lock_configuration(Bucket="lifecycle-deploy-data")
