"""The work queue contract, run against both back-ends (embedded SQLite and real RabbitMQ)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest

from koppla.bus.queue import (
    MAX_BODY_BYTES,
    DeadLetter,
    Delivery,
    QueueDepth,
    WorkQueue,
    check_bodies,
    check_name,
    open_queue,
)
from koppla.core.errors import InvalidInput
from tests.bus.conftest import Opener

pytestmark = pytest.mark.anyio


async def _get(queue: WorkQueue, timeout_s: float = 10.0) -> Delivery:
    delivery = await queue.get(timeout_s)
    assert delivery is not None, "no message came"
    return delivery


async def test_concurrent_consumers_ack_every_message_exactly_once(opener: Opener) -> None:
    producer = await opener()
    bodies = [f'{{"chunk": {n}}}'.encode() for n in range(200)]
    await producer.publish(bodies)
    consumers = [await opener() for _ in range(4)]
    acked: list[bytes] = []
    by_consumer = [0] * len(consumers)

    async def consume(index: int, queue: WorkQueue) -> None:
        while len(acked) < len(bodies):
            delivery = await queue.get(0.2)
            if delivery is None:
                continue
            await asyncio.sleep(0.002)  # a little work, so that consumers interleave
            acked.append(delivery.body)
            by_consumer[index] += 1
            await delivery.ack()

    with anyio.fail_after(60):
        await asyncio.gather(*(consume(i, q) for i, q in enumerate(consumers)))

    assert sorted(acked) == sorted(bodies)
    assert sum(1 for count in by_consumer if count > 0) >= 2
    assert await producer.depth() == QueueDepth(ready=0, in_flight=0, dead=0)
    assert await consumers[0].get(0.3) is None


async def test_a_retried_message_comes_back_as_attempt_two(opener: Opener) -> None:
    queue = await opener()
    await queue.publish([b"flaky"])
    first = await _get(queue)
    assert (first.body, first.attempt) == (b"flaky", 1)

    await first.retry("platform answered 503")
    second = await _get(queue)
    assert (second.body, second.attempt) == (b"flaky", 2)
    await second.ack()
    assert await queue.depth() == QueueDepth(ready=0, in_flight=0, dead=0)


async def test_past_max_attempts_a_retry_dead_letters_with_the_reason(opener: Opener) -> None:
    queue = await opener(max_attempts=3)
    await queue.publish([b"poison"])
    for attempt in (1, 2, 3):
        delivery = await _get(queue)
        assert delivery.attempt == attempt
        await delivery.retry(f"boom {attempt}")

    assert await queue.get(0.3) is None
    assert await queue.dead_letters() == [DeadLetter(b"poison", "boom 3", 3)]
    assert await queue.depth() == QueueDepth(ready=0, in_flight=0, dead=1)


async def test_dead_letter_files_the_message_at_once_and_keeps_it_visible(
    opener: Opener,
) -> None:
    queue = await opener()
    await queue.publish([b"not json", b"fine"])
    delivery = await _get(queue)
    assert delivery.body == b"not json"
    await delivery.dead_letter("body: not JSON")

    expected = [DeadLetter(b"not json", "body: not JSON", 1)]
    assert await queue.dead_letters() == expected
    assert await queue.dead_letters() == expected  # looking does not remove
    assert (await _get(queue)).body == b"fine"


async def test_depth_counts_ready_in_flight_and_dead(opener: Opener) -> None:
    producer = await opener()
    await producer.publish([b"1", b"2", b"3"])
    assert await producer.depth() == QueueDepth(ready=3, in_flight=0, dead=0)

    consumer = await opener(prefetch=3)
    one, two, three = [await _get(consumer) for _ in range(3)]
    assert await consumer.depth() == QueueDepth(ready=0, in_flight=3, dead=0)
    await one.dead_letter("bad")
    assert await consumer.depth() == QueueDepth(ready=0, in_flight=2, dead=1)
    await two.ack()
    await three.ack()
    assert await consumer.depth() == QueueDepth(ready=0, in_flight=0, dead=1)
    await consumer.close()

    await producer.publish([b"4", b"5"])
    assert await producer.depth() == QueueDepth(ready=2, in_flight=0, dead=1)
    await producer.purge()
    assert await producer.depth() == QueueDepth(ready=0, in_flight=0, dead=0)
    assert await producer.dead_letters() == []


async def test_published_messages_outlive_the_publisher(opener: Opener) -> None:
    producer = await opener()
    await producer.publish([b"a", b"b", b"c"])
    await producer.close()

    reopened = await opener()
    got = []
    for _ in range(3):
        delivery = await _get(reopened)
        got.append(delivery.body)
        await delivery.ack()
    assert sorted(got) == [b"a", b"b", b"c"]


async def test_a_consumer_that_closes_without_settling_gives_the_message_back(
    opener: Opener,
) -> None:
    await (await opener()).publish([b"unfinished"])
    quitter = await opener()
    assert (await _get(quitter)).attempt == 1
    await quitter.close()

    again = await _get(await opener())
    assert (again.body, again.attempt) == (b"unfinished", 2)


async def test_a_message_whose_consumers_keep_dying_is_dead_lettered(opener: Opener) -> None:
    await (await opener(max_attempts=2)).publish([b"crashes everyone"])
    for _ in range(2):
        doomed = await opener(max_attempts=2)
        await _get(doomed)
        await doomed.close()  # as if the consumer died before settling

    survivor = await opener(max_attempts=2)
    assert await survivor.get(0.5) is None
    (letter,) = await survivor.dead_letters()
    assert (letter.body, letter.attempts) == (b"crashes everyone", 2)
    assert "never acknowledged" in letter.reason


async def test_settling_twice_does_nothing(opener: Opener) -> None:
    queue = await opener()
    await queue.publish([b"once", b"next"])
    delivery = await _get(queue)
    await delivery.ack()
    await delivery.ack()
    await delivery.retry("too late")
    await delivery.dead_letter("too late")

    following = await _get(queue)
    assert (following.body, following.attempt) == (b"next", 1)
    await following.ack()
    assert await queue.depth() == QueueDepth(ready=0, in_flight=0, dead=0)


async def test_an_empty_queue_answers_none_after_the_timeout(opener: Opener) -> None:
    queue = await opener()
    assert await queue.get(0.1) is None
    await queue.publish([])
    assert await queue.get(0) is None


# Refusals: each names the field and the reason.


def test_a_non_bytes_body_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_bodies([b"ok", "text"])  # type: ignore[list-item]
    assert refused.value.field == "bodies[1]"
    assert "must be bytes" in str(refused.value)


def test_an_oversized_body_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_bodies([b"x" * (MAX_BODY_BYTES + 1)])
    assert refused.value.field == "bodies[0]"
    assert "limit" in str(refused.value)


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "x.dead", "-lead", "é", "a" * 101])
def test_a_queue_name_that_is_no_plain_word_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_name(name)
    assert refused.value.field == "name"


async def test_an_unknown_url_scheme_is_refused_without_echoing_credentials(
    tmp_path: Path,
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await open_queue("redis://user:s3cret@host/0", "q", home=tmp_path)
    assert refused.value.field == "queue_url"
    assert "s3cret" not in str(refused.value)


async def test_settings_that_cannot_work_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as refused:
        await open_queue("", "q", home=tmp_path, max_attempts=0)
    assert refused.value.field == "max_attempts"
    with pytest.raises(InvalidInput) as refused:
        await open_queue("", "q", home=tmp_path, prefetch=0)
    assert refused.value.field == "prefetch"


async def test_the_embedded_queue_lives_under_the_home(tmp_path: Path) -> None:
    queue = await open_queue("", "history", home=tmp_path)
    await queue.publish([b"x"])
    await queue.close()
    assert (tmp_path / "bus" / "history.sqlite").is_file()
