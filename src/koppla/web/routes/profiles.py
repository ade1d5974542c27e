"""Profile lookups in AEP's shapes (`/data/core/ups/...`), and Koppla's JSON twin.

- `GET /data/core/ups/access/entities?schema.name=_xdm.context.profile&entityId=...&entityIdNS=...`:
  one merged profile keyed by its profile id: `entityId`, `mergePolicy`, `sources` (dataset ids),
  `identityGraph` (`Namespace:id` strings), `entity` (merged attributes plus `identities`),
  `lastModifiedAt`, and Koppla's `computedAttributes` beside `entity`. Without `entityIdNS`,
  `entityId` is a Koppla profile id.
- The same path with `schema.name=_xdm.context.experienceevent`: the profile's events, paged.
- `POST /data/core/ups/access/entities`: several identities in one call.
- `/data/core/ups/config/mergePolicies[/{mergePolicyId}]`: list, create, read, replace, patch,
  delete merge policies.
- `GET /api/v1/profiles/{identity}` and `/api/v1/profiles/guardrails`: Koppla's own JSON.

Errors answer with an AEP-like body, `{"message", "statusCode", "detail"}` plus `field` naming
the parameter or body field at fault: 400 malformed, 404 unknown, 409 conflict, 422 unsupported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import Response

from koppla.core import clock, codec
from koppla.core.errors import Conflict, InvalidInput, NotFound
from koppla.platform.profiles.identity import Identity, normalise
from koppla.platform.profiles.lookup import ProfileLookup, ProfileView
from koppla.platform.profiles.merge import PROFILE_CLASS, MergePolicy, policy_to_api
from koppla.platform.profiles.render import computed_json, hit_json, profile_json
from koppla.platform.profiles.stored import StoredEvent
from koppla.web.auth import Caller, Svc, profile_owner
from koppla.web.routes.datasets import Limit

router = APIRouter(tags=["profiles"], dependencies=[Depends(profile_owner)])

EVENT_CLASS = "_xdm.context.experienceevent"
MAX_EVENTS = 1000
"""Most events one page of `/ups/access/entities` holds (also the default `limit`)."""
MAX_IDENTITIES = 100
"""Most identities one `POST /ups/access/entities` may name."""
ENTITIES = "/data/core/ups/access/entities"
POLICIES = "/data/core/ups/config/mergePolicies"
MAX_MS = 10**15 - 1
"""The latest epoch millisecond a time parameter may name (year 33658)."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A parameter or body field is missing or malformed; `field` names it."},
    404: {"description": "No profile (or merge policy) for what was asked."},
    422: {"description": "Well-formed but not served: another schema, an unknown merge policy."},
}
_POLICY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The merge policy breaks a rule; `field` names the field at fault."},
    409: {"description": "The default merge policy cannot be deleted or unset."},
}

PolicyId = Annotated[str, Path(alias="mergePolicyId", description="Merge policy id.")]
Text = str | None


class Refused(Exception):
    """A request this module answers with an error status, naming the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def _problem(status: int, message: str, field: str | None) -> Response:
    body: dict[str, Any] = {"message": message, "statusCode": str(status), "detail": message}
    if field is not None:
        body["field"] = field
    return Response(codec.dumps(body), status_code=status, media_type="application/json")


def answer(make: Callable[[], object]) -> Response:
    """The JSON of `make()`, or the AEP-like error its exception calls for."""
    try:
        body = make()
    except Refused as error:
        return _problem(error.status, str(error), error.field)
    except InvalidInput as error:
        return _problem(400, str(error), error.field)
    except NotFound as error:
        return _problem(404, str(error), None)
    except Conflict as error:
        return _problem(409, str(error), None)
    return Response(codec.dumps(body), media_type="application/json")


def _int(value: Text, field: str, default: int, low: int = 0, high: int | None = None) -> int:
    """A whole-number query parameter within bounds; 400 naming `field` otherwise."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as error:
        raise Refused(400, f"{field} must be a whole number, got {value!r}", field) from error
    if number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise Refused(400, f"{field} must be {bounds}, got {number}", field)
    return number


def _schema(value: Text, allowed: Sequence[str], field: str) -> str:
    """A schema class parameter: 400 when missing, 422 when Koppla does not serve it."""
    if not value:
        raise Refused(400, f"{field} is required (one of {', '.join(allowed)})", field)
    if value not in allowed:
        served = ", ".join(allowed)
        raise Refused(422, f"{field} {value!r} is not served here; use {served}", field)
    return value


# ---- finding the profile asked about


