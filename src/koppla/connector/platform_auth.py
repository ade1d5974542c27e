"""How the connector proves who it is to the platform, the way Adobe's API clients do.

Every request carries `Authorization: Bearer <token>`, `x-gw-ims-org-id` (the organization of
the settings), `x-sandbox-name` and, with a service account, `x-api-key` (its client id). The
token is the configured API token (`KOPPLA_CONNECTOR_TOKEN`), or, with a service account
(`client_id` plus `KOPPLA_CONNECTOR_CLIENT_SECRET`), an access token fetched from the IMS token
endpoint with the OAuth client-credentials flow (`POST {ims_url}/ims/token/v3`), kept until a
minute before it expires and fetched again after a 401. So the same connector talks to Koppla
and to Adobe Experience Platform (`ims_url = https://ims-na1.adobelogin.com`).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable

import httpx

from koppla.connector.settings import ConnectorSettings
from koppla.core import clock, codec
from koppla.core.errors import TerminalError, TransientError
from koppla.core.tls import verify_for

TOKEN_PATH = "/ims/token/v3"
RENEW_BEFORE_S = 60.0


class AuthRefused(TerminalError):
    """The token endpoint refused the service account (wrong secret, missing scope)."""


class AuthUnavailable(TransientError):
    """The token endpoint could not be reached or answered with a server error."""


class PlatformAuth:
    """The headers of the connector's platform requests; thread-safe."""

    def __init__(
        self,
        *,
        token: str = "",
        org_id: str = "",
        sandbox: str = "prod",
        client_id: str = "",
        client_secret: str = "",
        scopes: tuple[str, ...] = (),
        ims_url: str = "",
        client: httpx.Client | None = None,
        verify: ssl.SSLContext | bool = True,
        monotonic: Callable[[], float] = clock.monotonic,
    ) -> None:
        self._token = token
        self._org_id = org_id
        self._sandbox = sandbox
        self._client_id = client_id
        self._client_secret = client_secret
        self._scopes = scopes
        self._ims_url = ims_url.rstrip("/")
        self._client = client
        self._verify = verify
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._access = ""
        self._expires_at = 0.0

    @property
    def uses_service_account(self) -> bool:
        """True when tokens are fetched with client credentials."""
        return bool(self._client_id and self._client_secret)

    def headers(self, org_id: str | None = None) -> dict[str, str]:
        """The auth headers for a request (of `org_id`, else the configured organization)."""
        found: dict[str, str] = {"x-sandbox-name": self._sandbox}
        org = org_id or self._org_id
        if org:
            found["x-gw-ims-org-id"] = org
        bearer = self._bearer()
        if bearer:
            found["authorization"] = f"Bearer {bearer}"
        if self._client_id:
            found["x-api-key"] = self._client_id
        return found

    def refused(self) -> None:
        """The platform answered 401: forget the access token, so the next request fetches one."""
        with self._lock:
            self._access, self._expires_at = "", 0.0

    def _bearer(self) -> str:
        if not self.uses_service_account:
            return self._token
        with self._lock:
            if not self._access or self._monotonic() >= self._expires_at:
                self._access, lifetime = self._fetch()
                self._expires_at = self._monotonic() + max(0.0, lifetime - RENEW_BEFORE_S)
            return self._access

    def _fetch(self) -> tuple[str, float]:
        """A new access token and its lifetime in seconds."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "scope": ",".join(self._scopes),
        }
        url = self._ims_url + TOKEN_PATH
        client = self._client or httpx.Client(
            timeout=httpx.Timeout(10.0, connect=5.0), verify=self._verify
        )
        try:
            response = client.post(url, data=form)
        except httpx.TransportError as error:
            raise AuthUnavailable(f"token endpoint {url} unreachable: {error}") from error
        finally:
            if self._client is None:
                client.close()
        if response.status_code >= 500:
            raise AuthUnavailable(f"token endpoint {url} answered {response.status_code}")
        try:
            body = codec.loads(response.content)
        except codec.JSONDecodeError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            said = ""
            if isinstance(body, dict):
                said = str(body.get("error_description") or body.get("error") or "")
            raise AuthRefused(
                f"token endpoint {url} refused the service account {self._client_id}: "
                f"{response.status_code} {said or 'no reason given'}"
            )
        access, lifetime = body.get("access_token"), body.get("expires_in")
        if not isinstance(access, str) or not isinstance(lifetime, int | float):
            raise AuthRefused(f"token endpoint {url} answered without access_token/expires_in")
        return access, float(lifetime)


def platform_auth(settings: ConnectorSettings, client: httpx.Client | None = None) -> PlatformAuth:
    """The connector's auth, from its settings (`token`, or the service account). `client` is
    the platform's HTTP client (its trust store), also used for the token endpoint when that is
    the platform itself."""
    return PlatformAuth(
        token=settings.token.get_secret_value() if settings.token is not None else "",
        org_id=settings.org_id,
        sandbox=settings.sandbox,
        client_id=settings.client_id,
        client_secret=(
            settings.client_secret.get_secret_value() if settings.client_secret is not None else ""
        ),
        scopes=settings.scopes,
        ims_url=settings.ims_url or settings.platform_url,
        client=client if not settings.ims_url else None,
        verify=verify_for(settings.platform_ca_file),
    )
