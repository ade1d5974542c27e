"""Test connection: what the service account page's button does, step by step.

With a service account's credentials, the connector (1) fetches an access token from the IMS
endpoint of the platform (`POST {platform}/ims/token/v3`, OAuth client credentials), then (2)
calls the platform as Adobe's API clients do (`GET /data/foundation/catalog/dataSets` with
`Authorization`, `x-api-key`, `x-gw-ims-org-id` and `x-sandbox-name`). The outcome says exactly
what failed: the platform unreachable, a wrong client secret, a wrong organization, a missing
scope, or another refusal with the platform's own words. Secrets are never part of a message.

Each step has `CONNECTION_TIMEOUT_S` in all (a server that trickles its answer is `unreachable`
once it runs out), and an answer is read up to `MAX_ANSWER_BYTES` only (a bigger one is
`not_a_platform`): the button makes this server call an address a person typed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from koppla.core import clock, codec

CONNECTION_TIMEOUT_S = 15.0
"""The longest one step of Test connection (fetching the token, calling the platform) takes."""
MAX_ANSWER_BYTES = 1024 * 1024
"""The most of one answer Test connection reads (1 MiB)."""
TOKEN_PATH = "/ims/token/v3"
JWT_PATH = "/ims/exchange/jwt"
JWT_LIFETIME_S = 300
CATALOG_PATH = "/data/foundation/catalog/dataSets"

Problem = Literal[
    "unreachable", "wrong_secret", "wrong_org", "missing_scope", "not_a_platform", "refused"
]

StepName = Literal["token", "platform", "organization"]


@dataclass(frozen=True, slots=True)
class ServiceCredentials:
    """What a connection test needs of a service account (the secret is never shown)."""

    client_id: str
    client_secret: str = field(repr=False)
    org_id: str
    scopes: tuple[str, ...]
    auth_type: str = "oauth_server_to_server"
    technical_account_id: str = ""
    private_key: str = field(default="", repr=False)
    """The deprecated JWT kind only: the PEM private key that signs the JWT."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the test: what it did, whether it worked, what it found."""

    name: StepName
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """The outcome: `ok`, and when not, which `problem` and the steps that ran."""

    ok: bool
    problem: Problem | None
    message: str
    steps: tuple[Step, ...]

    def as_json(self) -> dict[str, Any]:
        """The report as the API answers it."""
        return {
            "ok": self.ok,
            "problem": self.problem,
            "message": self.message,
            "steps": [{"name": s.name, "ok": s.ok, "message": s.message} for s in self.steps],
        }


@dataclass(frozen=True, slots=True)
class _Answer:
    """What an endpoint answered: its status, reason phrase and JSON object (`{}` if none)."""

    status: int
    reason: str
    body: dict[str, Any]


class _Failed(Exception):
    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


async def check_connection(
    client: httpx.AsyncClient,
    platform_url: str,
    credentials: ServiceCredentials,
    *,
    sandbox: str = "prod",
    expected_org: str = "",
    timeout_s: float = CONNECTION_TIMEOUT_S,
) -> ConnectionReport:
    """Fetch a token with `credentials` and call the platform at `platform_url` with it.

    `expected_org` is the organization the Data Connection settings name; a credential of
    another organization is reported as `wrong_org`. Each step may take `timeout_s` in all.
    """
    base = platform_url.rstrip("/")
    steps: list[Step] = []
    try:
        async with _deadline(timeout_s, base):
            token, expires_in = await _token(client, base, credentials)
        steps.append(Step("token", True, f"access token fetched (valid {expires_in} s)"))
        async with _deadline(timeout_s, base):
            count = await _datasets(client, base, credentials, token, sandbox)
        steps.append(
            Step(
                "platform",
                True,
                f"the platform answered: {count} dataset(s) in organization "
                f"{credentials.org_id}, sandbox {sandbox}",
            )
        )
        if expected_org and expected_org != credentials.org_id:
            raise _Failed(
                "wrong_org",
                f"wrong organization: the credential belongs to {credentials.org_id}, but the "
                f"Data Connection settings name {expected_org}",
            )
    except _Failed as failed:
        names: tuple[StepName, ...] = ("token", "platform", "organization")
        steps.append(Step(names[min(len(steps), 2)], False, failed.message))
        return ConnectionReport(False, failed.problem, failed.message, tuple(steps))
    return ConnectionReport(True, None, "connection works: " + steps[-1].message, tuple(steps))


