"""One place that turns Koppla's errors into HTTP answers, so routes need no `try` for them.

`NotFound` → 404, `Conflict` → 409, `InvalidInput` → 400 with the field it names. Each answer is
`{"detail": "..."}` (plus `"field"` when known), as FastAPI's own errors are.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from koppla.core.errors import Conflict, InvalidInput, NotFound


async def not_found(_: Request, error: Exception) -> JSONResponse:
    """404 naming what was not found."""
    return JSONResponse({"detail": str(error)}, status_code=404)


async def conflict(_: Request, error: Exception) -> JSONResponse:
    """409 naming what clashes."""
    return JSONResponse({"detail": str(error)}, status_code=409)


async def invalid_input(_: Request, error: Exception) -> JSONResponse:
    """400 naming the field and the rule."""
    body: dict[str, str] = {"detail": str(error)}
    field = getattr(error, "field", None)
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=400)


def install(api: FastAPI) -> None:
    """Register the handlers on `api`."""
    api.add_exception_handler(NotFound, not_found)
    api.add_exception_handler(Conflict, conflict)
    api.add_exception_handler(InvalidInput, invalid_input)
