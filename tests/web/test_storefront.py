"""The storefront tag, its API, and the demo shop's pages and files."""

from __future__ import annotations

import html as html_text
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.core.settings import Settings
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID, DEMO_ORG_ID, ensure_demo
from koppla.platform.catalog.models import Datastream
from koppla.web.app import create_app
from koppla.web.services import build_services
from koppla.web.storefront import bundle
from koppla.web.storefront.tag import render_tag, script_json
from tests.require import unavailable

REPO_ALLOY = Path(__file__).resolve().parents[2] / "node_modules/@adobe/alloy/dist/alloy.min.js"
CDN = "https://cdn1.adobedc.net/alloy/2.33.1/alloy.min.js"
PAGES = ("", "product/24-MB01", "product/MS10", "cart", "checkout", "signin")


STREAM = Datastream(
    id=DEMO_DATASTREAM_ID,
    org_id=DEMO_ORG_ID,
    name="Koppla demo",
    event_dataset_id="ds",
    profile_dataset_id=None,
    allowed_origins=(),
    created_ms=0,
)


def test_the_tag_configures_alloy_for_the_datastream_and_the_collector() -> None:
    html = render_tag(STREAM, edge_domain="edge.shop.example", alloy_src=CDN)
    assert f'"datastreamId": "{DEMO_DATASTREAM_ID}"' in html
    assert f'"orgId": "{DEMO_ORG_ID}"' in html
    assert f'"imsOrgId": "{DEMO_ORG_ID}"' in html
    assert html.count('"edgeDomain": "edge.shop.example"') == 2  # alloy and the collector
    assert '"edgeBasePath": "ee"' in html
    assert '"thirdPartyCookiesEnabled": false' in html
    assert '"defaultConsent": "pending"' in html
    assert "mse.context.setEventForwarding(forwarding)" in html
    assert "mse.context.setAEP(aep)" in html
    assert '"aep": true' in html and '"commerce": false' in html
    assert '"webSdkName": "alloy"' in html
    assert "window.__alloyNS" not in html and "n.__alloyNS" in html  # Adobe's base code
    assert f'<script src="{CDN}" async></script>' in html


def test_the_tag_refuses_an_edge_domain_alloy_would_refuse() -> None:
    for bad in ("edge.shop.example:8443", "https://edge.shop.example", "edge/ee", ""):
        with pytest.raises(ValueError, match="host name"):
            render_tag(STREAM, edge_domain=bad, alloy_src=CDN)


def test_the_tag_escapes_what_it_embeds() -> None:
    html = render_tag(STREAM, edge_domain="e.example", alloy_src='https://x/"><script>')
    assert '"><script>' not in html
    value = {"a": "</script><!-- & -->"}
    assert "<" not in script_json(value) and ">" not in script_json(value)
    assert codec.loads(script_json(value)) == value


def test_find_alloy_prefers_the_configured_file_then_node_modules(tmp_path: Path) -> None:
    dist = tmp_path / "node_modules/@adobe/alloy/dist"
    dist.mkdir(parents=True)
    (dist / "alloy.js").write_text("// full")
    assert bundle.find_alloy(None, (tmp_path / "nowhere", tmp_path)) == dist / "alloy.js"
    (dist / "alloy.min.js").write_text("// min")
    assert bundle.find_alloy(None, (tmp_path,)) == dist / "alloy.min.js"
    assert bundle.find_alloy(dist / "alloy.js", (tmp_path,)) == dist / "alloy.js"
    assert bundle.find_alloy(tmp_path / "missing.js", (tmp_path,)) is None


# ---- over HTTP --------------------------------------------------------------------------------


@pytest.fixture
def make_client(tmp_path: Path) -> Callable[..., Any]:
    """An in-process Koppla with the given storefront settings, optionally without the demo."""

    def make(
        *, demo: bool = True, base_url: str = "https://shop.example:8443", **fields: Any
    ) -> tuple[httpx.AsyncClient, str, Any]:
        settings = Settings(home=tmp_path / "home", **fields)
        services = build_services(settings)
        if demo:
            ensure_demo(services.catalog)
        token = services.catalog.add_token("test")
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url=base_url)
        return client, token, app

    return make


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    http, token, app = make_client()
    async with app.api.router.lifespan_context(app.api), http:
        yield http, token


def _config(html: str) -> dict[str, Any]:
    start = html.index('id="koppla-shop">') + len('id="koppla-shop">')
    found: dict[str, Any] = codec.loads(html[start : html.index("</script>", start)])
    return found


@pytest.mark.anyio
async def test_the_tag_api_needs_a_token(client: tuple[httpx.AsyncClient, str]) -> None:
    http, _ = client
    path = f"/api/v1/datastreams/{DEMO_DATASTREAM_ID}/tag"
    assert (await http.get(path)).status_code == 401
    forged = await http.get(path, headers={"authorization": "Bearer nope"})
    assert forged.status_code == 401


