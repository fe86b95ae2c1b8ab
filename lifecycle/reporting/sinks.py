"""Copies of reports, certificates and extracts in a bucket, beside the local files.

Set with an s3:// URL (bucket and optional prefix); server-side encryption comes from the
store's Encryption (AES256 or aws:kms with a key id). Extracts hold personal data: give them a
bucket whose access is as narrow as the local protected folder's.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import SinkError
from lifecycle.stores import ObjectStore


@dataclass(frozen=True)
class ArtifactSink:
    bucket: str
    prefix: str
    store: ObjectStore

    @classmethod
    def parse(cls, url: str, store: ObjectStore) -> ArtifactSink:
        if not url.startswith("s3://") or len(url) <= 5:
            raise SinkError(f"artifact location {url!r}: expected s3://bucket[/prefix]")
        bucket, _, prefix = url[5:].partition("/")
        if not bucket or any(ch in bucket for ch in " _") or bucket != bucket.lower():
            raise SinkError(f"artifact location {url!r}: {bucket!r} is not a valid bucket name")
        return cls(bucket, prefix.strip("/"), store)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def write(self, name: str, data: bytes, content_type: str) -> str:
        self.store.put(self.bucket, self.key(name), data, content_type=content_type)
        return f"s3://{self.bucket}/{self.key(name)}"

    def upload(self, files: list[Path], folder: str) -> list[str]:
        return [self.write(f"{folder}/{path.name}", path.read_bytes(),
                           mimetypes.guess_type(path.name)[0] or "application/octet-stream") for path in files]
