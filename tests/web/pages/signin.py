"""A person signed in to the admin pages of an in-process app, for the pages' tests.

async with admin_app(settings) as http:
    await sign_in(http)
    page = await http.get("/admin/datasets")
    await http.post("/admin/...", data={"csrf": csrf_field(page.text), ...})
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
from argon2 import PasswordHasher
from fastapi import APIRouter

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.users import UserStore
from koppla.web.app import KopplaApp, create_app

EMAIL = "ann@shop.example"
PASSWORD = "a long enough password"
CHEAP = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
"""Makes the test user's hash quickly (the app verifies it, then renews it at full strength)."""

_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def add_user(
    settings: Settings, email: str = EMAIL, password: str = PASSWORD, org_id: str | None = None
) -> None:
    """Give the home a person who may sign in (of the home's organization by default)."""
    path = Layout(settings.home).catalog
    catalog = Catalog(path)
    users = UserStore(path, hasher=CHEAP)
    try:
        users.create_user(email, password, org_id=org_id or catalog.default_org())
    finally:
        users.close()
        catalog.close()


@asynccontextmanager
async def admin_app(
    settings: Settings,
    *,
    base_url: str = "http://admin.test",
    routers: Sequence[APIRouter] = (),
) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app (started), a person `EMAIL`/`PASSWORD`, and a client that keeps cookies
    and does not follow redirects. `routers` are included when the app lacks their routes
    (for route modules not yet registered in `create_app`)."""
    add_user(settings)
    app: KopplaApp = create_app(settings)
    have = {getattr(route, "path", None) for route in app.api.routes}
    for router in routers:
        if not {getattr(route, "path", None) for route in router.routes} <= have:
            app.api.include_router(router)
    async with app.api.router.lifespan_context(app.api):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            yield http


def csrf_field(html: str) -> str:
    """The value of the first hidden `csrf` field of a page."""
    found = _CSRF_FIELD.search(html)
    assert found is not None, "the page has no csrf field"
    return found.group(1)


async def sign_in(
    http: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD, next: str = ""
) -> httpx.Response:
    """Open the login form and send it, as a browser does; returns the answer to the POST."""
    form = await http.get("/admin/login")
    fields = {"email": email, "password": password, "csrf": csrf_field(form.text)}
    if next:
        fields["next"] = next
    return await http.post("/admin/login", data=fields)