@pytest.mark.anyio
async def test_the_tag_api_answers_the_tag_for_the_request_host(
    client: tuple[httpx.AsyncClient, str],
) -> None:
    http, token = client
    auth = {"authorization": f"Bearer {token}"}
    answer = await http.get(f"/api/v1/datastreams/{DEMO_DATASTREAM_ID}/tag", headers=auth)
    assert answer.status_code == 200
    body = answer.json()
    assert body["edgeDomain"] == "shop.example"  # the Host header, without its port
    assert body["datastreamId"] == DEMO_DATASTREAM_ID
    assert body["orgId"] == DEMO_ORG_ID
    assert body["html"] == render_tag(STREAM, edge_domain="shop.example", alloy_src=CDN)
    [warning] = body["warnings"]  # the client asked on port 8443, where the SDK will not go
    assert "reached at https://shop.example:8443/" in warning
    missing = await http.get("/api/v1/datastreams/nope/tag", headers=auth)
    assert missing.status_code == 404


@pytest.mark.anyio
async def test_the_public_edge_domain_setting_wins(make_client: Callable[..., Any]) -> None:
    http, token, app = make_client(public_edge_domain="edge.shop.example")
    async with app.api.router.lifespan_context(app.api), http:
        tag = await http.get(
            f"/api/v1/datastreams/{DEMO_DATASTREAM_ID}/tag",
            headers={"authorization": f"Bearer {token}"},
        )
        page = await http.get("/demo/shop/")
    assert tag.json()["edgeDomain"] == "edge.shop.example"
    assert tag.json()["warnings"] == []
    assert _config(page.text)["alloy"]["edgeDomain"] == "edge.shop.example"
    assert _config(page.text)["warnings"] == []
    assert _banner(page.text) == []


TAG = f"/api/v1/datastreams/{DEMO_DATASTREAM_ID}/tag"
TLS_ON_443 = "koppla up --tls-cert CERT --tls-key KEY --port 443"


def _banner(html: str) -> list[str]:
    """The sentences of the page's edge warning, as a reader sees them (no tags)."""
    section = re.search(r'<section id="edge-warning".*?</section>', html, re.DOTALL)
    if section is None:
        return []
    paragraphs = re.findall(r"<p>(.*?)</p>", section.group(0), re.DOTALL)
    return [html_text.unescape(re.sub(r"<[^>]+>", "", p)) for p in paragraphs]


async def _tag_and_page(
    make_client: Callable[..., Any], base_url: str, **fields: Any
) -> tuple[httpx.Response, httpx.Response]:
    http, token, app = make_client(base_url=base_url, **fields)
    async with app.api.router.lifespan_context(app.api), http:
        tag = await http.get(TAG, headers={"authorization": f"Bearer {token}"})
        page = await http.get("/demo/shop/")
    return tag, page


@pytest.mark.anyio
async def test_https_on_443_under_a_name_has_no_warnings(make_client: Callable[..., Any]) -> None:
    tag, page = await _tag_and_page(make_client, "https://shop.example")
    assert tag.json()["edgeDomain"] == "shop.example"
    assert tag.json()["warnings"] == []
    assert 'id="edge-warning"' not in page.text
    assert _config(page.text)["warnings"] == []


@pytest.mark.anyio
async def test_another_port_warns_in_the_tag_api_and_on_the_shop_page(
    make_client: Callable[..., Any],
) -> None:
    tag, page = await _tag_and_page(make_client, "https://shop.example:8443")
    [warning] = tag.json()["warnings"]
    assert "only sends events to https://shop.example/ on port 443" in warning
    assert "reached at https://shop.example:8443/, so events will not arrive" in warning
    assert TLS_ON_443 in warning and "set `public_edge_domain`" in warning
    assert page.status_code == 200
    assert _banner(page.text) == [warning.replace("`", "")]
    assert f"<code>{TLS_ON_443}</code>" in page.text
    assert "Events from this shop will not reach Koppla" in page.text
    assert _config(page.text)["warnings"] == [warning]
    assert _config(page.text)["alloy"]["edgeDomain"] == "shop.example"  # still tried


@pytest.mark.anyio
async def test_plain_http_on_an_ip_address_gets_both_warnings(
    make_client: Callable[..., Any],
) -> None:
    tag, page = await _tag_and_page(make_client, "http://127.0.0.1:8080")
    assert tag.status_code == 200
    body = tag.json()
    assert body["edgeDomain"] == "127.0.0.1"
    reach, name = body["warnings"]
    assert "reached at http://127.0.0.1:8080/" in reach and TLS_ON_443 in reach
    assert "127.0.0.1 (from the request's Host header) is an IP address" in name
    assert _banner(page.text) == [w.replace("`", "") for w in (reach, name)]


