"""Deployment helpers run by the docker-compose init service."""

from __future__ import annotations

import os

from lifecycle_airflow import runtime


def prepare_buckets() -> None:
    """Create the buckets named in LIFECYCLE_BUCKETS with versioning on (erasure removes every
    version, so versioning never keeps erased data; it protects what is kept from overwrites)."""
    store = runtime.object_store(os.environ.get("LIFECYCLE_ARTIFACT_CONN", "lifecycle_s3"))
    existing = {b["Name"] for b in store.client.list_buckets().get("Buckets", [])}
    for name in os.environ.get("LIFECYCLE_BUCKETS", "").split():
        if name not in existing:
            store.client.create_bucket(Bucket=name)
        store.client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        print(f"bucket {name}: ready, versioning enabled")
