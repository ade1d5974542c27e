"""The IMS-shaped token endpoint: client credentials → access tokens that act for one org."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from koppla.core import codec
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.workspace import parse_workspace, workspace_json
from koppla.web.services import Services

pytestmark = pytest.mark.anyio

TOKEN_URL = "/ims/token/v3"


async def _token(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post(TOKEN_URL, data={"grant_type": "client_credentials", **form})


async def test_client_credentials_buy_a_token_adobe_clients_can_use(
    client: httpx.AsyncClient, demo: Datastream, services: Services
) -> None:
    credential, secret = services.catalog.create_credential("connector")
    workspace = parse_workspace(codec.dumps(workspace_json(credential, secret)).decode())
    answer = await _token(
        client,
        client_id=workspace.client_id,
        client_secret=workspace.client_secret,
        scope="openid,AdobeID,read_organizations",
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 86399
    assert answer.headers["cache-control"] == "no-store"
    headers = {
        "authorization": f"Bearer {body['access_token']}",
        "x-api-key": workspace.client_id,
        "x-gw-ims-org-id": workspace.org_id,
        "x-sandbox-name": "prod",
    }
    datasets = await client.get("/data/foundation/catalog/dataSets", headers=headers)
    assert datasets.status_code == 200
    assert {d["name"] for d in datasets.json().values()} == {"demo_events", "demo_profiles"}
    wrong_key = await client.get(
        "/data/foundation/catalog/dataSets", headers={**headers, "x-api-key": "someone-else"}
    )
    assert wrong_key.status_code == 403

    services.catalog.revoke_credential(credential.client_id)
    revoked = await client.get("/data/foundation/catalog/dataSets", headers=headers)
    assert revoked.status_code == 401
    again = await _token(client, client_id=credential.client_id, client_secret=secret)
    assert again.status_code == 401


async def test_refusals_say_what_is_wrong_in_oauth_terms(
    client: httpx.AsyncClient, demo: Datastream, services: Services
) -> None:
    credential, secret = services.catalog.create_credential("c")
    wrong_secret = await _token(client, client_id=credential.client_id, client_secret="nope")
    unknown = await _token(client, client_id="unknown", client_secret=secret)
    for answer in (wrong_secret, unknown):
        assert answer.status_code == 401
        assert answer.json()["error"] == "invalid_client"
    scope = await _token(
        client, client_id=credential.client_id, client_secret=secret, scope="openid,admin"
    )
    assert scope.status_code == 400
    assert scope.json() == {"error": "invalid_scope", "error_description": "invalid scope: admin"}
    grant = await client.post(TOKEN_URL, data={"grant_type": "password"})
    assert grant.json()["error"] == "unsupported_grant_type"
    missing = await _token(client, client_id=credential.client_id)
    assert missing.json()["error"] == "invalid_request"


async def test_the_secret_is_stored_as_a_digest_only(demo: Datastream, services: Services) -> None:
    _, secret = services.catalog.create_credential("c")
    raw = services.layout.catalog.read_bytes()
    for suffix in ("-wal",):
        wal = services.layout.catalog.with_name(services.layout.catalog.name + suffix)
        if wal.exists():
            raw += wal.read_bytes()
    assert secret.encode() not in raw


async def test_the_deprecated_jwt_exchange_works_and_says_it_is_deprecated(
    client: httpx.AsyncClient, demo: Datastream, services: Services
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    credential, secret = services.catalog.create_credential(
        "legacy", auth_type="jwt", public_key_pem=public.decode()
    )
    claims = {
        "exp": int(time.time()) + 300,
        "iss": credential.org_id,
        "sub": credential.technical_account_id,
        "aud": f"https://ims-na1.adobelogin.com/c/{credential.client_id}",
    }
    form = {"client_id": credential.client_id, "client_secret": secret}
    good = await client.post(
        "/ims/exchange/jwt", data={**form, "jwt_token": jwt.encode(claims, key, "RS256")}
    )
    assert good.status_code == 200
    assert good.headers["deprecation"] == "true"
    assert "deprecated" in good.json()["warning"]
    auth = {"authorization": f"Bearer {good.json()['access_token']}"}
    assert (await client.get("/api/v1/datasets", headers=auth)).status_code == 200

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong_door = await _token(client, client_id=credential.client_id, client_secret=secret)
    assert wrong_door.status_code == 401  # a JWT credential's secret alone buys nothing
    assert "/ims/exchange/jwt" in wrong_door.json()["error_description"]

    forged = await client.post(
        "/ims/exchange/jwt", data={**form, "jwt_token": jwt.encode(claims, other_key, "RS256")}
    )
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_token"
    wrong_org = {**claims, "iss": "SOMEONEELSE0000000000000@AdobeOrg"}
    refused = await client.post(
        "/ims/exchange/jwt", data={**form, "jwt_token": jwt.encode(wrong_org, key, "RS256")}
    )
    assert refused.status_code == 400
