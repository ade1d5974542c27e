"""The admin pages in headless Chromium: a real `koppla up` with a person who may sign in.

Shared by every browser test of the admin pages:

    with admin_server(tmp_path) as server, admin_browser() as context:
        page = signed_in_page(context, server)
        page.goto(server.url + "/admin/datasets")
        save_screenshot(page, "datasets")

`admin_server` starts `koppla up --demo --no-demo-shop` (plain HTTP on a free port) in a fresh
home under `tmp_path`, with one admin user (`server.email` / `server.password`) of the home's
organization (the demo's), and an API token (`server.token`) for setting things up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, sync_playwright

from koppla.core.layout import Layout
from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.users import UserStore
from tests.server import Koppla, free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ADMIN_EMAIL = "admin@shop.example"
ADMIN_PASSWORD = "correct horse battery staple"
PHONE_VIEWPORT = {"width": 390, "height": 844}


def missing_requirement() -> str | None:
    """Why the admin browser tests cannot run here, or None when they can."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is absent: run `apt-get install -y chromium`"
    return None


@dataclass(frozen=True)
class AdminServer:
    """A running Koppla, and who may use it."""

    url: str
    """Where it listens, e.g. `http://127.0.0.1:40123` (no trailing slash)."""
    home: Path
    email: str
    password: str
    token: str
    """An API token of the demo organization, for setting things up through the APIs."""

    def api(self) -> httpx.Client:
        """An HTTP client for the server's APIs, with the API token (close it after use)."""
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {self.token}"}, timeout=30
        )


@contextmanager
def admin_server(tmp_path: Path, *extra: str) -> Iterator[AdminServer]:
    """`koppla up --demo --no-demo-shop [extra...]` in `tmp_path / "home"`, with an admin user
    made before it starts; stopped when the block ends."""
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(Layout(home).catalog)
    users = UserStore(Layout(home).catalog)
    try:
        users.create_user(ADMIN_EMAIL, ADMIN_PASSWORD, org_id=catalog.default_org())
    finally:
        users.close()
        catalog.close()
    koppla = Koppla(home, free_port(), *extra)
    koppla.start()
    try:
        yield AdminServer(koppla.url, home, ADMIN_EMAIL, ADMIN_PASSWORD, koppla.token())
    finally:
        koppla.stop()


@contextmanager
def admin_browser(**context_options: Any) -> Iterator[BrowserContext]:
    """A fresh browser context of headless Chromium (`context_options` go to
    `new_context`, e.g. `viewport=PHONE_VIEWPORT`); closed when the block ends."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        try:
            context = browser.new_context(**context_options)
            context.set_default_timeout(30_000)
            yield context
        finally:
            browser.close()


def sign_in(page: Page, server: AdminServer, password: str | None = None) -> None:
    """Fill and send the login form (already open in `page`) as the server's admin user."""
    page.get_by_label("Email").fill(server.email)
    page.get_by_label("Password").fill(server.password if password is None else password)
    page.get_by_role("button", name="Sign in").click()


def signed_in_page(browser_context: BrowserContext, server: AdminServer) -> Page:
    """A new page of `browser_context`, signed in as the admin user, showing the overview."""
    page = browser_context.new_page()
    page.goto(f"{server.url}/admin/login")
    sign_in(page, server)
    page.wait_for_url(f"{server.url}/admin/")
    return page


def artifacts_dir() -> Path:
    """Where browser tests save screenshots: `$KOPPLA_ARTIFACTS`, else `<repo>/test-artifacts`."""
    found = Path(os.environ.get("KOPPLA_ARTIFACTS") or REPO / "test-artifacts")
    found.mkdir(parents=True, exist_ok=True)
    return found


def save_screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot of `page` as `<artifacts>/<name>.png` and return its path."""
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
