"""Identity graphs in AEP Identity Service shapes: cluster members and the v2 graph API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from koppla.web.services import Services
from tests.web.test_profiles import ANN, SHARED_DEVICE, seed

pytestmark = pytest.mark.anyio

MEMBERS = "/data/core/identity/cluster/members"
GRAPH = "/data/core/identity/v2/graph"
JAN_1 = 1_767_225_600_000
DAY = 86_400_000


@pytest.fixture
def auth(services: Services) -> dict[str, str]:
    """Ann (ECID, Email, CustomerId) and a device two customers shared, and a token's header."""
    seed(services.profiles, [*ANN, *SHARED_DEVICE])
    return {"authorization": f"Bearer {services.catalog.add_token('t')}"}


async def test_cluster_members_spell_identities_as_the_request_did(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    by_code = await client.get(
        MEMBERS, params={"namespace": "email", "id": "ANN@example.com"}, headers=auth
    )
    assert by_code.status_code == 200
    body = by_code.json()
    (cluster,) = body["clusters"]
    assert cluster["compositeXid"] == {"namespace": "email", "id": "ANN@example.com"}
    assert sorted((m["namespace"], m["id"]) for m in cluster["members"]) == [
        ("CustomerId", "42"),
        ("ECID", "111"),
        ("Email", "ann@example.com"),
    ]
    assert (body["unprocessedRecords"], body["version"]) == ([], "1.1.0")

    by_nsid = await client.get(
        MEMBERS, params={"nsid": "4", "id": "111", "graph-type": "pdg"}, headers=auth
    )
    (cluster,) = by_nsid.json()["clusters"]
    assert cluster["compositeXid"] == {"nsid": 4, "id": "111"}
    assert sorted((m["nsid"], m["id"]) for m in cluster["members"]) == [
        (4, "111"),
        (6, "ann@example.com"),
        (1000001, "42"),
    ]


async def test_an_identity_never_seen_is_unprocessed(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = (await client.get(MEMBERS, params={"nsid": 4, "id": "999"}, headers=auth)).json()
    assert (body["clusters"], body["unprocessedRecords"]) == ([], [{"nsid": 4, "id": "999"}])


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"xid": "HHDAHDKYYD"}, "xid"),
        ({"namespace": "Email"}, "id"),
        ({"nsid": "411", "id": "x"}, "nsid 411"),
        ({"nsid": "six", "id": "x"}, "nsid must be a number"),
        ({"id": "x"}, "namespace"),
    ],
)
async def test_a_malformed_cluster_request_is_400_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, str], needle: str
) -> None:
    response = await client.get(MEMBERS, params=params, headers=auth)
    assert response.status_code == 400
    body = response.json()
    assert (body["title"], body["status"]) == ("InvalidInput", 400)
    assert needle in body["detail"]


async def test_the_graph_api_gives_sets_and_graphs_of_active_links(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    asked = [
        {"ns": "ECID", "id": "333"},
        {"nsid": 6, "id": "ann@example.com"},
        {"ns": "ECID", "id": "0"},
    ]
    sets = await client.post(
        GRAPH, json={"composite_xids": asked, "projection_type": "set"}, headers=auth
    )
    assert sets.status_code == 200
    device, ann = sets.json()["graphs"]
    assert device["composite_xid"] == {"ns": "ECID", "id": "333"}
    assert sorted((m["ns"], m["id"]) for m in device["members"]) == [
        ("CustomerId", "2"),
        ("ECID", "333"),
    ]
    assert len(ann["members"]) == 3 and {"nsid": 4, "id": "111"} in ann["members"]
    assert sets.json()["unprocessed_composite_xids"] == [{"ns": "ECID", "id": "0"}]

    graph = await client.post(
        GRAPH, json={"composite_xids": asked[:1], "projection_type": "graph"}, headers=auth
    )
    (device,) = graph.json()["graphs"]
    vertices = {(v["composite_xid"]["ns"], v["composite_xid"]["id"]) for v in device["vertices"]}
    assert vertices == {("ECID", "333"), ("CustomerId", "2")}
    assert all(isinstance(v["last_updated_ts"], int) for v in device["vertices"])
    (edge,) = device["edges"]  # the link to CustomerId 1 is inactive, so not an edge
    pair = sorted((x["ns"], x["id"]) for x in edge["composite_xid_pair"])
    assert pair == [("CustomerId", "2"), ("ECID", "333")]
    assert (edge["first_established_ts"], edge["last_established_ts"]) == (
        JAN_1 + DAY,
        JAN_1 + DAY,
    )


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"composite_xids": [{"ns": "ECID", "id": "1"}]}, "projection types available"),
        ({"xids": ["HHDAHDKYYD"], "projection_type": "set"}, "xids"),
        ({"composite_xids": [], "projection_type": "set"}, "composite_xids"),
        ({"composite_xids": [{"ns": "ECID"}], "projection_type": "set"}, "composite_xids[0]"),
    ],
)
async def test_a_malformed_graph_request_is_400(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], needle: str
) -> None:
    response = await client.post(GRAPH, json=body, headers=auth)
    assert response.status_code == 400
    assert needle in response.json()["detail"]
