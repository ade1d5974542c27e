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


async def test_parameters_may_come_in_the_query_string_except_secrets(
    client: httpx.AsyncClient, demo: Datastream, services: Services
) -> None:
    """Adobe documents `POST /ims/token/v3?client_id=...` with the rest in the form."""
    credential, secret = services.catalog.create_credential("c")
    query = {"client_id": credential.client_id, "scope": "openid"}
    form = {"grant_type": "client_credentials", "client_secret": secret}

    answer = await client.post(TOKEN_URL, params=query, data=form)
    in_url = await client.post(
        TOKEN_URL,
        params={"client_secret": secret},
        data={"grant_type": "client_credentials", "client_id": credential.client_id},
    )

    assert answer.status_code == 200, answer.text
    headers = {"authorization": f"Bearer {answer.json()['access_token']}"}
    assert (await client.get("/api/v1/datasets", headers=headers)).status_code == 200
    assert in_url.status_code == 400
    assert in_url.json() == {
        "error": "invalid_request",
        "error_description": "client_secret must be sent in the form-encoded body, "
        "never in the URL",
    }


async def test_v2_is_served_by_the_same_handler_for_multipart_forms(
    client: httpx.AsyncClient, demo: Datastream, services: Services
) -> None:
    """`@adobe/aio-lib-ims` posts `multipart/form-data` (the form-data package) to v2."""
    credential, secret = services.catalog.create_credential("c")
    fields = {
        "grant_type": "client_credentials",
        "client_id": credential.client_id,
        "client_secret": secret,
        "scope": "openid,AdobeID",
    }
    boundary = "----koppla-test-boundary"
    body = (
        "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        )
        + f"--{boundary}--\r\n"
    )

    answer = await client.post(
        "/ims/token/v2",
        content=body.encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    wrong = await client.post("/ims/token/v2", data={**fields, "client_secret": "nope"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "bearer" and answer.json()["expires_in"] == 86399
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")


@pytest.mark.parametrize(
    ("body", "query"),
    [
        ("grant_type=client_credentials&client_id=x&client_id={id}&client_secret={secret}", ""),
        ("grant_type=client_credentials&client_id={id}&client_secret={secret}", "client_id={id}"),
        ("grant_type=client_credentials&client_id={id}&client_secret={secret}&client_secret=x", ""),
    ],
)
async def test_a_repeated_parameter_is_an_invalid_request_not_last_wins(
    client: httpx.AsyncClient, demo: Datastream, services: Services, body: str, query: str
) -> None:
    """RFC 6749 §3.1: request parameters must not be included more than once."""
    credential, secret = services.catalog.create_credential("c")
    sent = body.format(id=credential.client_id, secret=secret)
    url = TOKEN_URL + ("?" + query.format(id=credential.client_id) if query else "")

    answer = await client.post(
        url, content=sent, headers={"content-type": "application/x-www-form-urlencoded"}
    )

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert "was sent 2 times: send each parameter once" in answer.json()["error_description"]
    assert secret not in answer.text


@pytest.mark.parametrize(
    ("body", "query"),
    [
        ("grant_type=client_credentials&client_id=&client_id={id}&client_secret={secret}", ""),
        ("grant_type=client_credentials&client_id=&client_secret={secret}", "client_id={id}"),
    ],
)
async def test_a_parameter_sent_empty_counts_as_not_sent(
    client: httpx.AsyncClient, demo: Datastream, services: Services, body: str, query: str
) -> None:
    """RFC 6749 §3.1: parameters sent without a value are treated as omitted."""
    credential, secret = services.catalog.create_credential("c")
    url = TOKEN_URL + ("?" + query.format(id=credential.client_id) if query else "")
    answer = await client.post(
        url,
        content=body.format(id=credential.client_id, secret=secret),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("path", [TOKEN_URL, "/ims/token/v2", "/ims/exchange/jwt"])
async def test_a_file_in_a_text_field_is_an_invalid_request_that_echoes_nothing(
    client: httpx.AsyncClient, demo: Datastream, path: str
) -> None:
    answer = await client.post(
        path,
        data={"grant_type": "client_credentials", "client_secret": "s3cret-value"},
        files={"client_id": ("upload-name.txt", b"file contents here", "text/plain")},
    )

    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_request",
        "error_description": "client_id must be text, not a file",
    }
    for sent in ("upload-name", "file contents", "s3cret", "input"):
        assert sent not in answer.text


async def test_an_unreadable_form_is_an_invalid_request(
    client: httpx.AsyncClient, demo: Datastream
) -> None:
    answer = await client.post(
        TOKEN_URL,
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\nno name, no end",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
