"""The demo shop as a child process of `koppla up --demo`: simulator plus store connector.

It talks to the platform only over the platform's HTTP API (streaming ingestion), as a real
connector on another machine would, with a token it creates on start and revokes on exit.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx

from koppla.connector.demo import demo_document, run_demo
from koppla.core.layout import Layout
from koppla.core.lifecycle import child_stop_event
from koppla.core.settings import Settings
from koppla.platform.catalog.connector_settings import ConnectorSettingsStore
from koppla.platform.catalog.demo import DEMO_DATASET, DEMO_ORG_ID, DEMO_PROFILE_DATASET
from koppla.platform.catalog.opening import open_catalog

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0


def platform_url(settings: Settings) -> str:
    """Where the connector reaches this machine's platform."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"{settings.scheme}://{host}:{settings.port}"


def _wait_until_up(url: str, stop: threading.Event) -> bool:
    """True once the platform answers its health check (loopback: the certificate is ours)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2, verify=False).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        stop.wait(0.2)
    return False


def main(settings_json: str, parent_pid: int) -> None:
    """Run the demo shop and its connector until the parent goes or a signal arrives."""
    settings = Settings.model_validate_json(settings_json)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s demo-shop %(levelname)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    stop = child_stop_event(parent_pid, "demo shop")
    url = platform_url(settings)
    if not _wait_until_up(url, stop):
        log.error("the platform did not come up at %s; the demo shop is not running", url)
        return
    catalog = open_catalog(settings)
    token = catalog.add_token("demo shop connector", org_id=DEMO_ORG_ID)
    try:
        events = catalog.dataset(DEMO_DATASET).id
        profiles = catalog.dataset(DEMO_PROFILE_DATASET).id
        seed_demo_settings(Layout(settings.home).catalog, events, profiles)
        run_demo(
            settings.home,
            stop,
            platform_url=url,
            token=token,
            dataset_id=events,
            profile_dataset_id=profiles,
            platform_ca_file=settings.tls_cert,
            from_platform=True,
        )
    finally:
        catalog.remove_token(token)
        catalog.close()


def seed_demo_settings(catalog_path: Path, dataset_id: str, profile_dataset_id: str) -> None:
    """Save the demo website as the demo organization's Data Connection settings, unless
    someone saved settings already (then theirs are what the demo connector follows)."""
    store = ConnectorSettingsStore(catalog_path)
    try:
        if store.get(DEMO_ORG_ID).version == 0:
            store.put(DEMO_ORG_ID, demo_document(dataset_id, profile_dataset_id), by="koppla demo")
    finally:
        store.close()
