"""The history sync end to end: a real platform, a real shop database, a real queue.

Each test generates years of orders over two websites (two datasets), runs the sync the way
`koppla connector history:sync` does (consumer processes, the queue, batch ingestion) and then
checks on the platform, with SQL, that every event of every order in the range landed exactly
once, and that the batch list shows the batches succeeded with the right row counts.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppla.connector.events import EventContext, history
from koppla.connector.history import commands
from koppla.connector.history.ledger import Ledger
from koppla.connector.history.processes import spawn_workers, stop_workers
from koppla.connector.history.runtime import run_history
from koppla.connector.history.sync import HistorySync, ledger_path
from koppla.connector.history_demo import add_website, generate_history
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.connector.snapshot import build_snapshot
from koppla.connector.source import StoreSource, connect
from koppla.core import clock
from koppla.core.errors import InvalidInput
from tests.connector.conftest import DEMO_DATASTREAM, DEMO_ORG, Platform, wait_for
from tests.require import unavailable

RABBITMQ_URL = os.environ.get("KOPPLA_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
ORDERS = 360
YEARS = 4.0

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def rabbitmq_reachable() -> None:
    import socket

    host = RABBITMQ_URL.split("@")[-1].split("/")[0]
    name, _, port = host.partition(":")
    try:
        socket.create_connection((name, int(port or 5672)), timeout=2).close()
    except OSError as error:
        unavailable(f"RabbitMQ is not reachable at {host}: {error}")


@pytest.fixture(params=["sqlite+embedded", "mariadb+rabbitmq"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(shop database URL, queue URL): the embedded default, then the real servers."""
    if request.param == "sqlite+embedded":
        return str(request.getfixturevalue("sqlite_shop")), ""
    rabbitmq_reachable()
    return str(request.getfixturevalue("magento")), RABBITMQ_URL


@pytest.fixture
def shop(backend: tuple[str, str]) -> Iterator[str]:
    """The shop database with two websites and years of orders."""
    dsn = backend[0]
    engine = connect(dsn)
    eu_store = add_website(engine, "eu")
    generate_history(engine, ORDERS, years=YEARS, store_ids=(1, eu_store), seed=11)
    engine.dispose()
    yield dsn


def _queue_name(queue_url: str) -> str:
    name = f"koppla-test-{secrets.token_hex(4)}"
    if queue_url:
        CREATED_QUEUES.append(name)
    return name


