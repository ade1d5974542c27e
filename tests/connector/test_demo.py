"""`run_demo`: the demo shop, simulator and connector in-process, delivering to the platform."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from koppla.connector.demo import run_demo
from koppla.connector.demo_store import CUSTOMERS
from tests.connector.conftest import Platform, wait_for

pytestmark = pytest.mark.slow

PROFILE_EVENTS = (
    "SELECT count(*) FROM demo_events WHERE eventType = 'userAccount.backofficeCreateProfile'"
)


def test_run_demo_delivers_history_and_live_activity(platform: Platform, tmp_path: Path) -> None:
    stop = threading.Event()
    home = tmp_path / "demo-home"
    thread = threading.Thread(
        target=run_demo,
        args=(home, stop),
        kwargs={
            "platform_url": platform.url,
            "token": platform.token,
            "dataset_id": platform.dataset_id,
            "profile_dataset_id": platform.dataset("demo_profiles"),
            "orders": 30,
            "simulate_every_s": 0.05,
        },
    )
    thread.start()
    try:
        wait_for(lambda: platform.query("SELECT count(*) FROM demo_events")[:1] >= [[60]])
        wait_for(lambda: platform.query(PROFILE_EVENTS)[:1] >= [[CUSTOMERS]])
        wait_for(lambda: platform.query("SELECT count(*) FROM demo_profiles")[:1] >= [[CUSTOMERS]])
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert (home / "demo-shop.sqlite").is_file()
    assert (home / "connector" / "state.sqlite").is_file()
    assert platform.query("SELECT count(*) FROM quarantine") == [[0]]
