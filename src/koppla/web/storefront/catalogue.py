"""The demo shop's products and store: a few Luma items, as Magento's contexts hold them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ENVIRONMENT_ID = "c3f5a2d4-7b1e-4c0a-9e36-5d8f0b2a1e77"
CURRENCY = "USD"
SHIPPING_METHOD = "flatrate_flatrate"
SHIPPING_AMOUNT = 5.0
PAYMENT_METHOD = "checkmo"


@dataclass(frozen=True, slots=True)
class Option:
    """A configurable product's option, e.g. Size with its values."""

    label: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Product:
    """A product as the storefront `productContext` describes it (simple or configurable)."""

    sku: str
    name: str
    price: float
    colour: str
    description: str
    options: tuple[Option, ...] = field(default_factory=tuple)

    def context(self, base_url: str) -> dict[str, Any]:
        """The product as the page script reads it (`base_url` ends with `/`)."""
        return {
            "sku": self.sku,
            "name": self.name,
            "price": self.price,
            "currencyCode": CURRENCY,
            "imageUrl": f"{base_url}media/{self.sku}.svg",
            "url": f"{base_url}product/{self.sku}",
            "options": [{"label": o.label, "values": list(o.values)} for o in self.options],
        }


PRODUCTS: tuple[Product, ...] = (
    Product("24-MB01", "Joust Duffle Bag", 34.0, "#3b6ea5", "A roomy duffle for gym and travel."),
    Product("24-MB04", "Strive Shoulder Pack", 32.0, "#6a8f3c", "A light pack for the commute."),
    Product(
        "MS10",
        "Logan HeatTec Tee",
        24.0,
        "#b0413e",
        "A breathable training tee.",
        (Option("Size", ("XS", "S", "M", "L", "XL")), Option("Color", ("Black", "Blue", "Red"))),
    ),
    Product("24-UG06", "Affirm Water Bottle", 7.0, "#2a9d8f", "Keeps water cold for hours."),
    Product("24-WG02", "Didi Sport Watch", 92.0, "#444444", "Tracks laps, pace and heart rate."),
)


def product(sku: str) -> Product | None:
    """The product with `sku`, if the shop sells it."""
    return next((p for p in PRODUCTS if p.sku == sku), None)


def store_context() -> dict[str, Any]:
    """The store as the page script reads it: `commerceScope`, currency, shipping and payment."""
    return {
        "commerceScope": {
            "environmentID": ENVIRONMENT_ID,
            "storeCode": "main_website_store",
            "storeViewCode": "default",
            "websiteCode": "base",
        },
        "currencyCode": CURRENCY,
        "shippingMethod": SHIPPING_METHOD,
        "shippingAmount": SHIPPING_AMOUNT,
        "paymentMethod": PAYMENT_METHOD,
    }


def product_image(item: Product) -> str:
    """A small SVG picture of `item` (a coloured tile with its initials)."""
    initials = "".join(word[0] for word in item.name.split()[:2])
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="240" viewBox="0 0 240 240">'
        f'<rect width="240" height="240" rx="16" fill="{item.colour}"/>'
        '<text x="120" y="140" font-family="sans-serif" font-size="72" fill="#fff" '
        f'text-anchor="middle">{initials}</text></svg>'
    )
