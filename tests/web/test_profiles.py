"""Profile lookups in AEP's shapes, merge policies, and Koppla's JSON twin."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx
import pytest

from koppla.platform.profiles.observation import Kind, observe
from koppla.platform.profiles.policies import PolicyBook
from koppla.platform.profiles.stage import ProfileStage
from koppla.platform.profiles.store import ProfileStore
from koppla.web.services import Services

pytestmark = pytest.mark.anyio

ENTITIES = "/data/core/ups/access/entities"
POLICIES = "/data/core/ups/config/mergePolicies"
PROFILE = {"schema.name": "_xdm.context.profile"}
EVENTS = {
    "schema.name": "_xdm.context.experienceevent",
    "relatedSchema.name": "_xdm.context.profile",
}
DAY = 86_400_000
JAN_1 = 1_767_225_600_000
"""2026-01-01T00:00:00Z in epoch milliseconds."""


def event(event_id: str, day: int, event_type: str, ids: Mapping[str, str], **xdm: Any) -> Any:
    """An ExperienceEvent row on 2026-01-(1 + day), its first identity primary."""
    identity_map = {ns: [{"id": value}] for ns, value in ids.items()}
    first = next(iter(identity_map))
    identity_map[first][0]["primary"] = True
    stamp = f"2026-01-{1 + day:02d}T00:00:00.000Z"
    body = {"_id": event_id, "timestamp": stamp, "eventType": event_type, **xdm}
    return "ds-events", "event", {**body, "identityMap": identity_map}


ANN = [
    event(
        "e1",
        0,
        "commerce.productViews",
        {"ECID": "111", "Email": "Ann@Example.com"},
        productListItems=[{"SKU": "MJ01", "quantity": 1}],
    ),
    event(
        "e2",
        1,
        "commerce.backofficeOrderPlaced",
        {"CustomerId": "42", "Email": "ann@example.com"},
        commerce={"order": {"purchaseID": "100000001", "priceTotal": 50.0, "currencyCode": "EUR"}},
    ),
    event(
        "e3",
        2,
        "web.webpagedetails.pageViews",
        {"ECID": "111"},
        web={"webPageDetails": {"name": "Jackets"}},
    ),
    (
        "ds-profiles",
        "record",
        {
            "_id": "r1",
            "identityMap": {"CustomerId": [{"id": "42", "primary": True}]},
            "person": {"name": {"firstName": "Ann", "lastName": "Example"}},
            "personalEmail": {"address": "ann@example.com"},
            "extSourceSystemAudit": {"lastUpdatedDate": "2026-01-03T00:00:00Z"},
        },
    ),
]
BOB = [event("b1", 0, "commerce.productViews", {"ECID": "222"})]
SHARED_DEVICE = [
    event("s1", 0, "commerce.productViews", {"ECID": "333", "CustomerId": "1"}),
    event("s2", 1, "commerce.productViews", {"ECID": "333", "CustomerId": "2"}),
]


def seed(store: ProfileStore, rows: Iterable[tuple[str, Kind, Mapping[str, Any]]]) -> None:
    """Feed rows of profile-enabled datasets straight into the profile stage."""
    stage = ProfileStage(store, policy=PolicyBook(store).default)
    found = [observe(dataset, kind, body, stored_ms=JAN_1) for dataset, kind, body in rows]
    stage.apply([o for o in found if o is not None], {})


@pytest.fixture
def auth(services: Services) -> dict[str, str]:
    """Ann, Bob and a shared device in the profile store, and a token's header."""
    seed(services.profiles, [*ANN, *BOB, *SHARED_DEVICE])
    return {"authorization": f"Bearer {services.catalog.add_token('t')}"}


async def _profile(client: httpx.AsyncClient, auth: dict[str, str], **params: str) -> Any:
    response = await client.get(ENTITIES, params={**PROFILE, **params}, headers=auth)
    assert response.status_code == 200, response.text
    (profile_id, entity), *others = response.json().items()
    assert others == []
    assert entity["entityId"] == profile_id
    return entity