def _identity(svc: Svc, entity_id: Text, namespace: Text, field: str) -> Identity:
    """`entity_id` in `namespace`, or the first identity of the profile `entity_id`."""
    if not entity_id:
        raise Refused(400, f"{field} is required", field)
    if namespace is None:
        members = svc.profiles.members(entity_id)
        if not members:
            raise NotFound(f"no profile {entity_id!r} (give {field}NS to look up an identity)")
        return members[0].identity
    if not namespace.strip():
        raise Refused(400, f"{field}NS must name a namespace, e.g. email or ECID", f"{field}NS")
    found = normalise(namespace, entity_id)
    if found is None:
        raise Refused(400, f"{entity_id!r} is not a usable {namespace} identity", field)
    return found


def _policy(lookup: ProfileLookup, policy_id: Text) -> MergePolicy:
    """The policy `policy_id` names (the default when None), read once per request; 422
    naming `mergePolicyId` when there is none."""
    if policy_id is None:
        return lookup.policies.default()
    try:
        return lookup.policies.get(policy_id)
    except NotFound as error:
        raise Refused(422, str(error), "mergePolicyId") from error


def _view(lookup: ProfileLookup, identity: Identity, policy: MergePolicy) -> ProfileView:
    view = lookup.profile(identity, policy)
    if view is None:
        raise NotFound(f"no profile for {identity}")
    return view


# ---- AEP entity shapes


def entity_json(view: ProfileView, fields: Sequence[str] | None) -> dict[str, Any]:
    """One profile in AEP's `Entity` shape, plus Koppla's `computedAttributes`."""
    entity = {**view.attributes, "identities": _identities(view)}
    return {
        "entityId": view.graph_id,
        "mergePolicy": {"id": view.policy.id},
        "sources": view.sources,
        "identityGraph": [str(m.identity) for m in view.members],
        "entity": project(entity, fields) if fields else entity,
        "computedAttributes": computed_json(view.computed),
        "lastModifiedAt": clock.iso_ms(view.last_modified_ms),
    }


def _identities(view: ProfileView) -> list[dict[str, Any]]:
    """The profile's identities as AEP lists them; `primary` where a record marks it so."""
    primary: set[Identity] = set()
    identity_map = view.attributes.get("identityMap")
    if isinstance(identity_map, Mapping):
        for namespace, items in identity_map.items():
            for marked in items if isinstance(items, list) else []:
                if isinstance(marked, Mapping) and marked.get("primary") is True:
                    found = normalise(str(namespace), str(marked.get("id", "")))
                    primary.update([found] if found else [])
    out: list[dict[str, Any]] = []
    for m in view.members:
        item: dict[str, Any] = {"id": m.identity.id, "namespace": {"code": m.identity.namespace}}
        if m.identity in primary:
            item["primary"] = True
        out.append(item)
    return out


