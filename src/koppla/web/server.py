"""`koppla up`: the HTTP server in this process and the pipeline in a child process."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from typing import Any

import uvicorn
import uvicorn.supervisors

from koppla.core.settings import Settings
from koppla.platform.pipeline import process as pipeline_process
from koppla.web import demo_process
from koppla.web.app import KopplaApp, create_app

log = logging.getLogger(__name__)


class ChildSupervisor:
    """Keeps one child process running (restarting it if it dies) until stopped."""

    def __init__(self, name: str, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        self._name, self._target, self._args = name, target, args
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"{name}-supervisor", daemon=True)

    def start(self) -> None:
        """Start the child and the watcher."""
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        self._process = self._context.Process(
            target=self._target, args=self._args, name=self._name, daemon=False
        )
        self._process.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            if self._process is not None and not self._process.is_alive():
                log.error("%s exited with %s; restarting", self._name, self._process.exitcode)
                self._spawn()

    def stop(self) -> None:
        """Stop the child gracefully (it finishes what it is writing)."""
        self._stop.set()
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=30)


SETTINGS_ENV = "KOPPLA_SETTINGS_JSON"


def app_from_environment() -> KopplaApp:
    """The app of one HTTP worker process, from the settings its parent put in the environment."""
    return create_app(Settings.model_validate_json(os.environ[SETTINGS_ENV]))


def serve(settings: Settings, *, demo_shop: bool = False) -> None:
    """Run Koppla until interrupted: `edge_workers` HTTP processes and one pipeline process.

    With several workers each has its own spool stream; the live debugger of a worker shows the
    requests that worker received. `demo_shop` also runs the demo shop's simulator and the
    store connector that sends its orders' back-office events to this platform.
    """
    children = [
        ChildSupervisor(
            "koppla-pipeline", pipeline_process.main, (settings.model_dump_json(), os.getpid())
        )
    ]
    if demo_shop:
        children.append(
            ChildSupervisor(
                "koppla-demo-shop", demo_process.main, (settings.model_dump_json(), os.getpid())
            )
        )
    for child in children:
        child.start()
    app: KopplaApp | str = create_app(settings)
    if settings.edge_workers > 1:
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        app = "koppla.web.server:app_from_environment"
    config = uvicorn.Config(
        app,
        factory=settings.edge_workers > 1,
        workers=settings.edge_workers,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level,
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    try:
        if settings.edge_workers > 1:
            sock = config.bind_socket()
            uvicorn.supervisors.Multiprocess(config, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run()
    finally:
        for child in reversed(children):
            child.stop()