async def test_a_profile_merges_records_and_events_of_every_linked_identity(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    ann = await _profile(client, auth, entityId="ANN@example.com", entityIdNS="email")
    assert ann["entity"]["person"]["name"] == {"firstName": "Ann", "lastName": "Example"}
    assert sorted(ann["identityGraph"]) == ["CustomerId:42", "ECID:111", "Email:ann@example.com"]
    identities = {(i["namespace"]["code"], i["id"]) for i in ann["entity"]["identities"]}
    assert identities == {("ECID", "111"), ("Email", "ann@example.com"), ("CustomerId", "42")}
    assert ann["sources"] == ["ds-profiles"]
    assert ann["lastModifiedAt"].endswith("Z")
    computed = ann["computedAttributes"]
    assert (computed["orders"], computed["lifetimeValue"]) == (1, 50.0)
    assert (computed["firstSeen"], computed["lastSeen"]) == (
        "2026-01-01T00:00:00.000Z",
        "2026-01-03T00:00:00.000Z",
    )

    by_ecid = await _profile(client, auth, entityId="111", entityIdNS="ECID")
    by_profile_id = await _profile(client, auth, entityId=ann["entityId"])
    assert by_ecid["entityId"] == by_profile_id["entityId"] == ann["entityId"]
    default = (await client.get(POLICIES, params={"default": "true"}, headers=auth)).json()
    assert ann["mergePolicy"] == {"id": default["children"][0]["id"]}


async def test_fields_keep_only_the_paths_asked_for(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    ann = await _profile(
        client, auth, entityId="42", entityIdNS="CustomerId", fields="person.name.firstName,nope.x"
    )
    assert ann["entity"] == {"person": {"name": {"firstName": "Ann"}}}


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"entityIdNS": "email"}, 400, "entityId"),
        ({"entityId": " ", "entityIdNS": "email"}, 400, "entityId"),
        (
            {"entityId": "a@b.c", "entityIdNS": "email", "mergePolicyId": "nope"},
            422,
            "mergePolicyId",
        ),
        ({"schema.name": "_xdm.context.account", "entityId": "1"}, 422, "schema.name"),
        ({"schema.name": ""}, 400, "schema.name"),
        (
            {**EVENTS, "relatedEntityId": "111", "relatedEntityIdNS": "ECID", "orderby": "x"},
            400,
            "orderby",
        ),
        (
            {**EVENTS, "relatedEntityId": "111", "relatedEntityIdNS": "ECID", "limit": "0"},
            400,
            "limit",
        ),
        (
            {**EVENTS, "relatedSchema.name": "x", "relatedEntityId": "111"},
            422,
            "relatedSchema.name",
        ),
    ],
)
async def test_a_wrong_parameter_is_named(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, str], status: int, field: str
) -> None:
    response = await client.get(ENTITIES, params={**PROFILE, **params}, headers=auth)
    assert response.status_code == status
    body = response.json()
    assert (body["statusCode"], body["field"]) == (str(status), field)
    assert body["message"] == body["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {**PROFILE, "entityId": "nobody@example.com", "entityIdNS": "Email"},
        {**PROFILE, "entityId": "no-such-profile-id"},
        {**EVENTS, "relatedEntityId": "999", "relatedEntityIdNS": "ECID"},
    ],
)
async def test_an_unknown_profile_is_404_with_an_aep_like_body(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, str]
) -> None:
    response = await client.get(ENTITIES, params=params, headers=auth)
    assert response.status_code == 404
    assert response.json()["statusCode"] == "404"
    assert "no profile" in response.json()["message"]


async def _walk(client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, str]) -> Any:
    """Every event of every page, following `_links.next.href`; and the page sizes."""
    response = await client.get(ENTITIES, params=params, headers=auth)
    seen, sizes = [], []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [(c["entityId"], c["timestamp"]) for c in page["children"]]
        sizes.append(page["_page"]["count"])
        href = page["_links"]["next"]["href"]
        if not href:
            assert page["_page"]["next"] == ""
            return seen, sizes
        response = await client.get(href, headers=auth)