async def _token(
    client: httpx.AsyncClient, base: str, credentials: ServiceCredentials
) -> tuple[str, int]:
    """`(access token, seconds it lasts)` from the IMS endpoint; `_Failed` saying why not."""
    if credentials.auth_type == "jwt":
        url = base + JWT_PATH
        form = {
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "jwt_token": _signed_jwt(base, credentials),
        }
    else:
        url = base + TOKEN_PATH
        form = {
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "scope": ",".join(credentials.scopes),
        }
    answer = await _send(client, "POST", url, data=form)
    body = answer.body
    if answer.status == 200 and isinstance(body.get("access_token"), str):
        lasts = _seconds(body.get("expires_in"))
        return body["access_token"], lasts // 1000 if credentials.auth_type == "jwt" else lasts
    error = str(body.get("error") or "")
    said = str(body.get("error_description") or body.get("detail") or answer.reason)
    if error == "invalid_client":
        raise _Failed(
            "wrong_secret",
            f"wrong client secret (or client id): {url} refused the credentials ({said})",
        )
    if error == "invalid_scope":
        raise _Failed("missing_scope", f"missing scope: the credential lacks a scope ({said})")
    if answer.status in (404, 405) or not body:
        raise _Failed(
            "not_a_platform",
            f"{url} answered {answer.status} without a token: is {base} the platform's address?",
        )
    raise _Failed("refused", f"the token request was refused ({answer.status} {error}: {said})")


def _seconds(value: object) -> int:
    """`expires_in` as a whole number of seconds (milliseconds for JWT); 0 unless an int."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _signed_jwt(base: str, credentials: ServiceCredentials) -> str:
    """The deprecated service-account JWT: signed (RS256) with the private key pasted with the
    workspace; `_Failed` when there is no usable key."""
    import jwt

    if not credentials.private_key.strip():
        raise _Failed(
            "refused",
            "a JWT credential needs its private key (paste it with the workspace); JWT is "
            "deprecated: prefer an OAuth server-to-server credential",
        )
    claims = {
        "exp": clock.now_ms() // 1000 + JWT_LIFETIME_S,
        "iss": credentials.org_id,
        "sub": credentials.technical_account_id,
        "aud": f"{base}/c/{credentials.client_id}",
    }
    try:
        return jwt.encode(claims, credentials.private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as error:
        raise _Failed("refused", f"the private key cannot sign a JWT: {error}") from None


async def _datasets(
    client: httpx.AsyncClient,
    base: str,
    credentials: ServiceCredentials,
    token: str,
    sandbox: str,
) -> int:
    """How many datasets the platform lists to this token; `_Failed` saying why not."""
    headers = {
        "authorization": f"Bearer {token}",
        "x-api-key": credentials.client_id,
        "x-gw-ims-org-id": credentials.org_id,
        "x-sandbox-name": sandbox,
    }
    answer = await _send(client, "GET", base + CATALOG_PATH, headers=headers)
    body = answer.body
    if answer.status == 200:
        return len(body)
    said = str(body.get("detail") or body.get("message") or answer.reason)
    lowered = said.lower()
    if answer.status == 403 and "organization" in lowered:
        raise _Failed("wrong_org", f"wrong organization: the platform said {said}")
    if answer.status == 403 and "scope" in lowered:
        raise _Failed("missing_scope", f"missing scope: the platform said {said}")
    raise _Failed("refused", f"the platform refused the call ({answer.status}): {said}")


@asynccontextmanager
async def _deadline(seconds: float, base: str) -> AsyncIterator[None]:
    """Run the block for at most `seconds`; `_Failed` ("unreachable") when it takes longer."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise _Failed(
            "unreachable", f"unreachable: {base} did not answer within {seconds:g} s"
        ) from None


async def _send(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> _Answer:
    """Send a request and read at most `MAX_ANSWER_BYTES` of its answer."""
    try:
        async with client.stream(method, url, **kwargs) as response:
            content = await _read(response, url)
    except httpx.TransportError as error:
        reason = str(error) or type(error).__name__
        raise _Failed("unreachable", f"unreachable: no answer from {url} ({reason})") from None
    return _Answer(response.status_code, response.reason_phrase, _json(content))


async def _read(response: httpx.Response, url: str) -> bytes:
    """The answer's body; `_Failed` ("not_a_platform") once it passes `MAX_ANSWER_BYTES`."""
    content = bytearray()
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) > MAX_ANSWER_BYTES:
            raise _Failed(
                "not_a_platform",
                f"{url} answered with more than {MAX_ANSWER_BYTES // 1024} KiB: is it the "
                "platform's address?",
            )
    return bytes(content)


def _json(content: bytes) -> dict[str, Any]:
    try:
        body = codec.loads(content)
    except codec.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}
