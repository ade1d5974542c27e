"""The OpenAPI document at `/openapi.json`: every path Koppla serves and every status it answers.

FastAPI sees only the credentialed API's routes and the statuses they declare. This module adds
what it cannot see: the bearer scheme, the statuses the routes and the ASGI layers in front of
them really answer (401, 413, 400/404/409/429/503 where they apply), and the Edge Network paths,
which a lean ASGI handler serves outside FastAPI. It also makes every documented path answer an
undocumented method with 405 and an `Allow` header that lists exactly the documented methods.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request

from koppla.platform.catalog.models import DATASET_NAME, DATASTREAM_ID, ORG_ID, ORIGIN

Operation = dict[str, Any]

PUBLIC_API_PATHS = frozenset({"/api/v1/health"})
"""API paths served without credentials (the edge and the demo shop are public as well)."""

_ERROR = {"$ref": "#/components/schemas/Error"}
_PROBLEM = {"$ref": "#/components/schemas/EdgeProblem"}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {}}
}

_API_STATUS_TEXT = {
    400: "The request is malformed or breaks a rule (for a query: refused, invalid, or longer "
    "than `query_timeout_s`); `detail` says which.",
    401: "No valid API token: send `Authorization: Bearer <token>`.",
    403: "The message names an organization the connection does not belong to.",
    404: "Nothing is found under the path's id.",
    409: "Something with that name or id already exists.",
    413: "The body is larger than the route allows (`max_body_*_bytes`), or a batch holds "
    "more than `edge_max_events` messages.",
    503: "Busy or shutting down; retry after `Retry-After` seconds.",
}

ROUTE_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/api/v1/datasets"): (400, 409),
    ("post", "/api/v1/datastreams"): (400, 409),
    ("get", "/api/v1/batches"): (404,),
    ("get", "/api/v1/batches/{batch_id}/failed"): (400,),
    ("get", "/api/v1/query"): (400, 503),
    ("post", "/api/v1/query"): (400, 503),
    ("get", "/api/v1/datastreams/{datastream_id}/tag"): (400,),
    ("post", "/collection/{connection_id}"): (400, 403, 503),
    ("post", "/collection/batch/{connection_id}"): (400, 403, 503),
}
"""Statuses a route raises itself, beyond those every operation of its kind answers."""

_RAW_BODIES: dict[str, str] = {
    "/collection/{connection_id}": "StreamingMessage",
    "/collection/batch/{connection_id}": "StreamingBatch",
}
"""Routes that read their JSON body themselves, so FastAPI cannot describe it."""


def install(api: FastAPI) -> None:
    """Serve `document(api)` at `/openapi.json` and answer undocumented methods with 405."""
    _add_method_fallbacks(api)

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = document(api)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def document(api: FastAPI) -> dict[str, Any]:
    """The whole OpenAPI document: FastAPI's view of the API, completed, plus the edge."""
    doc = get_openapi(
        title=api.title,
        version=api.version,
        description="Koppla: the Edge Network, AEP streaming ingestion, datasets and SQL.",
        routes=api.routes,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _add_catalog_rules(schemas, sorted(api.state.services.registry.ids()))
    schemas.update(_schemas())
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "`koppla token create`"}
    }
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            _complete(method, path, operation)
    doc["paths"].update(edge_paths())
    return doc


def _add_catalog_rules(schemas: dict[str, Any], schema_ids: list[str]) -> None:
    """Spell out the catalog's rules on names and ids, which the routes check themselves."""
    dataset = schemas["DatasetCreate"]["properties"]
    dataset["name"]["pattern"] = DATASET_NAME.pattern
    dataset["schemaId"]["anyOf"][0]["enum"] = schema_ids
    stream = schemas["DatastreamCreate"]["properties"]
    stream["orgId"]["pattern"] = ORG_ID.pattern
    stream["id"]["anyOf"][0]["pattern"] = DATASTREAM_ID.pattern
    stream["allowedOrigins"]["items"]["pattern"] = ORIGIN.pattern


