"""Signing in to the admin pages: the cookie, CSRF on every form, lockout, logout."""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Annotated, Literal

import anyio
import anyio.to_thread
import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI, Form, Request

from koppla.core import codec
from koppla.core.settings import Settings
from koppla.platform.catalog import users
from koppla.platform.catalog.models import Datastream
from koppla.web.app import KopplaApp, create_app
from koppla.web.pages import session
from koppla.web.pages.session import CsrfChecked, check_csrf, safe_next
from koppla.web.services import Services
from tests.web.pages.signin import (
    EMAIL,
    PASSWORD,
    add_user,
    admin_app,
    csrf_field,
    sign_in,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_failure_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "FAILURE_DELAY_S", 0)


@pytest.fixture
async def http(settings: Settings, demo: Datastream) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_app(settings) as client:
        yield client


def _set_cookie(response: httpx.Response, name: str) -> SimpleCookie:
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie(header)
        if name in parsed:
            return parsed
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers}")


async def test_a_page_without_a_session_sends_to_the_login_form(http: httpx.AsyncClient) -> None:
    answer = await http.get("/admin/?range=1h")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/login?next=%2Fadmin%2F%3Frange%3D1h"
    form = await http.get(answer.headers["location"])
    assert form.status_code == 200
    assert 'name="next" value="/admin/?range=1h"' in form.text
    assert '<label for="email">Email</label>' in form.text
    assert '<label for="password">Password</label>' in form.text


async def test_an_htmx_request_without_a_session_is_told_where_to_sign_in(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.get("/admin/", headers={"HX-Request": "true"})

    assert answer.status_code == 401
    assert answer.headers["hx-redirect"] == "/admin/login?next=%2Fadmin%2F"


async def test_signing_in_sets_a_strict_cookie_and_opens_the_pages(
    http: httpx.AsyncClient,
) -> None:
    answer = await sign_in(http, email="  ANN@shop.example ", next="/admin/datasets")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/datasets"
    cookie = _set_cookie(answer, "koppla_session")["koppla_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "lax"
    assert cookie["path"] == "/"
    assert not cookie["secure"]  # plain http: a Secure cookie would never come back
    assert int(cookie["max-age"]) == 12 * 3600

    overview = await http.get("/admin/")
    assert overview.status_code == 200
    assert EMAIL in overview.text
    for label in ("Overview", "Data Connection", "Datasets", "Query", "Debugger", "Profiles"):
        assert f">{label}</a>" in overview.text
    assert "Sign out" in overview.text
    token = csrf_field(overview.text)
    headers = re.search(r"<body hx-headers='([^']+)'>", overview.text)
    assert headers is not None and codec.loads(headers.group(1)) == {"X-CSRF-Token": token}
    # Signed in already: the login form sends on.
    again = await http.get("/admin/login?next=/admin/query")
    assert (again.status_code, again.headers["location"]) == (303, "/admin/query")


async def test_the_cookie_is_secure_over_https(settings: Settings, demo: Datastream) -> None:
    async with admin_app(settings, base_url="https://admin.test") as http:
        answer = await sign_in(http)

        assert answer.status_code == 303
        assert _set_cookie(answer, "koppla_session")["koppla_session"]["secure"] is True
        assert _set_cookie(answer, "koppla_session")["koppla_session"]["httponly"] is True
        assert (await http.get("/admin/")).status_code == 200


async def test_a_wrong_password_and_an_unknown_email_get_the_same_page(
    http: httpx.AsyncClient,
) -> None:
    wrong = await sign_in(http, password="not the password")
    unknown = await sign_in(http, email="nobody@shop.example")

    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert "wrong email or password" in answer.text
        assert "koppla_session" not in answer.headers.get("set-cookie", "")
    assert (await http.get("/admin/")).status_code == 303
    assert _without_tokens(wrong.text).replace(EMAIL, "X") == _without_tokens(unknown.text).replace(
        "nobody@shop.example", "X"
    )


def _without_tokens(html: str) -> str:
    return html.replace(csrf_field(html), "")


async def test_five_failures_lock_the_email_out(http: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await sign_in(http, password="a wrong guess")).status_code == 401

    locked = await sign_in(http)  # the right password, too soon

    assert locked.status_code == 429
    assert 290 <= int(locked.headers["retry-after"]) <= 300
    assert f"too many attempts, try again in {locked.headers['retry-after']} s" in locked.text
    assert "koppla_session" not in locked.headers.get("set-cookie", "")
    assert (await http.get("/admin/")).status_code == 303


async def test_the_login_form_needs_its_own_csrf_token(http: httpx.AsyncClient) -> None:
    await http.get("/admin/login")  # the login cookie is set …
    forged = {"email": EMAIL, "password": PASSWORD, "csrf": "chosen-by-another-site"}

    answer = await http.post("/admin/login", data=forged)  # … but the form does not match it

    assert answer.status_code == 403
    assert "sign-in form expired" in answer.text
    http.cookies.clear()
    no_cookie = await http.post("/admin/login", data=forged)
    assert no_cookie.status_code == 403
    assert (await http.get("/admin/")).status_code == 303


async def test_signing_out_ends_the_session_everywhere(http: httpx.AsyncClient) -> None:
    await sign_in(http)
    overview = await http.get("/admin/")
    stolen = http.cookies["koppla_session"]

    refused = await http.post("/admin/logout", data={"csrf": "wrong"})
    assert refused.status_code == 403
    assert (await http.get("/admin/")).status_code == 200

    answer = await http.post("/admin/logout", data={"csrf": csrf_field(overview.text)})

    assert (answer.status_code, answer.headers["location"]) == (303, "/admin/login")
    assert 'koppla_session=""' in answer.headers["set-cookie"]
    assert (await http.get("/admin/")).status_code == 303
    http.cookies.set("koppla_session", stolen, domain="admin.test")
    assert (await http.get("/admin/")).status_code == 303  # the old cookie is dead


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/admin/datasets/abc?x=1", "/admin/datasets/abc?x=1"),
        ("https://evil.example/admin", "/admin/"),
        ("//evil.example/admin", "/admin/"),
        ("/\\evil.example", "/admin/"),
        ("/admin\\..\\x", "/admin/"),
        ("/api/v1/status", "/admin/"),
        ("/admin/\r\nSet-Cookie: x=1", "/admin/"),
    ],
)
def test_the_login_form_only_sends_on_to_admin_pages(target: str, safe: str) -> None:
    assert safe_next(target) == safe