@pytest.mark.anyio
async def test_a_public_edge_domain_silences_the_request_warnings(
    make_client: Callable[..., Any],
) -> None:
    tag, page = await _tag_and_page(
        make_client, "http://127.0.0.1:8080", public_edge_domain="edge.shop.example"
    )
    assert (tag.json()["edgeDomain"], tag.json()["warnings"]) == ("edge.shop.example", [])
    assert _banner(page.text) == []


@pytest.mark.anyio
async def test_an_edge_domain_alloy_refuses_is_a_400_and_an_unconfigured_shop(
    make_client: Callable[..., Any],
) -> None:
    tag, page = await _tag_and_page(
        make_client, "https://shop.example", public_edge_domain="edge.shop.example:8443"
    )
    assert tag.status_code == 400
    assert "Set `public_edge_domain` to the bare host name" in tag.json()["detail"]
    assert page.status_code == 200
    assert _config(page.text)["alloy"] is None  # alloy would throw on it
    [warning] = _banner(page.text)
    assert "'edge.shop.example:8443' (from public_edge_domain) is not a host name" in warning


@pytest.mark.anyio
async def test_an_ipv6_host_is_flagged(make_client: Callable[..., Any]) -> None:
    tag, page = await _tag_and_page(make_client, "http://[::1]:8080")
    assert tag.status_code == 400
    assert "[::1] (from the request's Host header) is an IP address" in tag.json()["detail"]
    assert page.status_code == 200 and _config(page.text)["alloy"] is None
    assert len(_banner(page.text)) == 2


@pytest.mark.anyio
async def test_the_shop_pages_are_served_without_credentials(
    client: tuple[httpx.AsyncClient, str],
) -> None:
    http, _ = client
    for page in PAGES:
        answer = await http.get(f"/demo/shop/{page}")
        assert answer.status_code == 200, page
        assert answer.headers["content-type"].startswith("text/html")
        config = _config(answer.text)
        assert config["alloy"]["datastreamId"] == DEMO_DATASTREAM_ID
        assert config["alloy"]["thirdPartyCookiesEnabled"] is False
        assert config["store"]["commerceScope"]["storeViewCode"] == "default"
        assert 'id="event-log"' in answer.text
    product = _config((await http.get("/demo/shop/product/24-MB01")).text)["product"]
    assert (product["sku"], product["name"], product["price"]) == (
        "24-MB01",
        "Joust Duffle Bag",
        34,
    )
    assert (await http.get("/demo/shop/product/NOPE")).status_code == 404
    for name, kind in (("shop.js", "text/javascript"), ("shop.css", "text/css")):
        answer = await http.get(f"/demo/static/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
    assert (await http.get("/demo/static/%2e%2e%2ftag.py")).status_code == 404
    image = await http.get("/demo/shop/media/MS10.svg")
    assert image.headers["content-type"] == "image/svg+xml"


@pytest.mark.anyio
async def test_no_demo_datastream_no_shop(make_client: Callable[..., Any]) -> None:
    http, _, app = make_client(demo=False)
    async with app.api.router.lifespan_context(app.api), http:
        for path in ("/demo/shop/", "/demo/static/shop.js", "/demo/static/alloy.js"):
            assert (await http.get(path)).status_code == 404, path


@pytest.mark.anyio
async def test_alloy_is_served_from_the_configured_file(
    make_client: Callable[..., Any], tmp_path: Path
) -> None:
    local = tmp_path / "alloy.min.js"
    local.write_text("/* alloy */")
    http, _, app = make_client(alloy_path=local)
    async with app.api.router.lifespan_context(app.api), http:
        served = await http.get("/demo/static/alloy.js")
        page = await http.get("/demo/shop/")
    assert served.status_code == 200 and served.text == "/* alloy */"
    assert served.headers["content-type"].startswith("text/javascript")
    assert '<script src="/demo/static/alloy.js" async>' in page.text


@pytest.mark.anyio
async def test_without_a_local_bundle_pages_load_alloy_from_alloy_url(
    make_client: Callable[..., Any], tmp_path: Path
) -> None:
    url = "https://cdn.shop.example/alloy.min.js"
    http, _, app = make_client(alloy_path=tmp_path / "missing.js", alloy_url=url)
    async with app.api.router.lifespan_context(app.api), http:
        served = await http.get("/demo/static/alloy.js")
        page = await http.get("/demo/shop/")
    assert served.status_code == 404
    assert f'<script src="{url}" async>' in page.text


@pytest.mark.anyio
async def test_alloy_is_served_from_node_modules(client: tuple[httpx.AsyncClient, str]) -> None:
    if not REPO_ALLOY.is_file():
        unavailable("node_modules absent: run `npm ci`")
    http, _ = client
    served = await http.get("/demo/static/alloy.js")
    assert served.status_code == 200
    assert served.content == REPO_ALLOY.read_bytes()
    assert '<script src="/demo/static/alloy.js" async>' in (await http.get("/demo/shop/")).text
