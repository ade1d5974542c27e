"""Credentials for every API but the public edge: `Authorization: Bearer <token>`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from koppla.web.services import Services


def services(request: Request) -> Services:
    """The app's services."""
    found: Services = request.app.state.services
    return found


def caller(request: Request, svc: Annotated[Services, Depends(services)]) -> str:
    """The name of the token holder making the request; 401 without a valid token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    name = svc.catalog.token_name(token.strip()) if scheme.lower() == "bearer" else None
    if name is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a valid API token is required: Authorization: Bearer <token> "
            "(create one with `koppla token create`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return name


Caller = Annotated[str, Depends(caller)]
Svc = Annotated[Services, Depends(services)]
