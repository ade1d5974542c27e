"""Auth before the body: a credentialed request without valid credentials is refused unread.

The gate answers 401 (the same body and challenge as the `caller` dependency) before a byte of
the body is read, so an anonymous upload costs nothing; and 403 when the credentials are good
but the request's `x-gw-ims-org-id` or `x-api-key` are not theirs, or a signed-in person's
change lacks its CSRF header. Public are the edge (`/ee/`), the health check, the demo shop
(`/demo/`), the admin pages (`/admin/`: they check the signed-in session themselves), the token
endpoint (`/ims/`), the API documentation, and CORS preflights (OPTIONS). Every other path needs
credentials, including unknown ones (they answer 404 only to a credential holder).
"""

from __future__ import annotations

import anyio.to_thread

from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.users import UserStore
from koppla.platform.edge.app import Receive, Scope, Send
from koppla.web.answer import ASGIApp, send_json
from koppla.web.auth import CHALLENGE, PRINCIPAL, Refusal, request_principal

PUBLIC_PREFIXES = ("/ee/", "/demo/", "/admin/", "/ims/")
PUBLIC_PATHS = frozenset(
    {"/api/v1/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/admin"}
)
HEADERS = frozenset(
    {b"authorization", b"cookie", b"x-csrf-token", b"x-gw-ims-org-id", b"x-api-key"}
    | {b"x-sandbox-name"}
)


def is_public(method: str, path: str) -> bool:
    """True when a request to `path` needs no credentials."""
    return method == "OPTIONS" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class TokenGate:
    """ASGI layer: checks the credentials of credentialed requests before anything else."""

    def __init__(self, app: ASGIApp, catalog: Catalog, users: UserStore) -> None:
        self._app = app
        self._catalog = catalog
        self._users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 401/403 without reading its body."""
        if scope["type"] == "http" and not is_public(scope["method"], scope["path"]):
            headers = _headers(scope)
            # The catalog's lock may be held by a worker thread: check off the event loop.
            checked = await anyio.to_thread.run_sync(
                request_principal, self._catalog, self._users, scope["method"], headers
            )
            if isinstance(checked, Refusal):
                extra = CHALLENGE.items() if checked.status == 401 else ()
                await send_json(send, scope, checked.status, {"detail": checked.detail}, extra)
                return
            scope.setdefault("state", {})[PRINCIPAL] = checked
        await self._app(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    """The request's auth-related headers by lower-case name (the first of each)."""
    found: dict[str, str] = {}
    for key, value in scope.get("headers", ()):
        name = bytes(key).lower()
        if name in HEADERS and name.decode() not in found:
            found[name.decode()] = bytes(value).decode("latin-1")
    return found
