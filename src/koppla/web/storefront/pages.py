"""The demo shop's HTML pages, rendered from Jinja2 templates shipped in this package."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import jinja2
from markupsafe import Markup

from koppla.platform.catalog.models import Datastream
from koppla.web.storefront import catalogue
from koppla.web.storefront.tag import BASE_CODE, EdgeDomain, alloy_configuration, script_json

Page = Literal["home", "product", "cart", "checkout", "signin"]

# Magento's `pageContext.pageType` of each page: it becomes `web.webPageDetails.siteSection`.
PAGE_TYPES: dict[Page, str] = {
    "home": "CMS",
    "product": "Product",
    "cart": "Cart",
    "checkout": "Checkout",
    "signin": "Account",
}


@dataclass(frozen=True, slots=True)
class ShopSite:
    """Where the shop lives and whom it sends to: one per request.

    `edge` carries the warnings the page shows when browsers cannot reach the edge.
    """

    datastream: Datastream
    edge: EdgeDomain
    alloy_src: str
    base_url: str = "/demo/shop/"
    static_url: str = "/demo/static/"


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("koppla.web.storefront", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["code_spans"] = code_spans
    return environment


def code_spans(text: str) -> Markup:
    """`text` as HTML, escaped, with its `backquoted` parts set as `<code>`."""
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if i % 2 else part
        for i, part in enumerate(text.split("`"))
    )


def render_page(page: Page, site: ShopSite, product: catalogue.Product | None = None) -> str:
    """The HTML of one shop page; `product` is the product shown on the product page.

    When alloy would refuse the edge domain, the page leaves the Web SDK unconfigured (`alloy`
    is null) and its events say they were not sent; the warnings say why, at the top.
    """
    title = product.name if product else _TITLES[page]
    edge = site.edge
    config: dict[str, Any] = {
        "alloy": alloy_configuration(site.datastream, edge.name) if edge.accepted else None,
        "warnings": list(edge.warnings),
        "page": {"pageType": PAGE_TYPES[page], "pageName": title},
        "product": product.context(site.base_url) if product else None,
        "products": {p.sku: p.context(site.base_url) for p in catalogue.PRODUCTS},
        "store": catalogue.store_context(),
        "urls": {name: f"{site.base_url}{name}" for name in ("cart", "checkout", "signin")},
    }
    template = _environment().get_template(f"{page}.html")
    return template.render(
        page=page,
        title=title,
        site=site,
        product=product,
        products=[p.context(site.base_url) for p in catalogue.PRODUCTS],
        base_code=BASE_CODE,
        config_json=script_json(config, indent=None),
    )


_TITLES: dict[Page, str] = {
    "home": "Koppla demo shop",
    "product": "Product",
    "cart": "Shopping cart",
    "checkout": "Checkout",
    "signin": "Customer login",
}
