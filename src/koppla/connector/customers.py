"""Customers in the shop database: reading `customer_entity` + addresses, and their snapshots.

`CustomerSource.read(ids)` returns each existing customer's rows (a missing id is a deleted
customer); `build_customer_snapshot` turns them into a JSON-ready dict of what the profile
record and events carry, and `snapshot.snapshot_hash` its hash without `updatedAt`, so a save that
changes nothing Koppla sends (a password reset, a login failure count) is no change.

A customer belongs to the website of `customer_entity.website_id`; its store scope is the store
view it was created in (`store_id`), or the website's first store view when that view is the
admin scope or of another website. Customers without a website are not read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from koppla.connector import schema as t
from koppla.connector.snapshot import Row, Scope, is_zero_date, stamp
from koppla.connector.source import CHUNK, StoreSource, group_by, keyset_ids, rows_where


@dataclass(frozen=True, slots=True)
class CustomerRows:
    """One customer's rows: the entity, its scope and its addresses."""

    customer: Row
    scope: Scope
    addresses: list[Row]


def _date(value: object) -> str | None:
    """A date column as `YYYY-MM-DD`; None when absent, MySQL's zero date, or not a date."""
    if value is None or is_zero_date(value):
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        return None


def _text(value: object) -> str | None:
    text = None if value is None else str(value).strip()
    return text or None


def _address(rows: CustomerRows, address_id: object) -> dict[str, Any] | None:
    if address_id is None:
        return None
    for address in rows.addresses:
        if address.get("entity_id") == address_id:
            street = str(address.get("street") or "")
            return {
                "firstName": _text(address.get("firstname")),
                "lastName": _text(address.get("lastname")),
                "company": _text(address.get("company")),
                "multiLineStreet": [line for line in street.split("\n") if line.strip()],
                "city": _text(address.get("city")),
                "region": _text(address.get("region")),
                "postcode": _text(address.get("postcode")),
                "country": _text(address.get("country_id")),
                "telephone": _text(address.get("telephone")),
            }
    return None


def build_customer_snapshot(rows: CustomerRows) -> dict[str, Any]:
    """The customer as the profile record and events need it (pure)."""
    c = rows.customer
    return {
        "customerId": int(c["entity_id"]),
        "websiteCode": rows.scope.website_code,
        "storeCode": rows.scope.store_code,
        "storeViewCode": rows.scope.store_view_code,
        "email": _text(c.get("email")),
        "prefix": _text(c.get("prefix")),
        "firstName": _text(c.get("firstname")),
        "middleName": _text(c.get("middlename")),
        "lastName": _text(c.get("lastname")),
        "suffix": _text(c.get("suffix")),
        "birthDate": _date(c.get("dob")),
        "gender": None if c.get("gender") is None else int(c["gender"]),
        "createdAt": stamp(c.get("created_at")),
        "updatedAt": _last_update(rows),
        "billingAddress": _address(rows, c.get("default_billing")),
        "shippingAddress": _address(rows, c.get("default_shipping")),
    }


def _last_update(rows: CustomerRows) -> str | None:
    """When the customer or one of its addresses last changed (an address edit alone, undone
    later, must not give a record the `_id` of the one before it)."""
    c = rows.customer
    touched = [stamp(c.get("updated_at")) or stamp(c.get("created_at"))]
    touched += [stamp(a.get("updated_at")) for a in rows.addresses]
    return max((when for when in touched if when), default=None)


class CustomerSource:
    """Reads customers from one shop database (store scopes come from the `StoreSource`)."""

    def __init__(self, engine: Engine, stores: StoreSource) -> None:
        self.engine = engine
        self._stores = stores
        self._websites: dict[int, str] | None = None

    def websites(self, *, refresh: bool = False) -> dict[int, str]:
        """Each website id and its code (cached; `refresh` re-reads)."""
        if self._websites is None or refresh:
            web = t.store_website
            with self.engine.connect() as conn:
                rows = conn.execute(select(web.c.website_id, web.c.code)).all()
            self._websites = {int(wid): str(code or "") for wid, code in rows}
        return self._websites

    def _website_ids(self, website_codes: Iterable[str]) -> list[int]:
        wanted = set(website_codes)
        return sorted(wid for wid, code in self.websites().items() if code in wanted)

    def customer_ids(self, website_codes: Iterable[str]) -> Iterator[list[int]]:
        """Every customer id of the given websites, in chunks, ascending."""
        sites = self._website_ids(website_codes)
        entity = t.customer_entity
        if sites:
            yield from keyset_ids(self.engine, entity.c.entity_id, entity.c.website_id.in_(sites))

    def existing(self, customer_ids: Iterable[int]) -> set[int]:
        """Which of `customer_ids` still exist (a cheap id scan, in chunks)."""
        ids = sorted(set(customer_ids))
        found: set[int] = set()
        entity = t.customer_entity
        with self.engine.connect() as conn:
            for start in range(0, len(ids), CHUNK * 4):
                chunk = ids[start : start + CHUNK * 4]
                query = select(entity.c.entity_id).where(entity.c.entity_id.in_(chunk))
                found.update(int(r[0]) for r in conn.execute(query))
        return found

    def count(self, website_codes: Iterable[str]) -> int:
        """How many customers the given websites have."""
        sites = self._website_ids(website_codes)
        entity = t.customer_entity
        query = select(func.count()).where(entity.c.website_id.in_(sites))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def read(self, customer_ids: Sequence[int]) -> dict[int, CustomerRows]:
        """The rows of each existing customer in `customer_ids` that belongs to a website."""
        found: dict[int, CustomerRows] = {}
        ids = sorted(set(customer_ids))
        for start in range(0, len(ids), CHUNK):
            found.update(self._read_chunk(ids[start : start + CHUNK]))
        return found

    def _read_chunk(self, ids: list[int]) -> dict[int, CustomerRows]:
        with self.engine.connect() as conn:
            customers = rows_where(conn, t.customer_entity, "entity_id", ids)
            addresses = rows_where(conn, t.customer_address_entity, "parent_id", ids)
        websites = self.websites()
        if any(c.get("website_id") not in websites for c in customers if c.get("website_id")):
            websites = self.websites(refresh=True)
        by_parent = group_by(addresses, "parent_id")
        out: dict[int, CustomerRows] = {}
        for customer in customers:
            code = websites.get(customer.get("website_id"))  # type: ignore[arg-type]
            if code is None:
                continue
            cid = int(customer["entity_id"])
            scope = self._scope(code, customer.get("store_id"))
            out[cid] = CustomerRows(customer, scope, by_parent.get(cid, []))
        return out

    def _scope(self, website_code: str, store_id: object) -> Scope:
        scopes = self._stores.scopes()
        scope = scopes.get(int(store_id)) if isinstance(store_id, int) else None
        if scope is not None and scope.website_code == website_code:
            return scope
        stores = self._stores.store_ids([website_code])
        return scopes[stores[0]] if stores else Scope(website_code, "", "")
