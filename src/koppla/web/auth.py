"""Credentials for every API but the public edge: `Authorization: Bearer <token>`.

`token_holder` is the one door: the ASGI gate checks the token before any body is read and
leaves the holder's name in the request scope (`TOKEN_HOLDER`), where the `caller` dependency
finds it; only an app served without the gate (an API built alone) has `caller` check it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from koppla.platform.catalog.store import Catalog
from koppla.web.services import Services

UNAUTHORIZED_DETAIL = (
    "a valid API token is required: Authorization: Bearer <token> "
    "(create one with `koppla token create`)"
)
CHALLENGE = {"WWW-Authenticate": "Bearer"}
TOKEN_HOLDER = "token_holder"
"""The key under which the gate leaves the checked holder's name in `scope["state"]`."""


def token_holder(catalog: Catalog, authorization: str) -> str | None:
    """The name of the holder of the bearer token in an `Authorization` header, else None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return catalog.token_name(token.strip())


def services(request: Request) -> Services:
    """The app's services."""
    found: Services = request.app.state.services
    return found


def caller(request: Request, svc: Annotated[Services, Depends(services)]) -> str:
    """The name of the token holder making the request; 401 without a valid token."""
    name: str | None = request.scope.get("state", {}).get(TOKEN_HOLDER)
    if name is None:
        name = token_holder(svc.catalog, request.headers.get("authorization", ""))
    if name is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=UNAUTHORIZED_DETAIL, headers=CHALLENGE
        )
    return name


Caller = Annotated[str, Depends(caller)]
Svc = Annotated[Services, Depends(services)]