def _complete(method: str, path: str, operation: Operation) -> None:
    """Add the statuses one API operation answers that FastAPI does not know about."""
    statuses: set[int] = set(ROUTE_STATUSES.get((method, path), ()))
    if path not in PUBLIC_API_PATHS:
        operation["security"] = [{"bearer": []}]
        statuses.add(401)
    if method in ("post", "put", "patch"):
        statuses.add(413)
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        statuses.add(404)
    if path in _RAW_BODIES:
        operation["requestBody"] = _json_body(_RAW_BODIES[path])
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status in sorted(statuses):
        responses.setdefault(str(status), _api_error(status))
    for code, response in responses.items():
        if code != "204" and "content" not in response:  # a route's own `responses=`
            response["content"] = {"application/json": {"schema": {"type": "object"}}}
    if path.endswith("/debug") and "200" in responses:
        responses["200"]["content"] = {"text/event-stream": {"schema": {"type": "string"}}}


def _api_error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _API_STATUS_TEXT[status],
        "content": {"application/json": {"schema": _ERROR}},
    }
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}
        }
    if status == 503:
        response["headers"] = _RETRY_AFTER
    return response


def _json_body(schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"required": True, "content": {"application/json": {"schema": ref}}}


_EDGE_ACTIONS: dict[str, tuple[str, str, str | None]] = {
    "interact": ("v1", "EdgeEventsRequest", "EdgeResponse"),
    "collect": ("v1", "EdgeEventsRequest", None),
    "privacy/set-consent": ("v1", "EdgeConsentRequest", "EdgeResponse"),
    "identity/acquire": ("v1", "EdgeIdentityRequest", "EdgeResponse"),
}

_EDGE_STATUS_TEXT = {
    400: "Not a valid Edge request: malformed JSON, a broken rule, nesting deeper than "
    "`edge_max_depth`, or an unknown `configId`.",
    403: "The request's `Origin` is not allowed by the datastream.",
    404: "No edge endpoint at this path.",
    405: "Only POST (and the CORS preflight OPTIONS) is served under `/ee/`.",
    413: "The body is larger than `max_body_edge_bytes`, or holds more than `edge_max_events`.",
    429: "Too many requests from this client or for this datastream; retry after `Retry-After`.",
    503: "The spool cannot take the request now; nothing was stored.",
}


def edge_paths() -> dict[str, Any]:
    """The Edge Network paths (served by the lean edge handler, not by FastAPI)."""
    paths: dict[str, Any] = {}
    for action, (version, body, answer) in _EDGE_ACTIONS.items():
        operation = _edge_operation(action, body, answer)
        paths[f"/ee/{version}/{action}"] = {"post": operation}
        hinted = {**operation, "parameters": [*operation["parameters"], _LOCATION_HINT]}
        hinted["operationId"] = operation["operationId"] + "_hinted"
        paths[f"/ee/{{locationHint}}/{version}/{action}"] = {"post": hinted}
    for action, answer in (("interact", "EdgeResponse"), ("collect", None)):
        operation = _edge_operation(action, "EdgeServerRequest", answer)
        operation["operationId"] = f"edge_v2_{action}"
        paths[f"/ee/v2/{action}"] = {"post": operation}
    return paths


_CONFIG_ID = {
    "name": "configId",
    "in": "query",
    "required": True,
    "description": "The datastream id (`datastreamId` is accepted as well).",
    "schema": {"type": "string", "minLength": 1},
}
_REQUEST_ID = {
    "name": "requestId",
    "in": "query",
    "required": False,
    "description": "The client's request id, echoed back; a UUID when omitted.",
    "schema": {"type": "string"},
}
_LOCATION_HINT = {
    "name": "locationHint",
    "in": "path",
    "required": True,
    "description": "The edge cluster the SDK was sent to (from the `locationHint:result` handle).",
    "schema": {"type": "string"},
}


def _edge_operation(action: str, body: str, answer: str | None) -> Operation:
    ref = {"$ref": f"#/components/schemas/{body}"}
    success: dict[str, Any]
    if answer is None:
        success = {"204": {"description": "Stored durably; nothing to answer."}}
    else:
        schema = {"$ref": f"#/components/schemas/{answer}"}
        success = {
            "200": {
                "description": "Stored durably (or refused by consent); the handles the SDK needs.",
                "content": {"application/json": {"schema": schema}},
            }
        }
    responses = {**success, **{str(s): _edge_error(s) for s in sorted(_EDGE_STATUS_TEXT)}}
    return {
        "tags": ["Edge Network"],
        "summary": f"Edge Network `{action}`",
        "operationId": "edge_" + action.replace("/", "_").replace("-", "_"),
        "security": [],
        "parameters": [_CONFIG_ID, _REQUEST_ID],
        "requestBody": {
            "required": body != "EdgeIdentityRequest",
            "description": "JSON; the Web SDK sends it as `text/plain` to skip the preflight.",
            "content": {"text/plain": {"schema": ref}, "application/json": {"schema": ref}},
        },
        "responses": responses,
    }


