"""`koppla up`'s process supervision: restarts with exponential backoff, counted for the child."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppla.core.settings import Settings
from koppla.platform.pipeline.heartbeat import RESTARTS_ENV
from koppla.web.backoff import Backoff
from koppla.web.server import ChildSupervisor, uvicorn_config
from tests.server import Koppla, free_port


def test_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    backoff = Backoff()
    delays = [backoff.delay_s(uptime_s=0.5) for _ in range(9)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_backoff_starts_over_after_the_child_stayed_up() -> None:
    backoff = Backoff()
    for _ in range(5):
        backoff.delay_s(uptime_s=3)
    assert backoff.delay_s(uptime_s=61) == 1
    assert backoff.delay_s(uptime_s=3) == 2


@dataclass
class FakeProcess:
    """A child that has died at once with `exitcode`."""

    target: Callable[..., object]
    args: tuple[Any, ...]
    exitcode: int | None = 3
    started: bool = False

    def start(self) -> None:
        self.started = True

    def is_alive(self) -> bool:
        return False

    def terminate(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass


@dataclass
class FakeContext:
    processes: list[FakeProcess] = field(default_factory=list)

    def Process(
        self, *, target: Callable[..., object], args: tuple[Any, ...], name: str, daemon: bool
    ) -> FakeProcess:
        self.processes.append(FakeProcess(target, args))
        return self.processes[-1]


def test_a_dying_child_is_restarted_with_growing_delays_and_a_restart_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context, waits = FakeContext(), []
    now = [100.0]
    supervisor = ChildSupervisor(
        "koppla-pipeline",
        print,
        ("a",),
        restarts_env=RESTARTS_ENV,
        context=context,
        monotonic=lambda: now[0],
        wait=lambda seconds: waits.append(seconds) or False,
    )
    supervisor.spawn()  # no watcher thread: the test checks on the child itself
    with caplog.at_level(logging.ERROR):
        for _ in range(4):
            now[0] += 2
            assert supervisor.check() == "restarted"
    assert waits == [1, 2, 4, 8]
    assert supervisor.restarts == 4
    assert [p.args[2] for p in context.processes] == [{RESTARTS_ENV: str(n)} for n in range(5)]
    assert all(p.started for p in context.processes)
    assert "exited with code 3 after 2 s; restart 4 in 8 s" in caplog.text


def test_stopping_during_the_delay_starts_no_new_child() -> None:
    context = FakeContext()
    supervisor = ChildSupervisor("child", print, (), context=context, wait=lambda s: True)
    supervisor.spawn()
    assert supervisor.check() == "stopped"
    assert len(context.processes) == 1


def record_restarts(path: str) -> None:
    """A child that notes the restart count it was given, then dies."""
    with Path(path).open("a") as seen:
        seen.write(os.environ.get(RESTARTS_ENV, "unset") + "\n")
    raise SystemExit(5)


def test_a_real_child_is_told_how_often_it_was_restarted(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    supervisor = ChildSupervisor(
        "recorder",
        record_restarts,
        (str(seen),),
        restarts_env=RESTARTS_ENV,
        context=multiprocessing.get_context("spawn"),
        wait=lambda seconds: False,
    )
    supervisor.spawn()
    for _ in range(3):
        deadline = time.monotonic() + 60
        while supervisor.check() != "restarted":
            assert time.monotonic() < deadline, "the child did not die"
            time.sleep(0.05)
    supervisor.stop()
    assert seen.read_text().split()[:3] == ["0", "1", "2"]
    assert supervisor.restarts == 3


def test_forwarded_headers_are_trusted_only_from_configured_proxies(tmp_path: Path) -> None:
    direct = uvicorn_config("koppla.web.server:app_from_environment", Settings.load(home=tmp_path))
    assert direct.proxy_headers is False
    proxied = Settings.load(home=tmp_path, forwarded_allow_ips="10.0.0.5")
    config = uvicorn_config("koppla.web.server:app_from_environment", proxied)
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == "10.0.0.5"


@pytest.mark.slow
def test_koppla_up_restarts_a_killed_pipeline_and_reports_it(tmp_path: Path) -> None:
    server = Koppla(tmp_path / "home", free_port())
    server.start()
    try:
        auth = {"authorization": f"Bearer {server.token()}"}
        first = wait_for_pipeline(server, auth, lambda p: p["running"])
        os.kill(first["pid"], signal.SIGKILL)
        again = wait_for_pipeline(server, auth, lambda p: p["running"] and p["pid"] != first["pid"])
        assert again["restarts"] == first["restarts"] + 1
        health = httpx.get(f"{server.url}/api/v1/health", timeout=10)
        assert (health.status_code, health.json()["pipeline"]) == (200, "running")

        os.kill(again["pid"], signal.SIGSTOP)  # frozen: alive to the supervisor, silent to health
        try:
            frozen = wait_for_health(server, 503)
        finally:
            os.kill(again["pid"], signal.SIGCONT)
        assert frozen["reason"].startswith("pipeline not running (last heartbeat ")
        assert wait_for_health(server, 200)["pipeline"] == "running"
    finally:
        server.stop()
    assert "koppla-pipeline exited with code -9" in (tmp_path / "koppla.log").read_text()


def wait_for_pipeline(
    server: Koppla, auth: dict[str, str], done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The pipeline part of the server's status, once `done` holds for it (within a minute)."""
    deadline = time.monotonic() + 60
    while True:
        response = httpx.get(f"{server.url}/api/v1/status", headers=auth, timeout=10)
        state: dict[str, Any] = response.json()["pipeline"]
        if done(state):
            return state
        assert time.monotonic() < deadline, f"the pipeline never got there: {state}"
        time.sleep(0.2)


def wait_for_health(server: Koppla, status: int) -> dict[str, Any]:
    """The server's health answer, once it has `status` (within a minute)."""
    deadline = time.monotonic() + 60
    while True:
        response = httpx.get(f"{server.url}/api/v1/health", timeout=10)
        if response.status_code == status:
            answer: dict[str, Any] = response.json()
            return answer
        assert time.monotonic() < deadline, f"health never answered {status}: {response.text}"
        time.sleep(0.5)


@pytest.mark.parametrize(
    ("role", "names"),
    [
        ("all", ["koppla-pipeline", "koppla-profiles", "koppla-pgwire", "koppla-demo-shop"]),
        ("pipeline", ["koppla-pipeline"]),
        ("api", ["koppla-profiles", "koppla-pgwire"]),
        ("edge", []),
    ],
)
def test_each_role_runs_its_own_children(role: str, names: list[str], tmp_path: Path) -> None:
    from koppla.web.server import _children

    settings = Settings(home=tmp_path, role=role, query_pg_port=5499)  # type: ignore[arg-type]
    assert [child.name for child in _children(settings, demo_shop=True)] == names
