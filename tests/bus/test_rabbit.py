"""The RabbitMQ queue against a real broker: restarts, dead channels, declarations, refusals."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator

import aio_pika
import anyio
import pytest

from koppla.bus.rabbit import RabbitQueue
from koppla.core.errors import InvalidInput, TerminalError, TransientError
from tests.bus.conftest import delete_rabbit_queues, rabbit_reachable
from tests.require import unavailable

pytestmark = pytest.mark.anyio


@pytest.fixture
async def rabbit(queue_name: str) -> AsyncIterator[str]:
    """The broker URL; the test's queues are deleted afterwards."""
    url = await rabbit_reachable()
    try:
        yield url
    finally:
        await delete_rabbit_queues(url, queue_name)


async def _restart_broker() -> None:
    await anyio.run_process(["rabbitmqctl", "stop_app"])
    await anyio.run_process(["rabbitmqctl", "start_app"])
    while True:
        probe = await anyio.run_process(
            ["rabbitmq-diagnostics", "-q", "check_port_connectivity"], check=False
        )
        if probe.returncode == 0:
            return
        await anyio.sleep(0.5)


@pytest.mark.integration
async def test_a_broker_restart_mid_stream_loses_no_message(rabbit: str, queue_name: str) -> None:
    if shutil.which("rabbitmqctl") is None or os.geteuid() != 0:
        unavailable("restarting RabbitMQ needs rabbitmqctl, run as root")
    producer = await RabbitQueue.open(rabbit, queue_name)
    consumer = await RabbitQueue.open(rabbit, queue_name, prefetch=5)
    published: set[bytes] = set()
    seen: set[bytes] = set()
    produced = asyncio.Event()
    at_restart: list[int] = []

    async def produce() -> None:
        for batch in range(60):
            bodies = [f"{batch}-{n}".encode() for n in range(5)]
            await producer.publish(bodies)
            published.update(bodies)
            await asyncio.sleep(0.05)
        produced.set()

    async def consume() -> None:
        while not (produced.is_set() and seen >= published):
            delivery = await consumer.get(0.5)
            if delivery is not None:
                seen.add(delivery.body)
                await asyncio.sleep(0.02)  # slower than the producer: a backlog builds up
                await delivery.ack()  # may fail while the broker is down: logged, redelivered

    async def restart() -> None:
        await asyncio.sleep(1.0)
        at_restart.extend([len(published), (await producer.depth()).ready])
        await _restart_broker()

    try:
        with anyio.fail_after(80):
            await asyncio.gather(produce(), consume(), restart())
    finally:
        await producer.close()
        await consumer.close()
    published_before, backlog = at_restart
    assert 0 < published_before < 300  # the restart came mid-stream
    assert backlog > 0  # with messages waiting in the queue
    assert len(published) == 300
    assert seen == published


@pytest.mark.integration
async def test_an_ack_on_a_dead_channel_is_dropped_and_the_message_comes_again(
    rabbit: str, queue_name: str
) -> None:
    queue = await RabbitQueue.open(rabbit, queue_name, prefetch=2)
    try:
        await queue.publish([b"only"])
        first = await queue.get(10)
        assert first is not None
        assert queue._consumer is not None
        channel = await queue._consumer.get_underlay_channel()
        await channel.close()  # the delivery's channel dies; the robust channel reopens

        await first.ack()  # no error: the broker will deliver the message again
        again = await queue.get(10)
        assert again is not None
        assert (again.body, again.attempt) == (b"only", 2)
        await again.ack()
        assert await queue.get(0.3) is None
    finally:
        await queue.close()


@pytest.mark.integration
async def test_opening_twice_redeclares_the_same_queue(rabbit: str, queue_name: str) -> None:
    one = await RabbitQueue.open(rabbit, queue_name)
    two = await RabbitQueue.open(rabbit, queue_name, max_attempts=9, prefetch=4)
    try:
        await one.publish([b"x"])
        delivery = await two.get(10)
        assert delivery is not None
        assert delivery.body == b"x"
        await delivery.ack()
    finally:
        await one.close()
        await two.close()


@pytest.mark.integration
async def test_a_queue_that_exists_with_other_settings_is_refused_by_name(
    rabbit: str, queue_name: str
) -> None:
    connection = await aio_pika.connect(rabbit)
    channel = await connection.channel()
    await channel.declare_queue(queue_name, durable=True)  # a classic queue
    await connection.close()

    with pytest.raises(TerminalError) as refused:
        await RabbitQueue.open(rabbit, queue_name)
    assert queue_name in str(refused.value)


async def test_an_unreachable_broker_is_a_transient_error_without_the_password() -> None:
    with pytest.raises(TransientError) as failed:
        await RabbitQueue.open("amqp://guest:s3cret@127.0.0.1:1/", "q")
    assert "127.0.0.1:1" in str(failed.value)
    assert "s3cret" not in str(failed.value)


@pytest.mark.parametrize("url", ["amqp://guest:s3cret@host:port/", "amqp:///vhost"])
async def test_a_malformed_url_is_refused_without_the_password(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await RabbitQueue.open(url, "q")
    assert refused.value.field == "queue_url"
    assert "s3cret" not in str(refused.value)