def _edge_error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _EDGE_STATUS_TEXT[status],
        "content": {"application/json": {"schema": _PROBLEM}},
    }
    if status == 405:
        response["headers"] = {"Allow": {"description": "`POST, OPTIONS`", "schema": {}}}
    if status in (429, 503):
        response["headers"] = _RETRY_AFTER
    return response


def _schemas() -> dict[str, Any]:
    """Component schemas: error bodies, the edge's requests and answers, streaming messages."""
    event = {
        "type": "object",
        "required": ["xdm"],
        "properties": {
            "xdm": {"type": "object", "description": "The XDM ExperienceEvent."},
            "data": {"description": "Free-form data, an object (not stored in XDM)."},
        },
    }
    events = {"type": "array", "minItems": 1, "maxItems": 1000, "items": event}
    return {
        "Error": {
            "type": "object",
            "required": ["detail"],
            "properties": {"detail": {"description": "What went wrong: a sentence or issues."}},
        },
        "EdgeProblem": _edge_problem(),
        "EdgeEvent": event,
        "EdgeEventsRequest": {
            "type": "object",
            "description": "What `@adobe/alloy` sends: events, each with its XDM.",
            "required": ["events"],
            "properties": {"events": events, "meta": {"description": "State, config overrides."}},
        },
        "EdgeServerRequest": {
            "type": "object",
            "description": "The server API's body: `events`, or a single `event`.",
            "if": {"required": ["event"]},
            "then": {"properties": {"event": event}},
            "else": {"required": ["events"], "properties": {"events": events}},
        },
        "EdgeConsentRequest": _consent_request(),
        "EdgeIdentityRequest": {
            "description": "Any body; `events`, when present, are checked like `interact`'s.",
        },
        "EdgeResponse": {
            "type": "object",
            "required": ["requestId", "handle"],
            "properties": {
                "requestId": {"type": "string"},
                "handle": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "payload"],
                        "properties": {"type": {"type": "string"}, "payload": {"type": "array"}},
                    },
                },
            },
        },
        **_streaming_schemas(),
    }


def _edge_problem() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "An Adobe problem document; `type` ends with the `EXEG-` code and status.",
        "required": ["type", "status", "title"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "integer"},
            "title": {"type": "string"},
            "detail": {"type": "string"},
            "report": {
                "type": "object",
                "properties": {"requestId": {"type": "string"}, "configId": {"type": "string"}},
            },
        },
    }


def _consent_request() -> dict[str, Any]:
    adobe = {"properties": {"standard": {"const": "Adobe"}, "value": {"type": "object"}}}
    general = {"required": ["general"], "properties": {"general": {"enum": ["in", "out"]}}}
    item = {
        "type": "object",
        "if": {**adobe, "required": ["standard", "value"]},
        "then": {"properties": {"value": general}},
    }
    return {
        "type": "object",
        "required": ["consent"],
        "properties": {"consent": {"type": "array", "minItems": 1, "items": item}},
    }


def _streaming_schemas() -> dict[str, Any]:
    message = {
        "type": "object",
        "required": ["header", "body"],
        "properties": {
            "header": {
                "type": "object",
                "required": ["datasetId"],
                "properties": {
                    "datasetId": {"type": "string", "minLength": 1},
                    "imsOrgId": {"description": "When present, the connection's organization."},
                },
            },
            "body": {
                "type": "object",
                "required": ["xdmEntity"],
                "properties": {"xdmEntity": {"type": "object"}},
            },
        },
    }
    return {
        "StreamingMessage": message,
        "StreamingBatch": {
            "type": "object",
            "required": ["messages"],
            "properties": {
                "messages": {"type": "array", "minItems": 1, "maxItems": 1000, "items": message}
            },
        },
    }


def _add_method_fallbacks(api: FastAPI) -> None:
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
