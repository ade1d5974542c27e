"""`koppla up`: the HTTP server in this process and the pipeline in a child process."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading

import uvicorn
import uvicorn.supervisors

from koppla.core.settings import Settings
from koppla.platform.pipeline import process as pipeline_process
from koppla.web.app import KopplaApp, create_app

log = logging.getLogger(__name__)


class PipelineSupervisor:
    """Keeps one pipeline child process running; restarts it if it dies."""

    def __init__(self, settings: Settings) -> None:
        self._settings_json = settings.model_dump_json()
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="pipeline-supervisor", daemon=True)

    def start(self) -> None:
        """Start the child and the watcher."""
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        self._process = self._context.Process(
            target=pipeline_process.main,
            args=(self._settings_json, os.getpid()),
            name="koppla-pipeline",
            daemon=False,
        )
        self._process.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            if self._process is not None and not self._process.is_alive():
                log.error("pipeline exited with %s; restarting", self._process.exitcode)
                self._spawn()

    def stop(self) -> None:
        """Stop the child gracefully (it finishes its current commit)."""
        self._stop.set()
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=30)


SETTINGS_ENV = "KOPPLA_SETTINGS_JSON"


def app_from_environment() -> KopplaApp:
    """The app of one HTTP worker process, from the settings its parent put in the environment."""
    return create_app(Settings.model_validate_json(os.environ[SETTINGS_ENV]))


def serve(settings: Settings) -> None:
    """Run Koppla until interrupted: `edge_workers` HTTP processes and one pipeline process.

    With several workers each has its own spool stream; the live debugger of a worker shows the
    requests that worker received.
    """
    supervisor = PipelineSupervisor(settings)
    supervisor.start()
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
        supervisor.stop()
