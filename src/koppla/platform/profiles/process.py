"""The profile stage as its own process: one per home, held by a lock, gone when its parent goes.

A failure of the stage itself (the store unreachable, a dataset unreadable) ends the process
with a non-zero exit; the supervisor restarts it with backoff and the restart re-reads what was
not yet written (the store's cursors move in the same transaction as the data).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading

from koppla.core.layout import Layout
from koppla.core.lifecycle import child_stop_event
from koppla.core.settings import Settings
from koppla.platform.catalog.opening import open_catalog
from koppla.platform.datasets.location import table_location
from koppla.platform.profiles.graph import Limits
from koppla.platform.profiles.runner import ProfileRunner
from koppla.platform.profiles.store import ProfileStore, store_url
from koppla.platform.schemas.registry import home_registry

log = logging.getLogger(__name__)


def limits(settings: Settings) -> Limits:
    """The identity graph's guardrails from the settings."""
    return Limits(
        max_identities=settings.profile_max_identities,
        per_namespace=dict(settings.profile_namespace_limits),
    )


def open_store(settings: Settings) -> ProfileStore:
    """The profile store the settings name (embedded SQLite by default)."""
    return ProfileStore(store_url(settings.profile_store_url, settings.home))


def run(settings: Settings, stop: threading.Event) -> None:
    """Run the profile stage of `settings.home` until `stop` is set; raises what stopped it."""
    layout = Layout(settings.home)
    layout.profiles.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.profiles / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    catalog = open_catalog(settings)
    store = open_store(settings)
    registry = home_registry(Layout(settings.home), settings.catalog_url)
    try:
        runner = ProfileRunner(
            layout,
            catalog,
            registry,
            store,
            limits=limits(settings),
            events_kept=settings.profile_events_kept,
            location=table_location(settings),
        )
        runner.run(stop, poll_ms=settings.profile_poll_ms, on_progress=layout.profiles_beat.touch)
    except Exception:
        log.exception("the profile stage stopped; it will be restarted")
        raise
    finally:
        registry.close()
        store.close()
        catalog.close()
        os.close(fd)


def main(settings_json: str, parent_pid: int) -> None:
    """Entry point of the profile child process; exits when the parent process is gone."""
    settings = Settings.model_validate_json(settings_json)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s profiles %(levelname)s %(message)s"
    )
    stop = child_stop_event(parent_pid, "profiles")
    run(settings, stop)
