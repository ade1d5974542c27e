"""Rendering the admin pages: one Jinja2 environment over `templates/`, and the static files.

Every page is rendered with the base context: the signed-in person (`user`), the session's CSRF
token (`csrf`, for forms and htmx's `X-CSRF-Token` header), and the navigation (`nav`, with the
current section marked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from koppla.core import clock
from koppla.platform.catalog.users import Session

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
SESSION_STATE = "admin_session"
"""The attribute of `request.state` where the session dependency leaves the session."""


@dataclass(frozen=True, slots=True)
class NavItem:
    """One entry of the header's navigation: a label, where it goes, which paths it covers."""

    label: str
    href: str
    section: str

    def current(self, path: str) -> bool:
        """True when `path` is in this item's section."""
        if self.section == "/admin/":
            return path in ("/admin", "/admin/")
        return path.startswith(self.section)


NAV = (
    NavItem("Overview", "/admin/", "/admin/"),
    NavItem("Data Connection", "/admin/connection/service-account", "/admin/connection"),
    NavItem("Datasets", "/admin/datasets", "/admin/datasets"),
    NavItem("Query", "/admin/query", "/admin/query"),
    NavItem("Debugger", "/admin/debugger", "/admin/debugger"),
    NavItem("Profiles", "/admin/profiles", "/admin/profiles"),
)


@cache
def templates() -> Jinja2Templates:
    """The page templates (autoescaped), built on first use."""
    found = Jinja2Templates(directory=str(HERE / "templates"))
    found.env.filters["when"] = when
    return found


def when(moment: int | datetime | None) -> str:
    """A time (epoch milliseconds or a datetime) as people read it: UTC, to the second; ''
    for None."""
    if moment is None:
        return ""
    at = clock.from_ms(moment) if isinstance(moment, int) else moment.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def base_context(request: Request) -> dict[str, Any]:
    """What the base template needs: the person, the CSRF token, the navigation."""
    session: Session | None = getattr(request.state, SESSION_STATE, None)
    path = request.url.path
    return {
        "user": None if session is None else session.user,
        "org_id": None if session is None else session.org_id,
        "csrf": "" if session is None else session.csrf,
        "nav": [(item, item.current(path)) for item in NAV],
    }


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render template `name` with the base context, `context` and `request`, as HTML."""
    merged = base_context(request) | context
    return templates().TemplateResponse(request, name, merged, status_code=status_code)