async def test_a_profiles_events_come_in_pages_in_either_order(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    ask = {**EVENTS, "relatedEntityId": "ann@example.com", "relatedEntityIdNS": "email"}
    seen, sizes = await _walk(client, auth, {**ask, "limit": "2"})
    assert seen == [("e1", JAN_1), ("e2", JAN_1 + DAY), ("e3", JAN_1 + 2 * DAY)]
    assert sizes == [2, 1]
    newest, _ = await _walk(client, auth, {**ask, "limit": "1", "orderby": "-timestamp"})
    assert [e for e, _ in newest] == ["e3", "e2", "e1"]
    window, _ = await _walk(
        client, auth, {**ask, "startTime": str(JAN_1 + DAY), "endTime": str(JAN_1 + 2 * DAY)}
    )
    assert window == [("e2", JAN_1 + DAY)]

    response = await client.get(ENTITIES, params={**ask, "limit": "1"}, headers=auth)
    (child,) = response.json()["children"]
    assert child["entity"]["eventType"] == "commerce.productViews"
    ann = await _profile(client, auth, entityId="111", entityIdNS="ECID")
    assert child["relatedEntityId"] == ann["entityId"]


async def test_paging_through_events_with_one_timestamp_shows_each_once(
    client: httpx.AsyncClient, services: Services, auth: dict[str, str]
) -> None:
    same_time = [event(f"t{n}", 5, "commerce.productViews", {"ECID": "777"}) for n in range(5)]
    seed(services.profiles, same_time)
    ask = {**EVENTS, "relatedEntityId": "777", "relatedEntityIdNS": "ECID"}
    for order in ("+timestamp", "-timestamp"):
        seen, sizes = await _walk(client, auth, {**ask, "limit": "2", "orderby": order})
        assert sorted(e for e, _ in seen) == ["t0", "t1", "t2", "t3", "t4"]
        assert sizes == [2, 2, 1]


async def test_several_identities_at_once_give_each_profile_once(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {
        "schema": {"name": "_xdm.context.profile"},
        "fields": ["person.name", "identities"],
        "identities": [
            {"entityId": "111", "entityIdNS": {"code": "ECID"}},
            {"entityId": "42", "entityIdNS": {"code": "CustomerId"}},
            {"entityId": "222", "entityIdNS": {"code": "ecid"}},
            {"entityId": "nobody@example.com", "entityIdNS": {"code": "Email"}},
        ],
    }
    response = await client.post(ENTITIES, json=body, headers=auth)
    assert response.status_code == 200
    profiles = list(response.json().values())
    assert [p["requestedIdentity"]["entityId"] for p in profiles] == ["111", "222"]
    assert profiles[0]["entity"]["person"] == {"name": {"firstName": "Ann", "lastName": "Example"}}
    assert set(profiles[1]["entity"]) == {"identities"}

    nobody = {**body, "identities": body["identities"][3:]}
    assert (await client.post(ENTITIES, json=nobody, headers=auth)).status_code == 404
    broken = {**body, "identities": [{"entityIdNS": {"code": "ECID"}}]}
    refused = await client.post(ENTITIES, json=broken, headers=auth)
    assert (refused.status_code, refused.json()["field"]) == (400, "identities[0].entityId")
    empty = await client.post(ENTITIES, json={**body, "identities": []}, headers=auth)
    assert (empty.status_code, empty.json()["field"]) == (400, "identities")


async def test_merge_policies_can_be_made_changed_and_removed(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    listed = (await client.get(POLICIES, headers=auth)).json()
    (builtin,) = listed["children"]
    assert (builtin["default"], listed["_page"]["count"]) == (True, 1)

    wrong = {"name": "x", "schema": {"name": "_xdm.context.profile"}}
    wrong |= {"identityGraph": {"type": "pdg"}, "attributeMerge": {"type": "newest"}}
    refused = await client.post(POLICIES, json=wrong, headers=auth)
    assert (refused.status_code, refused.json()["field"]) == (400, "attributeMerge.type")

    body = {**wrong, "name": "profiles first", "identityGraph": {"type": "none"}}
    body["attributeMerge"] = {"type": "dataSetPrecedence", "order": ["ds-profiles"]}
    created = await client.post(POLICIES, json=body, headers=auth)
    assert created.status_code == 200
    policy = created.json()
    assert (policy["default"], policy["attributeMerge"]["order"]) == (False, ["ds-profiles"])
    url = f"{POLICIES}/{policy['id']}"
    assert (await client.get(url, headers=auth)).json() == policy

    alone = await _profile(
        client, auth, entityId="ann@example.com", entityIdNS="Email", mergePolicyId=policy["id"]
    )
    assert alone["identityGraph"] == ["Email:ann@example.com"]
    assert alone["mergePolicy"] == {"id": policy["id"]}

    renamed = (await client.put(url, json={"name": "renamed"}, headers=auth)).json()
    assert (renamed["name"], renamed["version"]) == ("renamed", 2)
    patch = [{"op": "add", "path": "/identityGraph.type", "value": "pdg"}]
    patched = (await client.patch(url, json=patch, headers=auth)).json()
    assert (patched["identityGraph"], patched["version"]) == ({"type": "pdg"}, 3)
    bad_patch = [{"op": "remove", "path": "/name"}]
    assert (await client.patch(url, json=bad_patch, headers=auth)).json()["field"] == "[0]"

    builtin_url = f"{POLICIES}/{builtin['id']}"
    assert (await client.delete(builtin_url, headers=auth)).status_code == 409
    unset = await client.put(builtin_url, json={"default": False}, headers=auth)
    assert unset.status_code == 409
    make_default = [{"op": "replace", "path": "/default", "value": True}]
    assert (await client.patch(url, json=make_default, headers=auth)).json()["default"] is True
    defaults = (await client.get(POLICIES, params={"default": "true"}, headers=auth)).json()
    assert [p["id"] for p in defaults["children"]] == [policy["id"]]
    assert (await client.delete(builtin_url, headers=auth)).status_code == 200
    assert (await client.get(builtin_url, headers=auth)).status_code == 404


async def test_merge_policies_come_in_pages(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {"schema": {"name": "_xdm.context.profile"}, "identityGraph": {"type": "pdg"}}
    body["attributeMerge"] = {"type": "timestampOrdered"}
    for n in range(3):
        await client.post(POLICIES, json={**body, "name": f"p{n}"}, headers=auth)
    first = (await client.get(POLICIES, params={"limit": "2"}, headers=auth)).json()
    assert (first["_page"]["totalCount"], first["_page"]["count"]) == (4, 2)
    second = (await client.get(first["_links"]["next"]["href"], headers=auth)).json()
    names = [p["name"] for p in first["children"] + second["children"]]
    assert names[1:] == ["p0", "p1", "p2"]
    assert second["_links"]["next"]["href"] == ""


async def test_the_json_twin_shows_profile_identities_events_and_hits(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.get(
        "/api/v1/profiles/email%3AAnn%40Example.com", params={"limit": 2}, headers=auth
    )
    assert response.status_code == 200
    ann = response.json()
    assert ann["attributes"]["person"]["name"]["firstName"] == "Ann"
    assert [e["id"] for e in ann["events"]] == ["e3", "e2"]
    assert ann["events"][1]["summary"] == "order 100000001 50.0 EUR"
    assert {i["namespace"] for i in ann["identities"]} == {"ECID", "Email", "CustomerId"}
    assert ann["computedAttributes"]["orders"] == 1
    assert ann["guardrailHits"] == []

    # CustomerId 1 lost the shared device to CustomerId 2: the hit is filed on its profile
    kept_out = (await client.get("/api/v1/profiles/customerid:1", headers=auth)).json()
    assert [i["namespace"] for i in kept_out["identities"]] == ["CustomerId"]
    (hit,) = kept_out["guardrailHits"]
    assert (hit["kind"], hit["identity"]) == (
        "namespace_limit",
        {"namespace": "CustomerId", "id": "1"},
    )
    hits = (await client.get("/api/v1/profiles/guardrails", headers=auth)).json()["hits"]
    assert [h["kind"] for h in hits] == ["namespace_limit"]

    unknown = await client.get("/api/v1/profiles/email:nobody@example.com", headers=auth)
    assert unknown.status_code == 404
    malformed = await client.get("/api/v1/profiles/annexample.com", headers=auth)
    assert (malformed.status_code, malformed.json()["field"]) == (400, "identity")


async def test_hostile_parameters_are_refused_not_crashed_on(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    events = {
        "schema.name": "_xdm.context.experienceevent",
        "relatedSchema.name": "_xdm.context.profile",
        "relatedEntityId": "111",
        "relatedEntityIdNS": "ECID",
    }
    for extra in ({"start": "².1"}, {"start": "1.99999999999999999999"}, {"startTime": "9" * 30}):
        response = await client.get(ENTITIES, params={**events, **extra}, headers=auth)
        assert response.status_code == 400, (extra, response.text)
    body = {
        "schema": {"name": "_xdm.context.profile"},
        "identities": [{"entityId": "111", "entityIdNS": {"code": 5}}],
    }
    assert (await client.post(ENTITIES, json=body, headers=auth)).status_code == 400
    numbered = {
        **body,
        "fields": 5,
        "identities": [{"entityId": "111", "entityIdNS": {"code": "ECID"}}],
    }
    assert (await client.post(ENTITIES, json=numbered, headers=auth)).status_code == 400
