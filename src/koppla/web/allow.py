"""Every documented path answers an undocumented method with 405 and a truthful `Allow`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request


def add_method_fallbacks(api: FastAPI) -> None:
    """After the routes: for each path, a route taking every other method, answering 405.

    Starlette answers 405 from the first route whose path matches, with only that route's
    methods in `Allow`; a path served by two routes (GET and POST) then advertises one.
    """
    served: dict[str, set[str]] = {}
    for context in iter_route_contexts(api.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            served.setdefault(str(context.path), set()).update(context.methods or ())
    for path, methods in served.items():
        others = sorted(_ALL_METHODS - methods)
        api.add_route(path, _method_not_allowed(methods), methods=others, include_in_schema=False)


_ALL_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


def _method_not_allowed(methods: set[str]) -> Callable[[Request], Awaitable[Response]]:
    allow = ", ".join(sorted(methods))

    async def answer(_: Request) -> Response:
        return Response(status_code=405, headers={"Allow": allow})

    return answer
