"""The token endpoint, shaped like Adobe's IMS so Adobe's clients can be pointed at Koppla.

`POST /ims/token/v3` is the OAuth server-to-server (client credentials) flow: form-encoded
`grant_type=client_credentials`, `client_id`, `client_secret`, `scope`, answered with
`{"access_token", "token_type": "bearer", "expires_in": 86399}` (seconds). `POST /ims/token/v2`
is the same (Adobe's `@adobe/aio-lib-ims` posts there). Errors are OAuth's:
`{"error": "invalid_client" | "invalid_scope" | "unsupported_grant_type" | "invalid_request",
"error_description"}`. How the parameters are read (body or query string, each once, secrets
in the body only) is `token_form`'s; nothing sent is ever echoed back.

`POST /ims/exchange/jwt` is the deprecated service-account (JWT) flow: `client_id`,
`client_secret` and `jwt_token`, a JWT signed (RS256) with the private key whose public key was
registered with the credential (`koppla credentials create --jwt --public-key`). It answers with
`expires_in` in milliseconds, as Adobe's did, and says it is deprecated (`Deprecation` header,
`warning` in the body).
"""

from __future__ import annotations

from typing import Any

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from koppla.platform.catalog.access import ACCESS_TOKEN_TTL_S, Credential, TokenRefused
from koppla.web.auth import Svc
from koppla.web.services import Services
from koppla.web.token_form import form_openapi, token_parameters

router = APIRouter(prefix="/ims", tags=["ims"])

DEPRECATION = (
    "JWT service account credentials are deprecated: create an OAuth server-to-server "
    "credential (koppla credentials create) and use POST /ims/token/v3"
)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
TOKEN_FIELDS = {
    "grant_type": "`client_credentials`.",
    "client_id": "The credential's client id.",
    "client_secret": "The credential's client secret.",
    "scope": "Comma-separated scopes, each one the credential has (default: all of them).",
}
JWT_FIELDS = {
    "client_id": "The credential's client id.",
    "client_secret": "The credential's client secret.",
    "jwt_token": "A JWT signed (RS256) with the credential's private key.",
}
_INVALID_REQUEST = "`invalid_request` (a field missing, repeated, a file, or a secret in the URL)"


def _refusal(error: TokenRefused, extra: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": error.error, "error_description": str(error)}
    return JSONResponse(body, status_code=error.status, headers={**NO_STORE, **(extra or {})})


_TOKEN_ROUTE: dict[str, Any] = {
    "responses": {
        400: {"description": f"{_INVALID_REQUEST}, `unsupported_grant_type` or `invalid_scope`."},
        401: {"description": "`invalid_client`: unknown client id or wrong secret."},
    },
    "openapi_extra": form_openapi(TOKEN_FIELDS),
}


@router.post("/token/v3", **_TOKEN_ROUTE)
@router.post("/token/v2", **_TOKEN_ROUTE)
async def token(request: Request, svc: Svc) -> JSONResponse:
    """Trade a service credential's client id and secret for an access token."""
    try:
        sent = await token_parameters(request, list(TOKEN_FIELDS))
    except TokenRefused as error:
        return _refusal(error)
    grant_type, client_id = sent["grant_type"], sent["client_id"]
    if grant_type != "client_credentials":
        return _refusal(
            TokenRefused(
                "unsupported_grant_type",
                f"grant_type {grant_type!r} is not supported: use client_credentials",
            )
        )
    if not client_id or not sent["client_secret"]:
        return _refusal(TokenRefused("invalid_request", "client_id and client_secret are required"))
    try:
        access, expires_in, _ = await run_in_threadpool(
            svc.catalog.access.exchange, client_id, sent["client_secret"], sent["scope"]
        )
    except TokenRefused as error:
        return _refusal(error)
    body = {"access_token": access, "token_type": "bearer", "expires_in": expires_in}
    return JSONResponse(body, headers=NO_STORE)


@router.post(
    "/exchange/jwt",
    responses={
        400: {"description": f"A refused JWT (`invalid_token`) or {_INVALID_REQUEST}."},
        401: {"description": "`invalid_client`: unknown client id or wrong secret."},
    },
    openapi_extra=form_openapi(JWT_FIELDS),
)
async def exchange_jwt(request: Request, svc: Svc) -> JSONResponse:
    """Deprecated: trade a signed JWT (plus client id and secret) for an access token."""
    deprecated = {"Deprecation": "true", "Warning": f'299 - "{DEPRECATION}"'}
    try:
        sent = await token_parameters(request, list(JWT_FIELDS))
        access = await run_in_threadpool(
            _exchange_jwt, svc, sent["client_id"], sent["client_secret"], sent["jwt_token"]
        )
    except TokenRefused as error:
        return _refusal(error, deprecated)
    body: dict[str, Any] = {
        "token_type": "bearer",
        "access_token": access,
        "expires_in": ACCESS_TOKEN_TTL_S * 1000,
        "warning": DEPRECATION,
    }
    return JSONResponse(body, headers={**NO_STORE, **deprecated})


def _exchange_jwt(svc: Services, client_id: str, client_secret: str, assertion: str) -> str:
    if not client_id or not client_secret or not assertion:
        raise TokenRefused("invalid_request", "client_id, client_secret and jwt_token are required")
    credential = svc.catalog.access.check_client(client_id, client_secret)
    if credential.auth_type != "jwt" or not credential.public_key_pem:
        raise TokenRefused(
            "invalid_client", "this credential is not a JWT service account: use /ims/token/v3"
        )
    _verify(credential, assertion)
    return svc.catalog.access.add_token(
        credential.name,
        org_id=credential.org_id,
        expires_s=ACCESS_TOKEN_TTL_S,
        client_id=credential.client_id,
        scopes=credential.scopes,
        kind="access",
    )


def _verify(credential: Credential, assertion: str) -> None:
    """Check the JWT's signature and claims: `iss` the org, `sub` the technical account, `aud`
    ending in `/c/<client id>`, an `exp` in the future."""
    assert credential.public_key_pem is not None
    try:
        claims = jwt.decode(
            assertion,
            credential.public_key_pem,
            algorithms=["RS256"],
            options={"require": ["exp", "iss", "sub", "aud"], "verify_aud": False},
        )
    except jwt.PyJWTError as error:
        raise TokenRefused("invalid_token", f"the JWT was refused: {error}") from None
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(a, str) and a.endswith(f"/c/{credential.client_id}") for a in audiences):
        raise TokenRefused("invalid_token", "the JWT's aud must end with /c/<client id>")
    if claims.get("iss") != credential.org_id:
        raise TokenRefused("invalid_token", "the JWT's iss must be the credential's organization")
    if claims.get("sub") != credential.technical_account_id:
        raise TokenRefused(
            "invalid_token", "the JWT's sub must be the credential's technical account"
        )
