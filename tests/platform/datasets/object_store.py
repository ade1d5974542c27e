"""An S3-compatible object store for tests and benchmarks: moto's server in a subprocess.

moto in server mode answers the S3 API on a loopback port and honours conditional puts
(`If-None-Match: *` answers 412), which delta-rs relies on for concurrent commits
(`conditional_put: etag`). It keeps everything in memory; stopping it drops every bucket.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec

BUCKET = "koppla-tests"


@dataclass(frozen=True)
class ObjectStore:
    """A running S3-compatible endpoint with one empty bucket."""

    endpoint: str
    bucket: str

    def options(self) -> dict[str, str]:
        """deltalake storage options for this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "conditional_put": "etag",
        }

    def uri(self, prefix: str) -> str:
        """An `s3://` URI under the bucket."""
        return f"s3://{self.bucket}/{prefix}"


def moto_missing() -> str | None:
    """Why moto's server cannot run here, or None when it can."""
    if find_spec("moto") is None or find_spec("flask") is None:
        return "moto[server] is not installed (pip install -e '.[test]')"
    return None


@contextmanager
def moto_server() -> Iterator[ObjectStore]:
    """Start `moto_server` on a free loopback port with bucket `BUCKET`; stop it on exit."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until_up(endpoint, process)
        request = urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT")
        with urllib.request.urlopen(request, timeout=10):
            pass
        yield ObjectStore(endpoint, BUCKET)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(endpoint, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not answer within 30 s")