def api(platform: Platform, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(
        method,
        platform.url + path,
        headers={"authorization": f"Bearer {platform.token}"},
        timeout=30,
        **kw,
    )


CREATED_QUEUES: list[str] = []


@pytest.fixture(autouse=True)
def _delete_test_queues() -> Iterator[None]:
    """Leave no test queue behind on the shared RabbitMQ (nothing to do for embedded ones)."""
    yield
    while CREATED_QUEUES:
        name = CREATED_QUEUES.pop()
        for queue in (name, f"{name}.dead"):
            try:
                subprocess.run(
                    ["rabbitmqctl", "delete_queue", queue], capture_output=True, timeout=30
                )
            except (OSError, subprocess.TimeoutExpired):
                return


def history_settings(
    home: Path, dsn: str, queue_url: str, platform: Platform, eu_dataset: str, **extra: Any
) -> ConnectorSettings:
    site = {"org_id": DEMO_ORG, "datastream_id": DEMO_DATASTREAM, "environment_id": "test-env"}
    return load_settings(
        home,
        token=platform.token,
        source_dsn=dsn,
        platform_url=platform.url,
        queue_url=queue_url,
        queue_name=_queue_name(queue_url),
        history_chunk_orders=40,
        websites=[
            {**site, "website_code": "base", "dataset_id": platform.dataset_id},
            {
                **site,
                "website_code": "eu",
                "dataset_id": platform.dataset_id,
                "history_copy_dataset_id": False,
                "history_dataset_id": eu_dataset,
            },
        ],
        **extra,
    )


@pytest.fixture
def eu_dataset(platform: Platform) -> str:
    response = api(platform, "POST", "/api/v1/datasets", json={"name": "eu_history"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def expected_events(settings: ConnectorSettings, start: date, end: date) -> dict[str, Counter[str]]:
    """Each dataset's expected event ids (with multiplicity 1) for orders created in the range."""
    engine = connect(settings.dsn)
    source = StoreSource(engine)
    low = datetime.combine(start, datetime.min.time())
    high = datetime.combine(end + timedelta(days=1), datetime.min.time())
    datasets = {
        "base": settings.websites[0].dataset_id,
        "eu": settings.websites[1].history_dataset_id,
    }
    out: dict[str, Counter[str]] = {d: Counter() for d in datasets.values()}
    ids = [i for chunk in source.order_ids(["base", "eu"]) for i in chunk]
    for rows in source.read(ids).values():
        created = rows.order["created_at"]
        created = created if isinstance(created, datetime) else datetime.fromisoformat(str(created))
        if not low <= created.replace(tzinfo=None) < high:
            continue
        site = settings.website(rows.scope.website_code)
        assert site is not None
        ctx = EventContext(site.website_code, site.environment_id)
        for event in history(build_snapshot(rows), ctx):
            out[datasets[site.website_code]][event["_id"]] += 1
    engine.dispose()
    return out


def stored(platform: Platform, dataset_id: str) -> tuple[int, int]:
    """(rows, distinct `_id`s) of a dataset, through SQL."""
    name = api(platform, "GET", f"/api/v1/datasets/{dataset_id}").json()["name"]
    rows = platform.query(f"SELECT count(*), count(DISTINCT _id) FROM {name}")
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)


def batches_written(platform: Platform, dataset_id: str) -> tuple[set[str], int]:
    """The statuses of a dataset's batches and the rows they wrote, from the AEP catalog API."""
    shown = api(
        platform, "GET", "/data/foundation/catalog/batches", params={"dataSet": dataset_id}
    ).json()
    return {b["status"] for b in shown.values()}, sum(
        b["metrics"]["recordsWritten"] for b in shown.values()
    )


def sync_range() -> tuple[date, date]:
    today = clock.now().date()
    return today - timedelta(days=int(YEARS * 365) + 2), today


def test_a_multi_year_history_lands_every_event_exactly_once(
    tmp_path: Path, backend: tuple[str, str], shop: str, platform: Platform, eu_dataset: str
) -> None:
    settings = history_settings(tmp_path / "shop", shop, backend[1], platform, eu_dataset)
    start, end = sync_range()
    expected = expected_events(settings, start, end)
    assert all(sum(c.values()) > 100 for c in expected.values())

    code = commands.sync(
        settings, start.isoformat(), end.isoformat(), None, wait=True, workers=2, as_json=True
    )
    assert code == 0

    for dataset_id, ids in expected.items():
        assert stored(platform, dataset_id) == (len(ids), len(ids))
        statuses, written = batches_written(platform, dataset_id)
        assert statuses == {"success"} and written == len(ids)
    ledger = Ledger(ledger_path(settings))
    (request,) = ledger.requests()
    counts = ledger.counts(request.id)
    ledger.close()
    assert request.status == "done"
    assert counts.orders_done == counts.orders_found and counts.orders_failed == 0
    assert counts.events == sum(len(ids) for ids in expected.values())

    # the same range again, and an overlapping one: nothing is stored twice
    assert (
        commands.sync(
            settings,
            (start + timedelta(days=400)).isoformat(),
            end.isoformat(),
            None,
            wait=True,
            workers=1,
            as_json=True,
        )
        == 0
    )
    for dataset_id, ids in expected.items():
        assert stored(platform, dataset_id) == (len(ids), len(ids))


def test_a_consumer_killed_mid_sync_loses_and_doubles_nothing(
    tmp_path: Path, sqlite_shop: str, platform: Platform, eu_dataset: str
) -> None:
    engine = connect(sqlite_shop)
    generate_history(engine, ORDERS, years=2, store_ids=(1, add_website(engine, "eu")), seed=3)
    engine.dispose()
    settings = history_settings(tmp_path / "shop", sqlite_shop, "", platform, eu_dataset)
    start, end = clock.now().date() - timedelta(days=800), clock.now().date()
    expected = expected_events(settings, start, end)
    sync = HistorySync(settings)
    request = sync.start(start, end)
    commands.asyncio.run(commands._produce(sync, request.id, settings))

    victims = spawn_workers(settings, 2)
    wait_for(lambda: sync.ledger.counts(request.id).events > 0, timeout=120, every=0.02)
    for process in victims:
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
    stop_workers(victims)
    assert sync.ledger.chunks_by_status(request.id).get("queued", 0) > 0  # killed mid-sync

    survivors = spawn_workers(settings, 1)
    try:
        wait_for(lambda: sync.progress(request.id).request.status == "done", timeout=180)
    finally:
        stop_workers(survivors)
        sync.close()
    for dataset_id, ids in expected.items():
        assert stored(platform, dataset_id) == (len(ids), len(ids))
        statuses, written = batches_written(platform, dataset_id)
        assert "failed" not in statuses and written == len(ids)


def test_a_rabbitmq_restart_mid_sync_loses_and_doubles_nothing(
    tmp_path: Path, magento: str, platform: Platform, eu_dataset: str
) -> None:
    rabbitmq_reachable()
    engine = connect(magento)
    generate_history(engine, ORDERS, years=2, store_ids=(1, add_website(engine, "eu")), seed=5)
    engine.dispose()
    settings = history_settings(tmp_path / "shop", magento, RABBITMQ_URL, platform, eu_dataset)
    start, end = clock.now().date() - timedelta(days=800), clock.now().date()
    expected = expected_events(settings, start, end)
    restarted = threading.Event()
    ledger = Ledger(ledger_path(settings))
    queued_at_restart: list[int] = []
    trouble: list[BaseException] = []

    def restart_when_busy() -> None:
        try:
            wait_for(lambda: _any_events(ledger), timeout=120, every=0.02)
            (request,) = ledger.requests(limit=1)
            queued_at_restart.append(ledger.chunks_by_status(request.id).get("queued", 0))
            restart_rabbitmq()
            restarted.set()
        except BaseException as error:  # surfaced in the test's own thread below
            trouble.append(error)

    restarter = threading.Thread(target=restart_when_busy, daemon=True)
    restarter.start()
    code = commands.sync(
        settings, start.isoformat(), end.isoformat(), None, wait=True, workers=2, as_json=True
    )
    restarter.join(120)
    ledger.close()
    if trouble:
        raise trouble[0]
    assert restarted.is_set() and queued_at_restart[0] > 0  # the broker went away mid-sync
    assert code == 0
    for dataset_id, ids in expected.items():
        assert stored(platform, dataset_id) == (len(ids), len(ids))
        statuses, written = batches_written(platform, dataset_id)
        assert "failed" not in statuses and written == len(ids)


def _any_events(ledger: Ledger) -> bool:
    requests = ledger.requests(limit=1)
    return bool(requests) and ledger.counts(requests[0].id).events > 0


def restart_rabbitmq() -> None:
    """Stop and start the RabbitMQ application; wait until it takes connections again."""
    try:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as error:
        unavailable(f"cannot restart RabbitMQ with rabbitmqctl: {error}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["rabbitmq-diagnostics", "-q", "check_port_connectivity"], capture_output=True
        )
        if probe.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("RabbitMQ did not come back within 60 s")


def test_an_unknown_dataset_and_refused_credentials_are_refused(
    tmp_path: Path, sqlite_shop: str, platform: Platform, eu_dataset: str
) -> None:
    start, end = clock.now().date() - timedelta(days=30), clock.now().date()
    settings = history_settings(tmp_path / "a", sqlite_shop, "", platform, "no-such-dataset")
    sync = HistorySync(settings)
    with pytest.raises(InvalidInput) as caught:
        sync.start(start, end)
    sync.close()
    assert caught.value.field == "dataset" and "no-such-dataset" in str(caught.value)

    wrong = history_settings(tmp_path / "b", sqlite_shop, "", platform, eu_dataset)
    wrong = wrong.model_copy(update={"token": type(wrong.token)("kpl_wrong")})
    sync = HistorySync(wrong)
    with pytest.raises(InvalidInput) as caught:
        sync.start(start, end)
    sync.close()
    assert caught.value.field == "token" and "refused" in str(caught.value)


def test_the_running_connector_carries_out_a_sync_requested_without_waiting(
    tmp_path: Path, sqlite_shop: str, platform: Platform, eu_dataset: str
) -> None:
    engine = connect(sqlite_shop)
    generate_history(engine, 150, years=1, store_ids=(1, add_website(engine, "eu")), seed=9)
    engine.dispose()
    settings = history_settings(tmp_path / "shop", sqlite_shop, "", platform, eu_dataset)
    start, end = clock.now().date() - timedelta(days=400), clock.now().date()
    expected = expected_events(settings, start, end)
    sync = HistorySync(settings)
    request = sync.start(start, end)  # as the API does: recorded, nothing queued yet
    stop = threading.Event()
    runtime = threading.Thread(target=run_history, args=(settings, stop), daemon=True)
    runtime.start()
    try:
        wait_for(lambda: sync.progress(request.id).request.status == "done", timeout=180)
    finally:
        stop.set()
        runtime.join(30)
        sync.close()
    for dataset_id, ids in expected.items():
        assert stored(platform, dataset_id) == (len(ids), len(ids))