def parse_fields(value: str | Sequence[object] | None, field: str = "fields") -> list[str] | None:
    """`a.b,c` (or a list) as dotted paths; 400 naming `field` on an empty segment."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        raw: list[object] = list(value.split(","))
    elif isinstance(value, list):
        raw = list(value)
    else:
        raise Refused(400, f"{field} must be a comma list or a list of paths", field)
    paths: list[str] = []
    for path in raw:
        if not isinstance(path, str) or not all(path.strip().split(".")):
            raise Refused(400, f"{field} holds a malformed path {path!r}", field)
        paths.append(path.strip())
    return paths


def project(entity: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """Only the dotted `paths` of `entity` (paths absent from it are left out)."""
    out: dict[str, Any] = {}
    for path in paths:
        *parents, leaf = path.split(".")
        node: Any = entity
        for key in parents:
            node = node.get(key) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping) or leaf not in node:
            continue
        target = out
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = node[leaf]
    return out


@router.get(ENTITIES, responses=_ERRORS)
def entities(
    svc: Svc,
    _: Caller,
    schema_name: Annotated[
        Text,
        Query(alias="schema.name", description="`_xdm.context.profile` or `...experienceevent`."),
    ] = None,
    entity_id: Annotated[Text, Query(alias="entityId")] = None,
    entity_id_ns: Annotated[
        Text, Query(alias="entityIdNS", description="Namespace code; without it, a profile id.")
    ] = None,
    merge_policy_id: Annotated[Text, Query(alias="mergePolicyId")] = None,
    fields: Annotated[Text, Query(description="Comma list of dotted paths to keep.")] = None,
    related_schema: Annotated[Text, Query(alias="relatedSchema.name")] = None,
    related_entity_id: Annotated[Text, Query(alias="relatedEntityId")] = None,
    related_entity_id_ns: Annotated[Text, Query(alias="relatedEntityIdNS")] = None,
    start_time: Annotated[
        Text, Query(alias="startTime", description="Epoch ms, inclusive.")
    ] = None,
    end_time: Annotated[Text, Query(alias="endTime", description="Epoch ms, exclusive.")] = None,
    limit: Annotated[Text, Query(description=f"Events per page (1-{MAX_EVENTS}).")] = None,
    orderby: Annotated[Text, Query(description="`+timestamp` (default) or `-timestamp`.")] = None,
    start: Annotated[Text, Query(description="The page cursor from `_page.next`.")] = None,
) -> Response:
    """A merged profile (`_xdm.context.profile`), or a profile's events (`...experienceevent`)."""

    def profile() -> dict[str, Any]:
        lookup = svc.lookup
        policy = _policy(lookup, merge_policy_id)
        identity = _identity(svc, entity_id, entity_id_ns, "entityId")
        view = _view(lookup, identity, policy)
        return {view.graph_id: entity_json(view, parse_fields(fields))}

    def events() -> dict[str, Any]:
        _schema(related_schema, [PROFILE_CLASS], "relatedSchema.name")
        window = EventWindow(
            start_ms=_int(start_time, "startTime", 0, 0, MAX_MS) if start_time else None,
            end_ms=_int(end_time, "endTime", 0, 0, MAX_MS) if end_time else None,
            limit=_int(limit, "limit", MAX_EVENTS, 1, MAX_EVENTS),
            newest_first=_order(orderby),
            cursor=_cursor(start),
        )
        identity = _identity(svc, related_entity_id, related_entity_id_ns, "relatedEntityId")
        members = svc.lookup.members_of(identity)
        if not members:
            raise NotFound(f"no profile for {identity}")
        query = {
            "schema.name": EVENT_CLASS,
            "relatedSchema.name": PROFILE_CLASS,
            "relatedEntityId": related_entity_id,
            "relatedEntityIdNS": related_entity_id_ns,
            "startTime": start_time,
            "endTime": end_time,
            "limit": str(window.limit),
            "orderby": "-timestamp" if window.newest_first else "+timestamp",
        }
        return events_page(svc.lookup, identity, members[0].graph_id, window, query)

    def either() -> dict[str, Any]:
        chosen = _schema(schema_name, [PROFILE_CLASS, EVENT_CLASS], "schema.name")
        return profile() if chosen == PROFILE_CLASS else events()

    return answer(either)


# ---- a profile's events, paged


@dataclass(frozen=True, slots=True)
class EventWindow:
    """Which events one page shows: a time range, a size, an order and where to resume."""

    start_ms: int | None
    end_ms: int | None
    limit: int
    newest_first: bool
    cursor: tuple[int, int] | None
    """`(timestamp, n)`: resume at that timestamp, past the first `n` events stamped with it."""


def _order(value: Text) -> bool:
    """True for `-timestamp`; `+timestamp` (the default, also spelt `timestamp`) is False."""
    if value in (None, "", "+timestamp", "timestamp", " timestamp"):
        return False
    if value == "-timestamp":
        return True
    raise Refused(400, f"orderby must be +timestamp or -timestamp, got {value!r}", "orderby")


def _cursor(value: Text) -> tuple[int, int] | None:
    if not value:
        return None
    ts, _, seen = value.partition(".")
    if not (ts.isdecimal() and seen.isdecimal() and len(ts) <= 15 and len(seen) <= 9):
        raise Refused(400, f"start {value!r} is not a cursor from _page.next", "start")
    return int(ts), int(seen)


def events_page(
    lookup: ProfileLookup,
    identity: Identity,
    profile_id: str,
    window: EventWindow,
    query: Mapping[str, str | None],
) -> dict[str, Any]:
    """One page of a profile's events in AEP's shape, with the link to the next page."""
    start_ms, end_ms, skip = window.start_ms, window.end_ms, 0
    if window.cursor is not None:
        at, skip = window.cursor
        if window.newest_first:
            end_ms = at + 1 if end_ms is None else min(end_ms, at + 1)
        else:
            start_ms = at if start_ms is None else max(start_ms, at)
    found = lookup.events(
        identity,
        start_ms=start_ms,
        end_ms=end_ms,
        limit=window.limit + skip + 1,
        newest_first=window.newest_first,
    )[skip:]
    page = found[: window.limit]
    following = _next(page, window.cursor) if len(found) > len(page) else ""
    href = f"{ENTITIES}?{urlencode({**_present(query), 'start': following})}" if following else ""
    return {
        "_page": {
            "orderby": query["orderby"],
            "start": page[0].event_id if page else "",
            "count": len(page),
            "next": following,
        },
        "children": [_child(profile_id, e) for e in page],
        "_links": {"next": {"href": href}},
    }


