"""Koppla as a child process, for tests that need the real server (crashes, TLS, browsers)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Koppla:
    """`koppla up --demo` as a child process in its own process group."""

    def __init__(
        self,
        home: Path,
        port: int,
        *extra: str,
        scheme: str = "http",
        verify: ssl.SSLContext | bool = True,
        demo_shop: bool = False,
        pg_port: int = 0,
    ) -> None:
        """`pg_port`: the PostgreSQL server's port (0: none, so servers of tests running at
        the same time never compete for one)."""
        self.home, self.port, self.extra = home, port, extra
        self.pg_port = pg_port
        self.url = f"{scheme}://127.0.0.1:{port}"
        self.verify = verify
        self.demo_shop = demo_shop
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers its health check."""
        command = [sys.executable, "-m", "koppla", "up", "--demo", "--home", str(self.home)]
        if not self.demo_shop:
            command.append("--no-demo-shop")
        command += ["--port", str(self.port), "--pg-port", str(self.pg_port), *self.extra]
        with (self.home.parent / "koppla.log").open("ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{self.url}/api/v1/health", timeout=1, verify=self.verify)
                if health.status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.kill()
        raise AssertionError("koppla up did not become healthy in 30 s")

    def kill(self) -> None:
        """SIGKILL the whole process group (server and pipeline)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """Stop gracefully, or kill after 20 s."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def token(self) -> str:
        """A fresh API token for this server's home."""
        out = subprocess.run(
            [sys.executable, "-m", "koppla", "token", "create", "--home", str(self.home)],
            check=True,
            capture_output=True,
        )
        return out.stdout.decode().strip()
