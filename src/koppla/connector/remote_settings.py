"""The admin settings as the platform keeps them, read over HTTP and cached on disk.

`GET {platform_url}/api/v1/connector/settings` with the connector's token answers the settings of
the token's organization (organization id, AEP Web SDK name, websites) and their version as an
`ETag`. `RemoteSettings.refresh()` asks with `If-None-Match`, so while nothing changed the answer
is an empty 304; a new version is written to `<home>/connector/settings-cache.json` (atomically),
where `load_settings` reads it, so the connector starts with the last settings it saw even while
the platform is down. `connector.toml` and the environment override it key by key.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import httpx

from koppla.connector.platform_auth import AuthRefused, AuthUnavailable, platform_auth
from koppla.connector.settings import CACHE_FILE, ConnectorSettings
from koppla.core import clock, codec
from koppla.core.tls import verify_for

log = logging.getLogger("koppla.connector.settings")

SETTINGS_PATH = "/api/v1/connector/settings"


def cache_path(home: Path) -> Path:
    """Where the platform's settings are cached for `home`."""
    return home / CACHE_FILE


def read_cached(home: Path) -> dict[str, Any]:
    """The cache file's content (`{"version", "etag", "settings", "fetchedMs"}`), or `{}`."""
    try:
        found = codec.loads(cache_path(home).read_bytes())
    except (OSError, codec.JSONDecodeError):
        return {}
    return found if isinstance(found, dict) else {}


def write_cache(home: Path, content: dict[str, Any]) -> None:
    """Replace the cache file with `content`, atomically (a reader sees the old or the new)."""
    path = cache_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(codec.dumps(content))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class RemoteSettings:
    """Follows the platform's settings for one connector; call `refresh()` at every poll."""

    def __init__(self, settings: ConnectorSettings, client: httpx.Client | None = None) -> None:
        self._home = settings.home
        self._url = settings.platform_url.rstrip("/") + SETTINGS_PATH
        self._own_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(10.0, connect=5.0), verify=verify_for(settings.platform_ca_file)
        )
        self._auth = platform_auth(settings, self._client)
        self._etag = str(read_cached(self._home).get("etag") or "")
        self._last_problem = ""

    def close(self) -> None:
        """Close the HTTP client (unless it was given)."""
        if self._own_client:
            self._client.close()

    def refresh(self) -> bool:
        """Ask the platform for its settings; True when they changed (and the cache with them).

        Trouble (the platform down, a refusal, an API it does not have) keeps the cached
        settings and is logged once until it changes.
        """
        try:
            headers = {"accept": "application/json", **self._auth.headers()}
        except (AuthRefused, AuthUnavailable) as error:
            self._trouble(str(error))
            return False
        if self._etag:
            headers["if-none-match"] = self._etag
        try:
            response = self._client.get(self._url, headers=headers)
        except httpx.TransportError as error:
            self._trouble(f"platform unreachable ({type(error).__name__}: {error})")
            return False
        if response.status_code == 304:
            self._trouble("")
            return False
        if response.status_code == 401:
            self._auth.refused()
        if response.status_code != 200:
            self._trouble(f"{self._url} answered {response.status_code}: {_said(response)}")
            return False
        return self._store(response)

    def _store(self, response: httpx.Response) -> bool:
        try:
            body = codec.loads(response.content)
        except codec.JSONDecodeError:
            self._trouble(f"{self._url} answered something that is not JSON")
            return False
        self._trouble("")
        version = int(body.get("version") or 0) if isinstance(body, dict) else 0
        settings = body.get("settings") if isinstance(body, dict) and version > 0 else None
        before = read_cached(self._home)
        self._etag = response.headers.get("etag", "")
        write_cache(
            self._home,
            {
                "version": version,
                "etag": self._etag,
                "settings": settings,
                "fetchedMs": clock.now_ms(),
            },
        )
        changed = before.get("settings") != settings
        if changed:
            log.info("the platform's connector settings are now version %d", version)
        return changed

    def _trouble(self, problem: str) -> None:
        """Log `problem` when it is new ('' when all is well again)."""
        if problem and problem != self._last_problem:
            log.warning("cannot read the connector settings, keeping the cached ones: %s", problem)
        self._last_problem = problem


def _said(response: httpx.Response) -> str:
    try:
        body = codec.loads(response.content)
    except codec.JSONDecodeError:
        return response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail or response.reason_phrase)
