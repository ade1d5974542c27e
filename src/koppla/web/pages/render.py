"""Rendering the admin pages: one Jinja2 environment over `templates/`, and the static files."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"


@cache
def templates() -> Jinja2Templates:
    """The page templates (autoescaped), built on first use."""
    return Jinja2Templates(directory=str(HERE / "templates"))


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render template `name` with `context` (and `request`) as an HTML response."""
    return templates().TemplateResponse(request, name, context, status_code=status_code)
