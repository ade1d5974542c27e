"""The storefront tag of a datastream (credentialed), and the public demo shop under `/demo/`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from koppla.core.errors import NotFound
from koppla.core.settings import Settings
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID, DEMO_ORG_ID
from koppla.platform.catalog.models import Datastream
from koppla.web.auth import Caller, Svc
from koppla.web.routes.connector_settings import settings_store
from koppla.web.storefront import bundle, catalogue
from koppla.web.storefront.pages import Page, ShopSite, render_page
from koppla.web.storefront.tag import EdgeDomain, edge_domain_for, render_tag

router = APIRouter(tags=["storefront"])

_STATIC = {"shop.js": "text/javascript", "shop.css": "text/css"}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.services.settings
    return settings


def edge_domain(request: Request) -> EdgeDomain:
    """The host name browsers reach the edge at: `public_edge_domain`, else this request's host.

    With warnings, saying what to do, when the Web SDK cannot reach the edge at that name.
    """
    return edge_domain_for(
        _settings(request).public_edge_domain,
        scheme=request.url.scheme,
        host=request.headers.get("host", "localhost"),
    )


def alloy_file(request: Request) -> Path | None:
    """The local Web SDK bundle to serve, if there is one (`alloy_path` or `node_modules`)."""
    return bundle.find_alloy(_settings(request).alloy_path, (Path.cwd(), bundle.source_root()))


def alloy_url(request: Request) -> str:
    """Where pages load the Web SDK from when Koppla has no local copy (`alloy_url`)."""
    return _settings(request).alloy_url or bundle.DEFAULT_ALLOY_URL


@router.get("/api/v1/datastreams/{datastream_id}/tag")
def datastream_tag(
    datastream_id: str, request: Request, svc: Svc, caller: Caller
) -> dict[str, Any]:
    """The HTML a merchant pastes into their shop to send its events to this datastream.

    `warnings` lists what stops browsers from reaching the edge at `edgeDomain` (plain http, a
    port other than 443, an IP address), each with what to do; 400 when alloy would refuse it.
    """
    stream = svc.catalog.datastream(datastream_id, caller.org_id, caller.sandbox)
    edge = edge_domain(request)
    if not edge.accepted:
        raise HTTPException(400, detail=" ".join(edge.warnings))
    return {
        "html": render_tag(stream, edge_domain=edge.name, alloy_src=alloy_url(request)),
        "edgeDomain": edge.name,
        "datastreamId": stream.id,
        "orgId": stream.org_id,
        "warnings": list(edge.warnings),
    }


def demo_website(request: Request) -> dict[str, Any]:
    """The demo shop's website (`base`) as the demo organization's Data Connection settings
    have it ({} when none are saved): the shop follows what the admin pages save."""
    saved = settings_store(request).get(DEMO_ORG_ID).document
    sites = saved.get("websites") if isinstance(saved, dict) else None
    for site in sites if isinstance(sites, list) else []:
        if isinstance(site, dict) and site.get("website_code") == DEMO_WEBSITE:
            return site
    return {}


def demo_datastream(request: Request, svc: Svc) -> Datastream:
    """The datastream the demo shop sends to: its website's saved datastream when that is one
    of the demo organization's, else the demo datastream; 404 (no shop) without either."""
    chosen = demo_website(request).get("datastream_id")
    for candidate in (chosen, DEMO_DATASTREAM_ID):
        if isinstance(candidate, str) and candidate:
            try:
                return svc.catalog.datastream(candidate, DEMO_ORG_ID)
            except NotFound:
                continue
    raise HTTPException(404, detail="the demo shop needs the demo datastream: run `koppla demo`")


DemoStream = Annotated[Datastream, Depends(demo_datastream)]

DEMO_WEBSITE = "base"
STOREFRONT_OFF = (
    "Storefront events are off for website base in the Data Connection settings "
    "(/admin/connection/settings): turn them on to collect this shop's events."
)


def _page(page: Page, request: Request, stream: Datastream, sku: str | None = None) -> HTMLResponse:
    product = catalogue.product(sku) if sku else None
    if sku and product is None:
        raise HTTPException(404, detail=f"the demo shop sells no product {sku!r}")
    src = "/demo/static/alloy.js" if alloy_file(request) else alloy_url(request)
    edge = edge_domain(request)
    if demo_website(request).get("storefront_events") is False:  # no Web SDK: nothing is sent
        edge = EdgeDomain("", (STOREFRONT_OFF,))
    site = ShopSite(datastream=stream, edge=edge, alloy_src=src)
    return HTMLResponse(render_page(page, site, product))


@router.get("/demo/shop/", response_class=HTMLResponse, include_in_schema=False)
def shop_home(request: Request, stream: DemoStream) -> HTMLResponse:
    """The demo shop's catalogue page."""
    return _page("home", request, stream)


@router.get("/demo/shop/product/{sku}", response_class=HTMLResponse, include_in_schema=False)
def shop_product(sku: str, request: Request, stream: DemoStream) -> HTMLResponse:
    """A product page."""
    return _page("product", request, stream, sku)


@router.get("/demo/shop/cart", response_class=HTMLResponse, include_in_schema=False)
def shop_cart(request: Request, stream: DemoStream) -> HTMLResponse:
    """The shopping cart."""
    return _page("cart", request, stream)


@router.get("/demo/shop/checkout", response_class=HTMLResponse, include_in_schema=False)
def shop_checkout(request: Request, stream: DemoStream) -> HTMLResponse:
    """The checkout page, where the order is placed."""
    return _page("checkout", request, stream)


@router.get("/demo/shop/signin", response_class=HTMLResponse, include_in_schema=False)
def shop_signin(request: Request, stream: DemoStream) -> HTMLResponse:
    """The customer login page."""
    return _page("signin", request, stream)


@router.get("/demo/shop/media/{sku}.svg", include_in_schema=False)
def shop_image(sku: str, _: DemoStream) -> Response:
    """A product's picture."""
    product = catalogue.product(sku)
    if product is None:
        raise HTTPException(404, detail=f"the demo shop sells no product {sku!r}")
    return Response(catalogue.product_image(product), media_type="image/svg+xml")


@router.get("/demo/static/alloy.js", include_in_schema=False)
def alloy_bundle(request: Request, _: DemoStream) -> FileResponse:
    """The Web SDK bundle from `node_modules` (after `npm ci`) or `alloy_path`."""
    path = alloy_file(request)
    if path is None:
        raise HTTPException(
            404, detail="no local @adobe/alloy bundle: run `npm ci` or set `alloy_path`"
        )
    return FileResponse(path, media_type="text/javascript")


@router.get("/demo/static/{name}", include_in_schema=False)
def shop_static(name: str, _: DemoStream) -> Response:
    """The shop's own script and style sheet."""
    if name not in _STATIC:
        raise HTTPException(404, detail=f"no demo file {name!r}")
    text = resources.files("koppla.web.storefront").joinpath("static", name).read_bytes()
    return Response(text, media_type=_STATIC[name])