def _next(page: Sequence[StoredEvent], cursor: tuple[int, int] | None) -> str:
    """The cursor after `page`: its last timestamp and how many events with it were shown."""
    last = page[-1].ts_ms
    shown = sum(1 for e in page if e.ts_ms == last)
    if cursor is not None and cursor[0] == last and page[0].ts_ms == last:
        shown += cursor[1]
    return f"{last}.{shown}"


def _present(query: Mapping[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in query.items() if v is not None}


def _child(profile_id: str, event: StoredEvent) -> dict[str, Any]:
    return {
        "relatedEntityId": profile_id,
        "entityId": event.event_id,
        "timestamp": event.ts_ms,
        "entity": event.body,
    }


# ---- several identities at once


@router.post(ENTITIES, responses=_ERRORS)
def entities_of(
    svc: Svc,
    _: Caller,
    body: Annotated[
        dict[str, Any], Body(description="AEP's PostRequestBodyEntity: schema and identities.")
    ],
) -> Response:
    """The profiles of several identities, keyed by profile id (each profile once)."""

    def make() -> dict[str, Any]:
        schema = body.get("schema")
        name = schema.get("name") if isinstance(schema, Mapping) else None
        _schema(name if isinstance(name, str) else None, [PROFILE_CLASS], "schema.name")
        lookup = svc.lookup
        asked_policy = body.get("mergePolicyId")
        policy = _policy(lookup, asked_policy if isinstance(asked_policy, str) else None)
        fields = parse_fields(body.get("fields"))
        out: dict[str, Any] = {}
        for n, item in enumerate(_asked(body.get("identities"))):
            code = item.get("entityIdNS")
            namespace = code.get("code") if isinstance(code, Mapping) else None
            if namespace is not None and not isinstance(namespace, str):
                namespace = ""  # refused by `_identity` with the field named
            field = f"identities[{n}].entityId"
            entity_id = item.get("entityId")
            identity = _identity(
                svc, entity_id if isinstance(entity_id, str) else None, namespace, field
            )
            view = lookup.profile(identity, policy)
            if view is not None and view.graph_id not in out:
                requested: dict[str, Any] = {"entityId": entity_id}
                if namespace is not None:
                    requested["entityIdNS"] = {"code": namespace}
                out[view.graph_id] = {"requestedIdentity": requested, **entity_json(view, fields)}
        if not out:
            raise NotFound("no profile for any of the identities asked about")
        return out

    return answer(make)


def _asked(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not value:
        raise Refused(400, "identities must be a non-empty list", "identities")
    if len(value) > MAX_IDENTITIES:
        message = f"at most {MAX_IDENTITIES} identities per request, got {len(value)}"
        raise Refused(400, message, "identities")
    for n, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise Refused(400, "each identity must be an object", f"identities[{n}]")
    return value


# ---- merge policies


@router.get(POLICIES, responses=_ERRORS)
def merge_policies(
    svc: Svc,
    _: Caller,
    schema_name: Annotated[Text, Query(alias="schema.name")] = None,
    default: Annotated[Text, Query(description="`true` or `false`.")] = None,
    limit: Annotated[Text, Query(description="Policies per page (1-1000, default 100).")] = None,
    start: Annotated[Text, Query(description="Offset of the page's first policy.")] = None,
) -> Response:
    """The merge policies, oldest first, optionally of one class or only the default."""

    def make() -> dict[str, Any]:
        if default not in (None, "true", "false"):
            raise Refused(400, f"default must be true or false, got {default!r}", "default")
        size = _int(limit, "limit", 100, 1, 1000)
        offset = _int(start, "start", 0)
        chosen = [
            p
            for p in svc.lookup.policies.all()
            if (schema_name is None or p.schema_class == schema_name)
            and (default is None or p.default == (default == "true"))
        ]
        page = chosen[offset : offset + size]
        more = offset + size < len(chosen)
        query = {"schema.name": schema_name, "default": default, "limit": str(size)}
        following = str(offset + size) if more else ""
        href = f"{POLICIES}?{urlencode({**_present(query), 'start': following})}" if more else ""
        return {
            "_page": {"totalCount": len(chosen), "count": len(page), "next": following},
            "children": [policy_to_api(p) for p in page],
            "_links": {"next": {"href": href}},
        }

    return answer(make)


@router.post(POLICIES, responses=_POLICY_ERRORS)
def create_merge_policy(
    svc: Svc, _: Caller, body: Annotated[dict[str, Any], Body(description="PostMergePolicy.")]
) -> Response:
    """Create a merge policy (`default: true` unsets the old default of its class)."""
    return answer(lambda: policy_to_api(svc.lookup.policies.create(body)))


@router.get(POLICIES + "/{mergePolicyId}")
def merge_policy(policy_id: PolicyId, svc: Svc, _: Caller) -> Response:
    """One merge policy."""
    return answer(lambda: policy_to_api(svc.lookup.policies.get(policy_id)))


@router.put(POLICIES + "/{mergePolicyId}", responses=_POLICY_ERRORS)
def replace_merge_policy(
    policy_id: PolicyId,
    svc: Svc,
    _: Caller,
    body: Annotated[dict[str, Any], Body(description="MergePolicy: the fields to set.")],
) -> Response:
    """Replace a merge policy's settings; its version goes up by one."""
    return answer(lambda: policy_to_api(svc.lookup.policies.change(policy_id, body)))


PATCHABLE = {
    "/name": ("name",),
    "/identityGraph.type": ("identityGraph", "type"),
    "/attributeMerge.type": ("attributeMerge", "type"),
    "/attributeMerge.order": ("attributeMerge", "order"),
    "/schema.name": ("schema", "name"),
    "/default": ("default",),
    "/isActiveOnEdge": ("isActiveOnEdge",),
    "/idActiveOnEdge": ("isActiveOnEdge",),
}
"""Paths a PATCH operation may set (AEP's list; `/idActiveOnEdge` is the spec's own typo)."""


@router.patch(POLICIES + "/{mergePolicyId}", responses=_POLICY_ERRORS)
def patch_merge_policy(
    policy_id: PolicyId,
    svc: Svc,
    _: Caller,
    body: Annotated[list[dict[str, Any]], Body(description="`[{op: add, path, value}]`.")],
) -> Response:
    """Set single fields of a merge policy (`op` `add` or `replace`, paths as in AEP)."""

    def make() -> dict[str, Any]:
        policies = svc.lookup.policies
        changed = policy_to_api(policies.get(policy_id))
        for n, operation in enumerate(body):
            path = PATCHABLE.get(str(operation.get("path")))
            if operation.get("op") not in ("add", "replace") or path is None:
                known = ", ".join(PATCHABLE)
                message = f"operation {n} must be op add or replace on one of {known}"
                raise Refused(400, message, f"[{n}]")
            target = changed
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = operation.get("value")
        return policy_to_api(policies.change(policy_id, changed))

    return answer(make)


@router.delete(POLICIES + "/{mergePolicyId}", responses=_POLICY_ERRORS)
def delete_merge_policy(policy_id: PolicyId, svc: Svc, _: Caller) -> Response:
    """Delete a merge policy (not the default of its class)."""

    def make() -> dict[str, Any]:
        svc.lookup.policies.delete(policy_id)
        return {}

    return answer(make)


# ---- Koppla's JSON twin


@router.get("/api/v1/profiles/guardrails")
def guardrail_hits(svc: Svc, _: Caller, limit: Limit = 100) -> dict[str, Any]:
    """The newest guardrail hits of every profile: links kept out of identity graphs, and why."""
    return {"hits": [hit_json(h) for h in svc.profiles.hits(limit=limit)]}


@router.get("/api/v1/profiles/{identity}", responses=_ERRORS)
def profile_of(
    identity: Annotated[str, Path(description="`namespace:id`, e.g. `email:ann@example.com`.")],
    svc: Svc,
    _: Caller,
    limit: Annotated[int, Query(ge=0, le=MAX_EVENTS, description="Newest events to show.")] = 20,
    merge_policy_id: Annotated[Text, Query(alias="mergePolicyId")] = None,
) -> Response:
    """A profile by any of its identities: attributes, identities, recent events, guardrail hits."""

    def make() -> dict[str, Any]:
        try:
            asked = Identity.parse(identity)
        except ValueError as error:
            raise Refused(400, str(error), "identity") from error
        lookup = svc.lookup
        view = _view(lookup, asked, _policy(lookup, merge_policy_id))
        events = lookup.events(asked, limit=limit, newest_first=True) if limit else []
        return profile_json(view, events)

    return answer(make)
