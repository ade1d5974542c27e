"""The demo, in-process: the SQLite demo shop, its simulator and the connector loop.

`koppla up --demo` calls `run_demo(home, stop, platform_url=..., token=..., dataset_id=...,
profile_dataset_id=...)` in a thread once the platform listens; it returns when `stop` is set.
The demo website sends customer profiles (records to `profile_dataset_id`) when that is given.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from koppla.connector import schema as t
from koppla.connector.changelog import install_triggers
from koppla.connector.demo_store import DemoShop, create_demo_schema
from koppla.connector.runner import run_connector
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.connector.source import connect

log = logging.getLogger("koppla.connector.demo")

DEMO_ORG_ID = "KOPPLADEMO00000000000000@AdobeOrg"
DEMO_DATASTREAM_ID = "6d3b1f0e-8c2a-4e7b-9a41-0d2f6a1c5e90"


def demo_website(
    dataset_id: str, profile_dataset_id: str = "", environment_id: str = "koppla-demo"
) -> dict[str, object]:
    """The demo shop's `base` website, sending to the demo datastream (with customer profiles
    when `profile_dataset_id` is given)."""
    return {
        "website_code": "base",
        "datastream_id": DEMO_DATASTREAM_ID,
        "dataset_id": dataset_id,
        "environment_id": environment_id,
        "customer_profiles": bool(profile_dataset_id),
        "profile_dataset_id": profile_dataset_id,
    }


def demo_document(dataset_id: str, profile_dataset_id: str = "") -> dict[str, object]:
    """The Data Connection settings of the demo organization, as the platform stores them."""
    return {
        "org_id": DEMO_ORG_ID,
        "web_sdk_name": "",
        "websites": [demo_website(dataset_id, profile_dataset_id)],
    }


def demo_settings(
    home: Path,
    *,
    platform_url: str,
    token: str,
    dataset_id: str,
    profile_dataset_id: str = "",
    environment_id: str = "koppla-demo",
    from_platform: bool = False,
    **extra: Any,
) -> ConnectorSettings:
    """Settings sending the demo shop's `base` website to the demo datastream; with
    `from_platform`, the websites come from the platform's Data Connection settings instead
    (so what the admin pages save is what the demo connector does)."""
    if from_platform:
        return load_settings(home, platform_url=platform_url, token=token, **extra)
    site = {"org_id": DEMO_ORG_ID, **demo_website(dataset_id, profile_dataset_id, environment_id)}
    return load_settings(home, platform_url=platform_url, token=token, websites=[site], **extra)


def prepare_demo_shop(
    settings: ConnectorSettings, orders: int = 200, seed: int | None = None
) -> None:
    """Create the demo shop with triggers, and its customers and `orders` historical orders if
    it has none."""
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = connect(settings.dsn)
    try:
        create_demo_schema(engine)
        install_triggers(engine)  # idempotent; adds the triggers newer releases watch
        with engine.connect() as conn:
            existing = conn.execute(select(func.count()).select_from(t.sales_order)).scalar_one()
        if not existing:
            DemoShop(engine, seed).generate(orders)
        else:
            DemoShop(engine, seed).generate_customers()  # a demo shop made before customers
    finally:
        engine.dispose()


def run_demo(
    home: Path,
    stop: threading.Event,
    *,
    platform_url: str,
    token: str,
    dataset_id: str,
    profile_dataset_id: str = "",
    orders: int = 200,
    simulate_every_s: float = 2.0,
    platform_ca_file: Path | None = None,
    from_platform: bool = False,
) -> None:
    """Prepare the demo shop, keep it busy, and run the connector until `stop` is set."""
    settings = demo_settings(
        home,
        platform_url=platform_url,
        token=token,
        dataset_id=dataset_id,
        profile_dataset_id=profile_dataset_id,
        platform_ca_file=platform_ca_file,
        from_platform=from_platform,
    )
    prepare_demo_shop(settings, orders)
    engine = connect(settings.dsn)
    simulator = threading.Thread(
        target=DemoShop(engine).simulate,
        args=(stop, simulate_every_s),
        name="koppla-demo-shop",
        daemon=True,
    )
    simulator.start()
    try:
        run_connector(home, stop, settings)
    finally:
        stop.set()
        simulator.join(timeout=10)
        engine.dispose()
