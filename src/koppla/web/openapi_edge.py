"""The Edge Network's paths in the OpenAPI document.

A lean ASGI handler serves `/ee/...` outside FastAPI, so FastAPI cannot describe it; these are
the edge's operations (Web SDK v1, location-hinted v1, server v2), their request bodies and every
status the edge answers.
"""

from __future__ import annotations

from typing import Any

Operation = dict[str, Any]

PROBLEM = {"$ref": "#/components/schemas/EdgeProblem"}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {}}}
"""The `Retry-After` response header, for 429 and 503 answers."""


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
        "content": {"application/json": {"schema": PROBLEM}},
    }
    if status == 405:
        response["headers"] = {"Allow": {"description": "`POST, OPTIONS`", "schema": {}}}
    if status in (429, 503):
        response["headers"] = RETRY_AFTER
    return response


def edge_problem_schema() -> dict[str, Any]:
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


def consent_request_schema() -> dict[str, Any]:
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