async def test_a_post_form_needs_the_sessions_csrf_token(
    settings: Settings, services: Services
) -> None:
    """`CsrfChecked` guards every POST page: the form field or the htmx header must match."""
    api = FastAPI()
    api.state.services = services

    @api.post("/admin/thing")
    def change(who: CsrfChecked, value: Annotated[str, Form()] = "") -> dict[str, str]:
        return {"user": who.user, "value": value}

    @api.post("/admin/other")
    def other(request: Request, csrf: Annotated[str, Form()] = "") -> dict[str, str]:
        return {"user": check_csrf(request, csrf).user}

    services.users.create_user("bob@shop.example", PASSWORD, org_id=services.catalog.default_org())
    signed = services.users.sign_in("bob@shop.example", PASSWORD)
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin.test") as http:
        http.cookies.set("koppla_session", signed.token, domain="admin.test")
        form_ok = await http.post("/admin/thing", data={"csrf": signed.csrf, "value": "v"})
        header_ok = await http.post("/admin/thing", headers={"X-CSRF-Token": signed.csrf})
        missing = await http.post("/admin/thing", data={"value": "v"})
        flipped = "1" if signed.csrf.endswith("0") else "0"  # differs in its last character
        wrong = await http.post("/admin/thing", data={"csrf": signed.csrf[:-1] + flipped})
        wrong_header = await http.post("/admin/thing", headers={"X-CSRF-Token": "x"})
        other_ok = await http.post("/admin/other", data={"csrf": signed.csrf})
        other_wrong = await http.post("/admin/other", data={"csrf": "x"})
        http.cookies.clear()
        anonymous = await http.post("/admin/thing", data={"csrf": signed.csrf})

    assert (form_ok.status_code, form_ok.json()) == (
        200,
        {"user": "bob@shop.example", "value": "v"},
    )
    assert header_ok.status_code == 200
    assert [r.status_code for r in (missing, wrong, wrong_header, other_wrong)] == [403] * 4
    assert "CSRF" in missing.json()["detail"]
    assert other_ok.json() == {"user": "bob@shop.example"}
    assert anonymous.status_code == 303
    services.close()


class _HeldHasher(PasswordHasher):
    """A cheap hasher whose `verify` waits until the test lets it go (a stand-in for the
    64 MiB, tenth-of-a-second argon2id of production)."""

    release = threading.Event()

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=64, parallelism=1)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.release.wait()
        return super().verify(hash, password)


async def test_a_sign_in_flood_waits_its_turn_and_leaves_everything_else_alone(
    settings: Settings, demo: Datastream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sign-ins hash on their own two threads with a short queue: past it, 429 before any
    hashing; and health answers while every shared worker thread is taken."""
    monkeypatch.setattr(users, "PasswordHasher", _HeldHasher)
    _HeldHasher.release = threading.Event()
    add_user(settings)
    app = create_app(settings)
    shared = anyio.to_thread.current_default_thread_limiter()
    holders = [object() for _ in range(int(shared.total_tokens))]
    answers: list[httpx.Response] = []
    with anyio.fail_after(60):  # a guard against hanging, not a measurement
        async with (
            app.api.router.lifespan_context(app.api),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://admin.test"
            ) as http,
        ):
            form = await http.get("/admin/login")
            csrf = csrf_field(form.text)

            async def attempt(email: str, password: str = "a wrong guess") -> httpx.Response:
                fields = {"email": email, "password": password, "csrf": csrf}
                return await http.post("/admin/login", data=fields)

            async def queued(number: int) -> None:
                answers.append(await attempt(f"stranger{number}@elsewhere.example"))

            for holder in holders:  # every thread of the shared pool is busy elsewhere
                await shared.acquire_on_behalf_of(holder)
            try:
                async with anyio.create_task_group() as flood:
                    for number in range(session.SIGN_IN_THREADS + session.SIGN_IN_QUEUE):
                        flood.start_soon(queued, number)
                    while not _line_full(app):
                        await anyio.sleep(0.01)

                    turned_away = await attempt("one-more@elsewhere.example")
                    health = await http.get("/api/v1/health")
                    _HeldHasher.release.set()
            finally:
                for holder in holders:
                    shared.release_on_behalf_of(holder)

            assert turned_away.status_code == 429
            assert turned_away.headers["retry-after"] == "5"
            assert "too many sign-ins at once" in turned_away.text
            assert (health.status_code, health.json()["status"]) == (200, "ok")
            # Every queued attempt was heard in the end (wrong passwords), and the person can
            # still sign in.
            assert [a.status_code for a in answers] == [401] * len(answers)
            assert len(answers) == session.SIGN_IN_THREADS + session.SIGN_IN_QUEUE
            assert (await sign_in(http)).status_code == 303


def _line_full(app: KopplaApp) -> bool:
    line = getattr(app.api.state, "sign_in_line", None)
    return isinstance(line, session.SignInLine) and line.full()
