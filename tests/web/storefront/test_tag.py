"""Where the storefront tag points the Web SDK, and what it says when browsers cannot get there."""

from __future__ import annotations

import pytest

from koppla.web.storefront.tag import EdgeDomain, edge_domain_for, split_host

TLS_ON_443 = "koppla up --tls-cert CERT --tls-key KEY --port 443"


def test_https_on_port_443_under_a_host_name_needs_no_warning() -> None:
    for host in ("shop.example", "shop.example:443"):
        edge = edge_domain_for(None, scheme="https", host=host)
        assert edge == EdgeDomain("shop.example", ())
        assert edge.accepted


@pytest.mark.parametrize(
    ("scheme", "host", "reached"),
    [
        ("https", "shop.example:8443", "https://shop.example:8443/"),
        ("http", "shop.example:8080", "http://shop.example:8080/"),
        ("http", "shop.example", "http://shop.example/"),
        ("http", "shop.example:443", "http://shop.example:443/"),
    ],
)
def test_another_port_or_plain_http_says_how_to_serve_the_edge(
    scheme: str, host: str, reached: str
) -> None:
    edge = edge_domain_for(None, scheme=scheme, host=host)
    assert edge.name == "shop.example" and edge.accepted
    [warning] = edge.warnings
    assert "only sends events to https://shop.example/ on port 443" in warning
    assert f"Koppla was reached at {reached}, so events will not arrive" in warning
    assert f"`{TLS_ON_443}`" in warning
    assert "behind a TLS proxy on port 443 and set `public_edge_domain`" in warning


def test_an_ip_address_says_to_give_the_edge_a_name() -> None:
    edge = edge_domain_for(None, scheme="https", host="192.0.2.7")
    [warning] = edge.warnings
    assert "The edge domain 192.0.2.7 (from the request's Host header) is an IP address" in warning
    assert "set `public_edge_domain` to that name" in warning
    assert edge.accepted  # alloy's pattern lets it through; browsers still cannot use it


def test_the_default_http_on_8080_on_an_ip_gets_both_warnings() -> None:
    edge = edge_domain_for(None, scheme="http", host="127.0.0.1:8080")
    assert edge.name == "127.0.0.1"
    reach, name = edge.warnings
    assert "reached at http://127.0.0.1:8080/" in reach and TLS_ON_443 in reach
    assert "127.0.0.1 (from the request's Host header) is an IP address" in name


def test_an_ipv6_literal_is_an_ip_address_alloy_refuses() -> None:
    edge = edge_domain_for(None, scheme="http", host="[::1]:8080")
    assert edge.name == "[::1]"
    assert not edge.accepted
    assert any(
        "[::1] (from the request's Host header) is an IP address" in w for w in edge.warnings
    )


def test_a_configured_public_edge_domain_is_trusted_however_the_request_came() -> None:
    edge = edge_domain_for("edge.shop.example", scheme="http", host="127.0.0.1:8080")
    assert edge == EdgeDomain("edge.shop.example", ())


def test_a_configured_ip_address_or_a_name_with_a_port_is_flagged() -> None:
    ip = edge_domain_for("192.0.2.7", scheme="https", host="shop.example")
    [warning] = ip.warnings
    assert "192.0.2.7 (from `public_edge_domain`) is an IP address" in warning
    ported = edge_domain_for("edge.shop.example:8443", scheme="https", host="shop.example")
    assert not ported.accepted
    [warning] = ported.warnings
    assert "'edge.shop.example:8443' (from `public_edge_domain`) is not a host name" in warning
    assert "Set `public_edge_domain` to the bare host name" in warning


@pytest.mark.parametrize(
    ("host", "parts"),
    [
        ("edge.example:8443", ("edge.example", 8443)),
        ("edge.example", ("edge.example", None)),
        ("[::1]:8080", ("[::1]", 8080)),
        ("[::1]", ("[::1]", None)),
        ("edge.example:http", ("edge.example:http", None)),  # no port: the whole is the name
    ],
)
def test_split_host(host: str, parts: tuple[str, int | None]) -> None:
    assert split_host(host) == parts
