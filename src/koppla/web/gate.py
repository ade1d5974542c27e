"""Auth before the body: a credentialed request without a valid token is refused unread.

The gate answers 401 (the same body and challenge as the `caller` dependency) before a byte of
the body is read, so an anonymous upload costs nothing. Public are the edge (`/ee/`), the health
check, the demo shop (`/demo/`), the admin pages (`/admin/`: they check the
signed-in session themselves), the token endpoint (`/ims/`), the API documentation, and CORS preflights (OPTIONS). Every
other path needs a token, including unknown ones (they answer 404 only to a token holder).
"""

from __future__ import annotations

import anyio.to_thread

from koppla.platform.catalog.store import Catalog
from koppla.platform.edge.app import Receive, Scope, Send
from koppla.web.answer import ASGIApp, header, send_json
from koppla.web.auth import CHALLENGE, TOKEN_HOLDER, UNAUTHORIZED_DETAIL, token_holder

PUBLIC_PREFIXES = ("/ee/", "/demo/", "/admin/", "/ims/")
PUBLIC_PATHS = frozenset(
    {"/api/v1/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)


def is_public(method: str, path: str) -> bool:
    """True when a request to `path` needs no credentials."""
    return method == "OPTIONS" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class TokenGate:
    """ASGI layer: checks the bearer token of credentialed requests before anything else."""

    def __init__(self, app: ASGIApp, catalog: Catalog) -> None:
        self._app = app
        self._catalog = catalog

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 401 without reading its body."""
        if scope["type"] == "http" and not is_public(scope["method"], scope["path"]):
            authorization = header(scope, b"authorization") or ""
            # The catalog's lock may be held by a worker thread: check off the event loop.
            holder = await anyio.to_thread.run_sync(token_holder, self._catalog, authorization)
            if holder is None:
                detail = {"detail": UNAUTHORIZED_DETAIL}
                await send_json(send, scope, 401, detail, CHALLENGE.items())
                return
            scope.setdefault("state", {})[TOKEN_HOLDER] = holder
        await self._app(scope, receive, send)
