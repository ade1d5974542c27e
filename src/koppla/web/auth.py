"""Credentials for every API but the public edge, and whose organization a request acts for.

`request_principal` is the one door: the ASGI gate calls it before any body is read and leaves
the `Principal` in the request scope (`PRINCIPAL`), where the `caller` dependency finds it; only
an app served without the gate (an API built alone) has `caller` check it. A request carries
`Authorization: Bearer <token>` (an API token or an IMS access token), or the session cookie of
a person signed in to the admin pages (then unsafe methods also need `X-CSRF-Token`). The
headers every Adobe API client sends are honoured: `x-gw-ims-org-id` must be the principal's
organization, `x-api-key` the client id of an IMS access token, and `x-sandbox-name` picks the
sandbox (`prod` by default).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from koppla.core.errors import InvalidInput
from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.models import check_sandbox
from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.users import UserStore
from koppla.web.services import Services

UNAUTHORIZED_DETAIL = (
    "a valid API token is required: Authorization: Bearer <token> "
    "(create one with `koppla token create`, or fetch one from POST /ims/token/v3)"
)
CHALLENGE = {"WWW-Authenticate": "Bearer"}
PRINCIPAL = "principal"
"""The key under which the gate leaves the checked `Principal` in `scope["state"]`."""
SESSION_COOKIE = "koppla_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request with credentials may not go on: a status and a sentence."""

    status: int
    detail: str


def token_principal(catalog: Catalog, authorization: str) -> Principal | None:
    """The holder of the bearer token in an `Authorization` header, else None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return catalog.principal(token.strip())


def cookie_value(cookie_header: str, name: str = SESSION_COOKIE) -> str | None:
    """The value of cookie `name` in a `Cookie` header, or None."""
    for part in cookie_header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def request_principal(
    catalog: Catalog,
    users: UserStore,
    method: str,
    headers: dict[str, str],
) -> Principal | Refusal:
    """Who makes a request with these (lower-case) headers, or why it is refused."""
    principal: Principal | Refusal | None = token_principal(
        catalog, headers.get("authorization", "")
    )
    if principal is None and "authorization" not in headers:
        principal = _session_principal(users, method, headers)
        if isinstance(principal, Refusal):
            return principal
    if isinstance(principal, Principal):
        return _with_headers(principal, headers)
    return Refusal(401, UNAUTHORIZED_DETAIL)


def _session_principal(
    users: UserStore, method: str, headers: dict[str, str]
) -> Principal | Refusal | None:
    token = cookie_value(headers.get("cookie", ""))
    session = None if token is None else users.session(token)
    if session is None:
        return None
    if method in UNSAFE_METHODS and not hmac.compare_digest(
        headers.get("x-csrf-token", "").encode(), session.csrf.encode()
    ):
        return Refusal(403, "a signed-in request that changes data needs the X-CSRF-Token header")
    return Principal(name=session.user, org_id=session.org_id, kind="session")


def _with_headers(principal: Principal, headers: dict[str, str]) -> Principal | Refusal:
    org = headers.get("x-gw-ims-org-id")
    if org is not None and org.strip() != principal.org_id:
        return Refusal(
            403,
            f"x-gw-ims-org-id {org.strip()!r} is not the organization of this token; "
            "a token acts for its own organization only",
        )
    api_key = headers.get("x-api-key")
    if (
        principal.kind == "access"
        and api_key is not None
        and api_key.strip() != principal.client_id
    ):
        return Refusal(403, "x-api-key is not the client id this access token was issued to")
    sandbox = headers.get("x-sandbox-name")
    if sandbox is not None and sandbox.strip():
        try:
            return replace(principal, sandbox=check_sandbox(sandbox.strip()))
        except InvalidInput as error:
            return Refusal(400, str(error))
    return principal


def services(request: Request) -> Services:
    """The app's services."""
    found: Services = request.app.state.services
    return found


def caller(request: Request, svc: Annotated[Services, Depends(services)]) -> Principal:
    """The principal making the request; 401 without valid credentials."""
    found = request.scope.get("state", {}).get(PRINCIPAL)
    if isinstance(found, Principal):
        return found
    headers = {k.lower(): v for k, v in request.headers.items()}
    checked = request_principal(svc.catalog, svc.users, request.method, headers)
    if isinstance(checked, Refusal):
        extra = CHALLENGE if checked.status == 401 else None
        raise HTTPException(checked.status, detail=checked.detail, headers=extra)
    return checked


def profile_owner(principal: Annotated[Principal, Depends(caller)], request: Request) -> Principal:
    """The caller, when the profile store is of its organization: the store holds the profiles
    of the home's organization (`prod` sandbox); any other gets 404 for every profile."""
    svc = services(request)
    if principal.org_id != svc.catalog.default_org() or principal.sandbox != "prod":
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail="no profiles in this organization and sandbox: the profile store holds "
            "the profiles of the home's organization",
        )
    return principal


Caller = Annotated[Principal, Depends(caller)]
Svc = Annotated[Services, Depends(services)]
