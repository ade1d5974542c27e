"""`koppla up`: the HTTP server in this process; the pipeline and the profile stage in children."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

import uvicorn
import uvicorn.supervisors

from koppla.core import clock
from koppla.core.settings import Settings
from koppla.platform.pipeline import process as pipeline_process
from koppla.platform.pipeline.heartbeat import RESTARTS_ENV
from koppla.platform.profiles import process as profiles_process
from koppla.platform.query.pgwire import process as pgwire_process
from koppla.web import demo_process
from koppla.web.app import KopplaApp, create_app
from koppla.web.backoff import Backoff
from koppla.web.services import build_services

log = logging.getLogger(__name__)


class ChildProcess(Protocol):
    """The part of `multiprocessing.Process` the supervisor uses."""

    @property
    def exitcode(self) -> int | None:
        """The exit code once the process has ended."""

    def start(self) -> None:
        """Start the process."""

    def is_alive(self) -> bool:
        """True while the process runs."""

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM)."""

    def join(self, timeout: float | None = None) -> None:
        """Wait for the process to end."""


class ProcessContext(Protocol):
    """Makes child processes: a `multiprocessing` context (spawn), or a fake in tests."""

    def Process(
        self, *, target: Callable[..., object], args: tuple[Any, ...], name: str, daemon: bool
    ) -> ChildProcess:
        """A new, unstarted child process running `target(*args)`."""


def run_child(target: Callable[..., None], args: tuple[Any, ...], env: dict[str, str]) -> None:
    """A child process's entry point: set `env`, then run `target(*args)`."""
    os.environ.update(env)
    target(*args)


class ChildSupervisor:
    """Keeps one child process running until stopped, restarting it with exponential backoff.

    Each restart is logged with the exit code and the delay. With `restarts_env`, the child
    finds in that environment variable how many times it has been restarted.
    """

    def __init__(
        self,
        name: str,
        target: Callable[..., None],
        args: tuple[Any, ...],
        *,
        restarts_env: str | None = None,
        backoff: Backoff | None = None,
        context: ProcessContext | None = None,
        monotonic: Callable[[], float] = clock.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self._name, self._target, self._args = name, target, args
        self._restarts_env = restarts_env
        self._backoff = backoff or Backoff()
        self._context: ProcessContext = context or multiprocessing.get_context("spawn")
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._process: ChildProcess | None = None
        self._started_at = 0.0
        self.restarts = 0
        self._thread = threading.Thread(target=self._watch, name=f"{name}-supervisor", daemon=True)

    @property
    def name(self) -> str:
        """The child process's name (`koppla-pipeline` …)."""
        return self._name

    def start(self) -> None:
        """Start the child and the watcher thread that checks on it every second."""
        self.spawn()
        self._thread.start()

    def spawn(self) -> None:
        """Start a new child process now."""
        env = {} if self._restarts_env is None else {self._restarts_env: str(self.restarts)}
        self._process = self._context.Process(
            target=run_child, args=(self._target, self._args, env), name=self._name, daemon=False
        )
        self._started_at = self._monotonic()
        self._process.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            if self.check() == "stopped":
                return

    def check(self) -> Literal["running", "restarted", "stopped"]:
        """Restart the child if it has died, after the backoff delay (unless stopped meanwhile)."""
        process = self._process
        if self._stop.is_set():
            return "stopped"
        if process is None or process.is_alive():
            return "running"
        uptime_s = self._monotonic() - self._started_at
        delay_s = self._backoff.delay_s(uptime_s)
        self.restarts += 1
        log.error(
            "%s exited with code %s after %.0f s; restart %d in %.0f s",
            self._name,
            process.exitcode,
            uptime_s,
            self.restarts,
            delay_s,
        )
        if self._wait(delay_s) or self._stop.is_set():
            return "stopped"
        self.spawn()
        return "restarted"

    def stop(self) -> None:
        """Stop the child gracefully (it finishes what it is writing)."""
        self._stop.set()
        if self._thread.is_alive():  # a restart it began finishes before the child is stopped
            self._thread.join(timeout=5)
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=30)


def uvicorn_config(app: KopplaApp | str, settings: Settings) -> uvicorn.Config:
    """The HTTP server's configuration; a factory import path serves `edge_workers` processes.

    Forwarded headers (`X-Forwarded-For`, `-Proto`) are trusted only from `forwarded_allow_ips`.
    """
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
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
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


SETTINGS_ENV = "KOPPLA_SETTINGS_JSON"


def app_from_environment() -> KopplaApp:
    """The app of one HTTP worker process, from the settings its parent put in the environment."""
    app = create_app(Settings.model_validate_json(os.environ[SETTINGS_ENV]))
    app.watch_pipeline()
    return app


def _children(settings: Settings, *, demo_shop: bool) -> list[ChildSupervisor]:
    """The child processes `settings.role` runs beside (or, for `pipeline`, instead of) the HTTP
    server: `all` runs every one, `edge` none, `pipeline` the pipeline worker, `api` the
    profile stage and the PostgreSQL wire-protocol server."""
    role = settings.role
    config = settings.model_dump_json()
    children = []
    if role in ("all", "pipeline"):
        children.append(
            ChildSupervisor(
                "koppla-pipeline",
                pipeline_process.main,
                (config, os.getpid()),
                restarts_env=RESTARTS_ENV,
            )
        )
    if role in ("all", "api"):
        children.append(
            ChildSupervisor("koppla-profiles", profiles_process.main, (config, os.getpid()))
        )
        if settings.query_pg_port:  # PostgreSQL clients (psql, psycopg, BI tools)
            children.append(
                ChildSupervisor(
                    "koppla-pgwire", pgwire_process.main, (config, os.getpid(), build_services)
                )
            )
    if demo_shop and role == "all":
        children.append(
            ChildSupervisor("koppla-demo-shop", demo_process.main, (config, os.getpid()))
        )
    return children


def _supervise(children: list[ChildSupervisor]) -> None:
    """Run `children` until SIGINT or SIGTERM, then stop them gracefully."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    for child in children:
        child.start()
    try:
        stop.wait()
    finally:
        for child in reversed(children):
            child.stop()


def serve(settings: Settings, *, demo_shop: bool = False) -> None:
    """Run Koppla until interrupted: `edge_workers` HTTP processes, one pipeline process, one
    profile-stage process, and the PostgreSQL wire-protocol server (unless `query_pg_port` is 0).

    With several workers each has its own spool stream; the live debugger of a worker shows the
    requests that worker received. `demo_shop` also runs the demo shop's simulator and the
    store connector that sends its orders' back-office events to this platform.
    """
    children = _children(settings, demo_shop=demo_shop)
    if settings.role == "pipeline":  # a pipeline worker: no HTTP server
        _supervise(children)
        return
    for child in children:
        child.start()
    app: KopplaApp | str
    if settings.edge_workers > 1:  # each worker process builds its own app
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        app = "koppla.web.server:app_from_environment"
    else:
        app = create_app(settings)
        app.watch_pipeline()
    config = uvicorn_config(app, settings)
    try:
        if settings.edge_workers > 1:
            sock = config.bind_socket()
            uvicorn.supervisors.Multiprocess(config, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run()
    finally:
        for child in reversed(children):
            child.stop()
