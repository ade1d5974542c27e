"""Test connection against servers that misbehave: one that never answers (or trickles), one
that answers too much, one whose token answer is odd. Each gives a report, never a hang or a
crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from koppla.connector.connection_check import (
    MAX_ANSWER_BYTES,
    ConnectionReport,
    ServiceCredentials,
    check_connection,
)
from koppla.core import codec

pytestmark = pytest.mark.anyio

ORG = "KOPPLADEMO00000000000000@AdobeOrg"
CREDENTIALS = ServiceCredentials("c1", "p8e-secret", ORG, ("openid",))
Handler = Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]]


class Trickle(httpx.AsyncByteStream):
    """A body that never ends: one byte now and then."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            yield b" "
            await asyncio.sleep(0.01)


class Endless(httpx.AsyncByteStream):
    """A body that never ends, as fast as it can be read."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            yield b" " * 65536
            await asyncio.sleep(0)


async def check(handler: Handler, timeout_s: float = 15.0) -> ConnectionReport:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await check_connection(
            client, "http://platform.test", CREDENTIALS, timeout_s=timeout_s
        )


def token(request: httpx.Request, **body: Any) -> httpx.Response:
    return httpx.Response(200, json={"access_token": "at", "token_type": "bearer", **body})


async def test_a_platform_that_never_answers_is_unreachable_in_time() -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    report = await check(silent, timeout_s=0.2)
    assert report.ok is False and report.problem == "unreachable"
    assert "did not answer within 0.2 s" in report.message
    assert [(s.name, s.ok) for s in report.steps] == [("token", False)]


async def test_an_answer_that_trickles_forever_is_cut_off() -> None:
    async def trickle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Trickle())

    report = await check(trickle, timeout_s=0.2)
    assert report.problem == "unreachable"


async def test_the_platform_call_has_its_own_time_limit() -> None:
    async def slow_catalog(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            return token(request, expires_in=86399)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    report = await check(slow_catalog, timeout_s=0.2)
    assert report.problem == "unreachable"
    assert [(s.name, s.ok) for s in report.steps] == [("token", True), ("platform", False)]


@pytest.mark.parametrize("stream", ["endless", "big"])
async def test_an_answer_over_a_mebibyte_is_not_a_platforms(stream: str) -> None:
    padding = "x" * MAX_ANSWER_BYTES
    big = codec.dumps({"access_token": "at", "expires_in": 10, "padding": padding})

    async def huge(request: httpx.Request) -> httpx.Response:
        if stream == "endless":
            return httpx.Response(200, stream=Endless())
        return httpx.Response(200, content=big)

    report = await check(huge)
    assert report.ok is False and report.problem == "not_a_platform"
    assert "more than 1024 KiB" in report.message


@pytest.mark.parametrize("expires_in", ["soon", True, None, 1.5, [], {}])
async def test_an_odd_expires_in_counts_as_zero(expires_in: object) -> None:
    async def odd(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            return token(request, expires_in=expires_in)
        return httpx.Response(200, json={})

    report = await check(odd)
    assert report.ok is True, report.message
    assert report.steps[0].message == "access token fetched (valid 0 s)"


async def test_an_integer_expires_in_is_shown() -> None:
    async def fine(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            return token(request, expires_in=86399)
        return httpx.Response(200, json={"d1": {}, "d2": {}})

    report = await check(fine)
    assert report.ok is True
    assert report.steps[0].message == "access token fetched (valid 86399 s)"
    assert "2 dataset(s)" in report.steps[1].message
