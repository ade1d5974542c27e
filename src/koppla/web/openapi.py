"""The OpenAPI document at `/openapi.json`: every path Koppla serves and every status it answers.

FastAPI sees only the credentialed API's routes and the statuses they declare. This module adds
what it cannot see: the bearer scheme, the statuses the routes and the ASGI layers in front of
them really answer (401, 413, 400/404/409/429/503 where they apply), and the Edge Network paths,
which a lean ASGI handler serves outside FastAPI. It also makes every documented path answer an
undocumented method with 405 and an `Allow` header that lists exactly the documented methods.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from koppla.platform.catalog.models import DATASET_NAME, DATASTREAM_ID, ORG_ID, ORIGIN
from koppla.web.allow import add_method_fallbacks
from koppla.web.gate import is_public
from koppla.web.openapi_edge import (
    RETRY_AFTER,
    Operation,
    consent_request_schema,
    edge_paths,
    edge_problem_schema,
)

_ERROR = {"$ref": "#/components/schemas/Error"}

_API_STATUS_TEXT = {
    400: "The request is malformed or breaks a rule (for a query: refused, invalid, or longer "
    "than `query_timeout_s`); `detail` says which.",
    401: "No valid API token: send `Authorization: Bearer <token>`.",
    403: "The credentials are good but not for this request: `x-gw-ims-org-id` is not the "
    "token's organization, `x-api-key` not its client id, a signed-in change lacks "
    "`X-CSRF-Token`, or (a datastream, a message) an organization the caller may not act for.",
    404: "Nothing is found under the path's id (or no store connector is configured here).",
    409: "Something with that name or id already exists, (an ingestion batch) its status "
    "does not allow the request, or the connector's settings are invalid; `detail` says which.",
    413: "The body is larger than the route allows (`max_body_*_bytes`, "
    "`batch_max_file_bytes`), or a batch holds more than `edge_max_events` messages.",
    503: "Busy or shutting down; retry after `Retry-After` seconds.",
}

_BATCH_FILE = "/data/foundation/import/batches/{batch_id}/datasets/{dataset_id}/files/{file_path}"

ROUTE_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/data/foundation/query/queries"): (400, 404, 503),
    ("get", "/data/foundation/query/queries"): (400,),
    ("patch", "/data/foundation/query/queries/{queryid}"): (400, 409),
    ("get", "/data/foundation/query/queries/{queryid}/results"): (400, 409),
    ("get", "/data/foundation/query/query-templates"): (400,),
    ("get", "/data/foundation/query/query-templates/count"): (400,),
    ("post", "/data/foundation/query/query-templates"): (400,),
    ("put", "/data/foundation/query/query-templates/{queryTemplateId}"): (400,),
    ("post", "/api/v1/datasets"): (400, 409),
    ("patch", "/api/v1/datasets/{key}"): (400,),
    ("post", "/api/v1/datastreams"): (400, 409),
    ("get", "/api/v1/batches"): (404,),
    ("get", "/api/v1/batches/{batch_id}/failed"): (400,),
    ("get", "/api/v1/query"): (400, 503),
    ("post", "/api/v1/query"): (400, 503),
    ("get", "/api/v1/datastreams/{datastream_id}/tag"): (400,),
    ("post", "/collection/{connection_id}"): (400, 403, 503),
    ("post", "/collection/batch/{connection_id}"): (400, 403, 503),
    ("post", "/data/foundation/import/batches"): (400,),
    ("post", "/data/foundation/import/batches/{batch_id}"): (400, 409),
    ("put", _BATCH_FILE): (400, 409),
    ("get", "/api/v1/connector/history"): (404, 409),
    ("post", "/api/v1/connector/history"): (400, 404, 409),
    ("get", "/api/v1/connector/history/{sync_id}"): (409,),
}
"""Statuses a route raises itself, beyond those every operation of its kind answers."""

_RAW_BODIES: dict[str, str] = {
    "/collection/{connection_id}": "StreamingMessage",
    "/collection/batch/{connection_id}": "StreamingBatch",
    "/data/foundation/import/batches": "BatchCreate",
}
"""Routes that read their JSON body themselves, so FastAPI cannot describe it."""

_FILE_BODY = {
    "required": True,
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}
_NDJSON_DOWNLOADS = frozenset(
    {
        "/data/foundation/export/batches/{batch_id}/failed",
        "/data/foundation/export/batches/{batch_id}/meta",
    }
)
"""Routes that answer a listing (JSON) or, given `path`, a download (JSON lines)."""


def install(api: FastAPI) -> None:
    """Serve `document(api)` at `/openapi.json` and answer undocumented methods with 405."""
    add_method_fallbacks(api)

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
    dataset["schemaId"]["description"] = (
        "A built-in schema (" + ", ".join(schema_ids) + ") or a tenant schema of the caller's "
        "organization (`POST /data/foundation/schemaregistry/tenant/schemas`)."
    )
    stream = schemas["DatastreamCreate"]["properties"]
    stream["orgId"]["pattern"] = ORG_ID.pattern
    stream["id"]["anyOf"][0]["pattern"] = DATASTREAM_ID.pattern
    stream["allowedOrigins"]["items"]["pattern"] = ORIGIN.pattern


def _complete(method: str, path: str, operation: Operation) -> None:
    """Add the statuses one API operation answers that FastAPI does not know about."""
    statuses: set[int] = set(ROUTE_STATUSES.get((method, path), ()))
    if not is_public(method.upper(), path):
        operation["security"] = [{"bearer": []}]
        statuses.update((401, 403))
    if method in ("post", "put", "patch"):
        statuses.add(413)
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        statuses.add(404)
    if path in _RAW_BODIES:
        operation["requestBody"] = _json_body(_RAW_BODIES[path])
    if path == _BATCH_FILE:
        operation["requestBody"] = _FILE_BODY
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status in sorted(statuses):
        responses.setdefault(str(status), _api_error(status))
    for code, response in responses.items():
        if code != "204" and "content" not in response:  # a route's own `responses=`
            response["content"] = {"application/json": {"schema": {"type": "object"}}}
    if path in _NDJSON_DOWNLOADS and "200" in responses:
        responses["200"]["content"]["application/x-ndjson"] = {"schema": {"type": "string"}}
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
        response["headers"] = RETRY_AFTER
    return response


def _json_body(schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"required": True, "content": {"application/json": {"schema": ref}}}


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
        "EdgeProblem": edge_problem_schema(),
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
        "EdgeConsentRequest": consent_request_schema(),
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
        "BatchCreate": {
            "type": "object",
            "description": "A new ingestion batch (AEP's createBatch).",
            "required": ["datasetId", "inputFormat"],
            "properties": {
                "datasetId": {"type": "string", "minLength": 1},
                "inputFormat": {
                    "type": "object",
                    "required": ["format"],
                    "properties": {
                        "format": {"enum": ["json", "parquet", "JSON", "Parquet"]},
                        "isMultiLineJson": {"type": "boolean"},
                    },
                },
                "isMultiLineJson": {"type": "boolean"},
            },
        },
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
