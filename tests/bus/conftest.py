"""Work queue fixtures: the same tests run on the embedded queue and on the real RabbitMQ."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import aiormq.exceptions
import pytest

from koppla.bus.queue import WorkQueue, open_queue
from koppla.bus.rabbit import dead_name
from koppla.core import ids
from tests.require import unavailable

RABBITMQ_URL = os.environ.get("KOPPLA_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")

Opener = Callable[..., Awaitable[WorkQueue]]


async def rabbit_reachable() -> str:
    """The test RabbitMQ URL once a connection succeeds (skip locally, fail under CI)."""
    try:
        connection = await aio_pika.connect(RABBITMQ_URL, timeout=5)
    except (aiormq.exceptions.AMQPError, OSError, TimeoutError) as error:
        unavailable(f"RabbitMQ unreachable at {RABBITMQ_URL}: {error!r}")
    await connection.close()
    return RABBITMQ_URL


async def delete_rabbit_queues(url: str, name: str) -> None:
    """Delete queue `name` and its dead-letter queue (whatever they hold)."""
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        for queue in (name, dead_name(name)):
            await channel.queue_delete(queue)
    finally:
        await connection.close()


@pytest.fixture
def queue_name() -> str:
    """A queue name no other test (or test run) uses."""
    return f"koppla-test-{ids.new_hex_id(6)}"


@pytest.fixture(params=["embedded", pytest.param("rabbit", marks=pytest.mark.integration)])
async def queue_url(request: pytest.FixtureRequest, queue_name: str) -> AsyncIterator[str]:
    """ "embedded", or the RabbitMQ URL (the test's queues are deleted afterwards)."""
    if request.param == "embedded":
        yield "embedded"
        return
    url = await rabbit_reachable()
    try:
        yield url
    finally:
        await delete_rabbit_queues(url, queue_name)


@pytest.fixture
async def opener(queue_url: str, queue_name: str, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens the test's queue (as often as a test likes: each object is one consumer or one
    producer) on the parametrized back-end; every object opened is closed afterwards."""
    opened: list[WorkQueue] = []

    async def open_one(**options: Any) -> WorkQueue:
        options.setdefault("retry_delay_s", 0.05)
        queue = await open_queue(queue_url, queue_name, home=tmp_path / "home", **options)
        opened.append(queue)
        return queue

    yield open_one
    for queue in opened:
        await queue.close()
