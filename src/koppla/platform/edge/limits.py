"""The limits the public edge enforces, taken from the settings once at start-up."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from koppla.core.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """What one edge request, one client and one datastream may do (docs/settings.md).

    The defaults equal the settings' defaults, except that nothing is exempt from the
    per-client rate limit.
    """

    max_body: int = 1024 * 1024
    max_depth: int = 32
    max_events: int = 1000
    client_rate: float = 200.0
    datastream_rate: float = 50_000.0
    rate_exempt: tuple[Network, ...] = field(default=())
    quarantine_hourly_limit: int = 10_000

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        """The limits `settings` configure."""
        return cls(
            max_body=settings.max_body_edge_bytes,
            max_depth=settings.edge_max_depth,
            max_events=settings.edge_max_events,
            client_rate=settings.edge_client_rate,
            datastream_rate=settings.edge_datastream_rate,
            rate_exempt=networks(settings.edge_rate_exempt),
            quarantine_hourly_limit=settings.quarantine_hourly_limit,
        )


def networks(cidrs: list[str] | tuple[str, ...]) -> tuple[Network, ...]:
    """Parse CIDRs (`127.0.0.0/8`, `::1/128`, or a bare address); `ValueError` on a bad one."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def is_exempt(address: str, exempt: tuple[Network, ...]) -> bool:
    """True when `address` is in one of the `exempt` networks (False if it is no IP address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in exempt)
