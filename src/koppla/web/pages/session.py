"""Signing in to the admin pages: the login form, logout, the session cookie and CSRF checks.

- `GET/POST /admin/login`, `POST /admin/logout`.
- `SignedIn`: the route dependency of every page; without a session it redirects (303) to
  `/admin/login?next=<the page>` (an htmx request gets 401 with `HX-Redirect` instead).
- `CsrfChecked`: `SignedIn` plus the CSRF check, for every POST form and htmx request: the
  form field `csrf` or the header `X-CSRF-Token` must carry the session's CSRF token.
- The cookie `koppla_session` is HttpOnly, SameSite=Lax, Path=/, and Secure when the request
  came over https. The login form has its own double-submit token (the cookie `koppla_login`
  and the form field `csrf`), so no other site can sign someone in to an account of its choice.
- Sign-ins hash passwords (argon2id: 64 MiB and about a tenth of a second of CPU each) on their
  own `SIGN_IN_THREADS` threads, never on the thread pool the other routes and the token gate
  share; while `SIGN_IN_QUEUE` attempts already wait for those threads, another is answered 429
  with `Retry-After` before any hashing, so a flood of sign-ins costs little and delays nothing
  else.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.users import SESSION_TTL_S, Session, SignInRefused, UserStore
from koppla.web.auth import SESSION_COOKIE
from koppla.web.pages.render import SESSION_STATE, page
from koppla.web.services import Services

router = APIRouter(include_in_schema=False)

COOKIE = SESSION_COOKIE
LOGIN_COOKIE = "koppla_login"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
LOGIN_PATH = "/admin/login"
HOME_PATH = "/admin/"
FAILURE_DELAY_S = 0.5
"""How long a failed sign-in waits before it answers (the same for every kind of failure)."""
LOGIN_FORM_TTL_S = 3600
SIGN_IN_THREADS = 2
"""How many sign-ins hash a password at once (each takes argon2id's 64 MiB)."""
SIGN_IN_QUEUE = 8
"""How many sign-ins may wait for a hashing thread; past that, 429 before any work."""
BUSY_RETRY_AFTER_S = 5
BUSY = "too many sign-ins at once: try again in a few seconds"

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInLine:
    """The sign-ins of one app: at most `threads` hash at once, at most `queue` wait."""

    def __init__(self, threads: int = SIGN_IN_THREADS, queue: int = SIGN_IN_QUEUE) -> None:
        self.limiter = anyio.CapacityLimiter(threads)
        self.queue = queue

    def full(self) -> bool:
        """True when `queue` attempts already wait for a hashing thread."""
        return self.limiter.statistics().tasks_waiting >= self.queue


def sign_in_line(request: Request) -> SignInLine:
    """The app's `SignInLine` (made on the first sign-in, on the event loop)."""
    line = getattr(request.app.state, "sign_in_line", None)
    if not isinstance(line, SignInLine):
        line = SignInLine()
        request.app.state.sign_in_line = line
    return line


def user_store(request: Request) -> UserStore:
    """The app's store of people and sessions."""
    svc: Services = request.app.state.services
    return svc.users


def signed_in(request: Request) -> Session | None:
    """The valid session whose token the request's cookie carries, else None."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return user_store(request).session(token)


def require_session(request: Request) -> Session:
    """The request's session; without one, a redirect to the login page (a 303 for a page,
    a 401 with `HX-Redirect` for an htmx request). The session is left in `request.state`
    for the page's template (`user`, `csrf`, navigation)."""
    found = signed_in(request)
    if found is None:
        target = f"{LOGIN_PATH}?next={quote(_here(request), safe='')}"
        if request.headers.get("hx-request") == "true":
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, headers={"HX-Redirect": target})
        raise HTTPException(status.HTTP_303_SEE_OTHER, headers={"Location": target})
    setattr(request.state, SESSION_STATE, found)
    return found


SignedIn = Annotated[Session, Depends(require_session)]


def principal(session: Session) -> Principal:
    """The signed-in person as the APIs see them (what the gate makes of the session cookie)."""
    return Principal(name=session.user, org_id=session.org_id, kind="session")


