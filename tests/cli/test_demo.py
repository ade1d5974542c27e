"""`koppla demo`: the demo dataset and datastream, ready to query."""

from __future__ import annotations

from koppla.core import codec
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID
from tests.cli.conftest import Koppla


def test_demo_then_query_json(koppla: Koppla) -> None:
    demo = koppla("demo")
    assert demo.exit_code == 0 and DEMO_DATASTREAM_ID in demo.stdout
    assert f"configId={DEMO_DATASTREAM_ID}" in demo.stdout
    query = koppla("query", "SELECT count(*) AS n FROM demo_events", "--json")
    assert query.exit_code == 0
    assert codec.loads(query.stdout)["rows"] == [[0]]


def test_demo_is_idempotent(koppla: Koppla) -> None:
    first, again = koppla("demo"), koppla("demo")
    assert (first.exit_code, again.exit_code) == (0, 0)
    assert first.stdout == again.stdout
