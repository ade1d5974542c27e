"""The parameters of an OAuth token request, read from its body and query string (RFC 6749).

- The body is form-encoded (`application/x-www-form-urlencoded`) or, as Adobe's
  `@adobe/aio-lib-ims` sends it, `multipart/form-data`.
- Parameters that are not secrets may come in the query string instead, as Adobe's IMS documents
  (`POST /ims/token/v3?client_id=...`). Secrets (`client_secret`, `jwt_token`) never: a URL
  ends up in logs and histories, so one sent there is refused.
- Each parameter at most once, in the body and the query string together (RFC 6749 §3.1); a
  repeated one is refused rather than one of its values picked.
- Text only: a file where text belongs is refused, and no refusal repeats what was sent.
- A parameter sent empty counts as not sent (§3.1).

Every refusal is a `TokenRefused("invalid_request", ...)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from koppla.platform.catalog.access import TokenRefused

SECRETS = frozenset({"client_secret", "jwt_token"})
"""Parameters that are refused in the query string."""


async def token_parameters(request: Request, names: Sequence[str]) -> dict[str, str]:
    """The request's value of each of `names` ("" when not sent); `TokenRefused` otherwise."""
    try:
        async with request.form() as form:
            return {name: _one(name, form, request) for name in names}
    except (HTTPException, MultiPartException, UnicodeDecodeError):
        raise TokenRefused(
            "invalid_request", "the body is not a readable form: send it form-encoded"
        ) from None


def _one(name: str, form: FormData, request: Request) -> str:
    given: list[Any] = [*form.getlist(name), *request.query_params.getlist(name)]
    if any(not isinstance(value, str) for value in given):
        raise TokenRefused("invalid_request", f"{name} must be text, not a file")
    sent = [value for value in given if value != ""]  # sent empty counts as not sent (§3.1)
    if len(sent) > 1:
        raise TokenRefused(
            "invalid_request", f"{name} was sent {len(sent)} times: send each parameter once"
        )
    if name in SECRETS and any(request.query_params.getlist(name)):
        raise TokenRefused(
            "invalid_request",
            f"{name} must be sent in the form-encoded body, never in the URL",
        )
    return str(sent[0]) if sent else ""


def form_openapi(fields: dict[str, str]) -> dict[str, Any]:
    """The OpenAPI of a route that reads `fields` (name → description) this way: the form
    body (the secrets required there), and the others also as optional query parameters."""
    properties = {name: {"type": "string", "description": text} for name, text in fields.items()}
    required = [name for name in fields if name in SECRETS]
    schema = {"type": "object", "properties": properties, "required": required}
    parameters = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": f"Instead of the body's `{name}` (never both).",
            "schema": {"type": "string"},
        }
        for name in fields
        if name not in SECRETS
    ]
    content = {
        media: {"schema": schema}
        for media in ("application/x-www-form-urlencoded", "multipart/form-data")
    }
    return {"requestBody": {"required": True, "content": content}, "parameters": parameters}