def check_csrf(request: Request, form_value: str | None) -> Session:
    """The request's session when `form_value` or the `X-CSRF-Token` header carries its CSRF
    token; 403 otherwise (and the login redirect without a session)."""
    session = require_session(request)
    sent = request.headers.get(CSRF_HEADER) or form_value or ""
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="the form's CSRF token is missing or wrong: reload the page and try again",
        )
    return session


async def csrf_checked(request: Request) -> Session:
    """Dependency for POST pages: the session, after checking the request's CSRF token (the
    header, else the form field `csrf`). Safe methods need no token."""
    if request.method in _SAFE_METHODS:
        return require_session(request)
    value = None
    if CSRF_HEADER not in request.headers:
        field = (await request.form()).get(CSRF_FIELD)
        value = field if isinstance(field, str) else None
    return check_csrf(request, value)


CsrfChecked = Annotated[Session, Depends(csrf_checked)]


@router.get(LOGIN_PATH, response_class=HTMLResponse)
def login_form(request: Request, next: str = HOME_PATH) -> Response:
    """The sign-in form (or, for someone signed in, where they were going)."""
    if signed_in(request) is not None:
        return RedirectResponse(safe_next(next), status.HTTP_303_SEE_OTHER)
    return _login_page(request, next)


@router.post(LOGIN_PATH, response_class=HTMLResponse)
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = HOME_PATH,
) -> Response:
    """Sign in: a session cookie and a redirect to `next`, or the form again with the reason."""
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        message = "the sign-in form expired: please sign in again"
        return _login_page(request, next, email, message, status.HTTP_403_FORBIDDEN)
    line = sign_in_line(request)
    if line.full():
        busy = _login_page(request, next, email, BUSY, status.HTTP_429_TOO_MANY_REQUESTS)
        busy.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
        return busy
    store = user_store(request)
    try:
        session = await anyio.to_thread.run_sync(
            store.sign_in, email, password, limiter=line.limiter
        )
    except SignInRefused as refused:
        await anyio.sleep(FAILURE_DELAY_S)
        if refused.retry_after_s:
            locked = _login_page(
                request, next, email, refused.reason, status.HTTP_429_TOO_MANY_REQUESTS
            )
            locked.headers["Retry-After"] = str(refused.retry_after_s)
            return locked
        return _login_page(request, next, email, refused.reason, status.HTTP_401_UNAUTHORIZED)
    answer = RedirectResponse(safe_next(next), status.HTTP_303_SEE_OTHER)
    answer.set_cookie(
        COOKIE,
        session.token,
        max_age=SESSION_TTL_S,
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )
    answer.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return answer


@router.post("/admin/logout")
async def logout(request: Request) -> Response:
    """Sign out: the session ends (its cookie stops working anywhere) and the cookie goes."""
    token = request.cookies.get(COOKIE)
    if token and signed_in(request) is not None:
        field = (await request.form()).get(CSRF_FIELD)
        check_csrf(request, field if isinstance(field, str) else None)
        await anyio.to_thread.run_sync(user_store(request).sign_out, token)
    answer = RedirectResponse(LOGIN_PATH, status.HTTP_303_SEE_OTHER)
    answer.delete_cookie(COOKIE, path="/", secure=_secure(request), httponly=True, samesite="lax")
    return answer


def safe_next(target: str) -> str:
    """`target` when it is a path of the admin pages on this site, else the overview (so the
    login form cannot send anyone elsewhere)."""
    if (
        target.startswith("/admin")
        and not target.startswith(("//", "/\\"))
        and "\\" not in target
        and not any(ord(c) < 0x20 for c in target)
    ):
        return target
    return HOME_PATH


def _login_page(
    request: Request,
    next: str,
    email: str = "",
    error: str | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    """The login form with a fresh double-submit token (also set as the `koppla_login` cookie)."""
    token = secrets.token_urlsafe(32)
    answer = page(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=token,
        next=safe_next(next),
        email=email,
        error=error,
    )
    answer.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_FORM_TTL_S,
        path=LOGIN_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )
    return answer


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")
