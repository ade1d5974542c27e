"""The edge's two rate limits: per client address (with exempt networks), per datastream."""

from __future__ import annotations

from koppla.core.settings import Settings
from koppla.platform.edge.limits import EdgeLimits, is_exempt, networks
from koppla.platform.edge.throttle import Throttle
from tests.platform.edge.fakes import FakeClock


def test_a_client_over_its_rate_waits_and_an_exempt_one_does_not(fake_clock: FakeClock) -> None:
    throttle = Throttle(EdgeLimits(client_rate=1, rate_exempt=networks(["10.0.0.0/8"])))
    assert [throttle.client_wait("203.0.113.7") for _ in range(3)] == [0, 0, 1]
    assert [throttle.client_wait("10.1.2.3") for _ in range(10)] == [0] * 10
    assert throttle.client_wait(None) == 0  # no address (a Unix socket): nothing to key on


def test_a_datastream_is_charged_per_event(fake_clock: FakeClock) -> None:
    throttle = Throttle(EdgeLimits(datastream_rate=100))
    assert throttle.datastream_wait("s1", 150) == 0
    assert throttle.datastream_wait("s1", 100) == 1
    assert throttle.datastream_wait("s2", 100) == 0


def test_a_rate_of_zero_turns_a_limit_off(fake_clock: FakeClock) -> None:
    throttle = Throttle(EdgeLimits(client_rate=0, datastream_rate=0))
    assert {throttle.client_wait("203.0.113.7") for _ in range(1000)} == {0}
    assert throttle.datastream_wait("s1", 10**9) == 0


def test_limits_come_from_the_settings(settings: Settings) -> None:
    limits = EdgeLimits.from_settings(settings)
    assert limits.max_depth == settings.edge_max_depth
    assert limits.max_events == settings.edge_max_events
    assert limits.max_body == settings.max_body_edge_bytes
    assert is_exempt("127.0.0.1", limits.rate_exempt)
    assert is_exempt("::1", limits.rate_exempt)
    assert not is_exempt("203.0.113.7", limits.rate_exempt)
    assert not is_exempt("not-an-address", limits.rate_exempt)
