"""Bounded fuzzing of a real server: the OpenAPI contract (schemathesis), and hostile edge bodies.

`bench/fuzz.py` runs the same fuzzers for longer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID
from tests.server import Koppla, free_port
from tests.web.fuzzing import a_valid_event_lands, alloy_sample, contract_fuzz, edge_fuzz

pytestmark = pytest.mark.slow

CONTRACT_EXAMPLES = 5
HOSTILE_EXAMPLES = 120


@pytest.fixture(scope="module")
def koppla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Koppla]:
    """`koppla up --demo` in a home of its own, shared by this module's tests."""
    server = Koppla(tmp_path_factory.mktemp("fuzz") / "home", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token(koppla: Koppla) -> str:
    """An API token of the server."""
    return koppla.token()


def test_the_api_keeps_the_contract_of_its_openapi_document(koppla: Koppla, token: str) -> None:
    reports = contract_fuzz(koppla.url, token, DEMO_DATASTREAM_ID, examples=CONTRACT_EXAMPLES)
    tried = {r.target for r in reports if r.requests}
    assert "POST /ee/v1/interact" in tried
    assert "POST /api/v1/datasets" in tried
    failures = [f"{r.target}: {f}" for r in reports for f in r.failures]
    assert not failures, "\n\n".join(failures)
    assert sum(r.server_errors for r in reports) == 0


def test_hostile_edge_bodies_get_no_5xx_and_the_server_keeps_working(
    koppla: Koppla, token: str
) -> None:
    crashes: list[str] = []
    report = edge_fuzz(
        koppla.url,
        DEMO_DATASTREAM_ID,
        alloy_sample(),
        examples=HOSTILE_EXAMPLES,
        on_server_error=lambda body, status: crashes.append(f"{status}: {body[:200]!r}"),
    )
    assert report.requests >= HOSTILE_EXAMPLES
    assert crashes == []
    assert report.statuses[400] > 0 and report.statuses[413] > 0
    assert koppla.proc is not None and koppla.proc.poll() is None
    assert a_valid_event_lands(koppla.url, token, DEMO_DATASTREAM_ID, alloy_sample())
