"""Deployment helpers run by the docker-compose init service."""

from __future__ import annotations

import os

from lifecycle_airflow import runtime


def prepare_buckets() -> None:
    """Create the buckets named in LIFECYCLE_BUCKETS with versioning on (erasure removes every
    version, so versioning never keeps erased data; it protects what is kept from overwrites).
    Those also named in LIFECYCLE_LOCKED_BUCKETS are created with S3 Object Lock enabled (no
    default retention: only the nightly audit-trail copy is locked, per object), which a store
    allows only when a bucket is created."""
    store = runtime.object_store(os.environ.get("LIFECYCLE_ARTIFACT_CONN", "lifecycle_s3"))
    existing = {b["Name"] for b in store.client.list_buckets().get("Buckets", [])}
    locked = set(os.environ.get("LIFECYCLE_LOCKED_BUCKETS", "").split())
    for name in os.environ.get("LIFECYCLE_BUCKETS", "").split():
        if name not in existing:
            store.client.create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if name in locked else {}))
        store.client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        lock = ""
        if name in locked:
            lock = ", Object Lock enabled" if _lock_enabled(store.client, name) else \
                ", Object Lock NOT enabled (the bucket existed before; the audit-trail copy will be unlocked)"
        print(f"bucket {name}: ready, versioning enabled{lock}")


def _lock_enabled(client, bucket: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        config = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except client.exceptions.ClientError:
        return False
    return config.get("ObjectLockEnabled") == "Enabled"
