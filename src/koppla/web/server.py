"""`koppla up`: the HTTP server in this process and the pipeline in a child process."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading

import uvicorn

from koppla.core.settings import Settings
from koppla.platform.pipeline import process as pipeline_process
from koppla.web.app import create_app

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


def serve(settings: Settings) -> None:
    """Run Koppla until interrupted."""
    supervisor = PipelineSupervisor(settings)
    supervisor.start()
    config = uvicorn.Config(
        create_app(settings),
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
        uvicorn.Server(config).run()
    finally:
        supervisor.stop()
