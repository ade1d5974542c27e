"""Identity graphs in AEP Identity Service shapes (`/data/core/identity/...`).

- `GET /data/core/identity/cluster/members?namespace=Email&id=...` (or `nsid=6&id=...`): the
  identities of the graph holding one identity, `{version, clusters, unprocessedRecords,
  algo_type}`. Members are spelt as the request spelt its identity (`namespace` or `nsid`).
- `POST /data/core/identity/v2/graph` with `composite_xids` (`ns` or `nsid`, and `id`):
  `projection_type: set` gives each graph's members; `graph` gives its vertices (with
  `last_updated_ts`, when the identity was last seen) and its edges (`first_established_ts`,
  `last_established_ts`). Only active links are edges: a link a guardrail keeps out of the
  graph is not part of it (see `/api/v1/profiles/guardrails`).

Not served: XIDs (`xid`, `xids`: Koppla names identities by namespace and id only, 400),
`graph-type`/`graph_type` (there is one graph), `require_edge_meta_data` (no dataset or batch ids
are kept per link, so edges never carry them), `traverse` and `filter`. An identity Koppla has
never seen is listed under `unprocessedRecords` / `unprocessed_composite_xids`.

Numeric namespace ids (`nsid`): Adobe's for ECID (4), Email (6) and Phone (7); Koppla's own,
from 1000001 on so they cannot meet Adobe's, for CustomerId (1000001), Email_LC_SHA256
(1000002) and Phone_SHA256 (1000003). Custom namespaces have no numeric id: use `namespace`/`ns`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response

from koppla.core import codec
from koppla.platform.profiles.identity import Identity, namespace_symbol, normalise
from koppla.platform.profiles.lookup import ProfileLookup
from koppla.platform.profiles.stored import Member
from koppla.web.auth import Caller, Svc, profile_owner

router = APIRouter(
    prefix="/data/core/identity", tags=["identity"], dependencies=[Depends(profile_owner)]
)

NSID = {"ECID": 4, "Email": 6, "Phone": 7, "CustomerId": 1000001}
NSID |= {"Email_LC_SHA256": 1000002, "Phone_SHA256": 1000003}
"""Numeric namespace ids: Adobe's where Adobe has one for the namespace, else Koppla's own."""
NAMESPACE_OF_NSID = {number: name for name, number in NSID.items()}
ALGO_TYPE = "STITCH_ALL"
MAX_XIDS = 1000

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed: `title`, `status` and a `detail` naming the field."}
}

Spelling = str
"""How the request named its identity: `namespace`/`ns` (a code) or `nsid` (a number)."""


class Invalid(Exception):
    """A request this module refuses with 400, naming the field at fault."""


def _answer(make: Callable[[], object]) -> Response:
    try:
        body = make()
    except Invalid as error:
        problem = {"title": "InvalidInput", "status": 400, "detail": str(error)}
        return Response(codec.dumps(problem), status_code=400, media_type="application/json")
    return Response(codec.dumps(body), media_type="application/json")


def _namespace(code: object, nsid: object, field: str) -> str:
    """The namespace symbol of a code, or of a numeric id; `Invalid` naming `field` if neither."""
    if isinstance(code, str) and code.strip():
        return namespace_symbol(code)
    if nsid is not None and nsid != "":
        try:
            number = int(str(nsid))
        except ValueError as error:
            raise Invalid(f"{field}: nsid must be a number, got {nsid!r}") from error
        if number not in NAMESPACE_OF_NSID:
            known = ", ".join(f"{v} ({k})" for k, v in NSID.items())
            raise Invalid(f"{field}: no namespace has nsid {number}; known: {known}")
        return NAMESPACE_OF_NSID[number]
    raise Invalid(f"{field}: give a namespace code or an nsid with the id")


def _spelt(member: Identity, spelling: Spelling, code_key: str) -> dict[str, Any]:
    """`member` spelt as the request spelt its identity (`nsid` when it has one)."""
    if spelling == "nsid" and member.namespace in NSID:
        return {"nsid": NSID[member.namespace], "id": member.id}
    return {code_key: member.namespace, "id": member.id}


def _members(lookup: ProfileLookup, identity: Identity | None) -> list[Member]:
    return lookup.members_of(identity) if identity is not None else []


@router.get("/cluster/members", responses=_ERRORS)
def cluster_members(
    svc: Svc,
    _: Caller,
    namespace: Annotated[str | None, Query(description="Namespace code, e.g. Email.")] = None,
    nsid: Annotated[str | None, Query(description="Numeric namespace id, e.g. 6.")] = None,
    given_id: Annotated[
        str | None, Query(alias="id", description="The id in the namespace.")
    ] = None,
    xid: Annotated[str | None, Query(description="Not served: Koppla has no XIDs.")] = None,
    graph_type: Annotated[str | None, Query(alias="graph-type", description="Ignored.")] = None,
) -> Response:
    """The identities linked to one identity (AEP's deprecated cluster API)."""

    def make() -> dict[str, Any]:
        if xid is not None:
            raise Invalid("xid: Koppla has no XIDs; give namespace (or nsid) and id")
        if not given_id:
            raise Invalid("id: the id in the namespace is required")
        symbol = _namespace(namespace, nsid, "namespace")
        spelling = "namespace" if namespace else "nsid"
        asked = (
            {"namespace": namespace, "id": given_id}
            if namespace
            else {"nsid": int(str(nsid)), "id": given_id}
        )
        members = _members(svc.lookup, normalise(symbol, given_id))
        if not members:
            return {
                "version": "1.1.0",
                "clusters": [],
                "unprocessedRecords": [asked],
                "algo_type": ALGO_TYPE,
            }
        spelt = [_spelt(m.identity, spelling, "namespace") for m in members]
        return {
            "version": "1.1.0",
            "clusters": [{"compositeXid": asked, "members": spelt}],
            "unprocessedRecords": [],
            "algo_type": ALGO_TYPE,
        }

    return _answer(make)


@router.post("/v2/graph", responses=_ERRORS)
def graphs(
    svc: Svc,
    _: Caller,
    body: Annotated[
        dict[str, Any],
        Body(description="`composite_xids` (`ns` or `nsid`, `id`), `projection_type`."),
    ],
) -> Response:
    """The linked identities of each identity asked about, as a set or as a graph."""

    def make() -> dict[str, Any]:
        projection = body.get("projection_type")
        if projection not in ("set", "graph"):
            raise Invalid("Graph Request Invalid - projection types available are [graph|set].")
        if "xids" in body:
            raise Invalid("xids: Koppla has no XIDs; send composite_xids with ns (or nsid) and id")
        asked = _composite_xids(body.get("composite_xids"))
        lookup = svc.lookup
        found: list[dict[str, Any]] = []
        unprocessed: list[Mapping[str, Any]] = []
        for item, identity, spelling in asked:
            members = _members(lookup, identity)
            if not members:
                unprocessed.append(item)
            elif projection == "set":
                found.append({"composite_xid": item, "members": _set(members, spelling)})
            else:
                found.append({"composite_xid": item, **_graph(lookup, members, spelling)})
        return {
            "version": "2.0",
            "graphs": found,
            "unprocessed_composite_xids": unprocessed,
            "algo_type": ALGO_TYPE,
        }

    return _answer(make)


def _composite_xids(value: object) -> list[tuple[Mapping[str, Any], Identity | None, Spelling]]:
    """Each asked identity, as sent, normalised (None when unusable), and how it was spelt."""
    if not isinstance(value, list) or not value:
        raise Invalid("composite_xids: a non-empty list of {ns or nsid, id} is required")
    if len(value) > MAX_XIDS:
        raise Invalid(f"composite_xids: at most {MAX_XIDS} per request, got {len(value)}")
    out: list[tuple[Mapping[str, Any], Identity | None, Spelling]] = []
    for n, item in enumerate(value):
        field = f"composite_xids[{n}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise Invalid(f"{field}: an object with a string id is required")
        symbol = _namespace(item.get("ns"), item.get("nsid"), field)
        spelling = "namespace" if item.get("ns") else "nsid"
        out.append((item, normalise(symbol, item["id"]), spelling))
    return out


def _set(members: Sequence[Member], spelling: Spelling) -> list[dict[str, Any]]:
    return [_spelt(m.identity, spelling, "ns") for m in members]


def _graph(lookup: ProfileLookup, members: Sequence[Member], spelling: Spelling) -> dict[str, Any]:
    """The vertices and active edges of the graph `members` make up."""
    links = lookup.links(members)
    vertices = [
        {"composite_xid": _spelt(m.identity, spelling, "ns"), "last_updated_ts": m.last_ms}
        for m in members
    ]
    edges = [
        {
            "composite_xid_pair": [_spelt(link.a, spelling, "ns"), _spelt(link.b, spelling, "ns")],
            "first_established_ts": link.first_ms,
            "last_established_ts": link.last_ms,
        }
        for link in links
        if link.active
    ]
    return {"vertices": vertices, "edges": edges}
