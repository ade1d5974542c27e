"""The HTTP client to the platform's batch ingestion and catalog (AEP's public shapes).

`POST /data/foundation/import/batches` → `PUT .../batches/{id}/datasets/{dataset}/files/{name}`
→ `POST .../batches/{id}?action=COMPLETE`, then `GET /data/foundation/catalog/batches/{id}` for
the outcome (domain.md §12.3). Transient trouble (network, 429, 5xx) is retried here with
backoff for up to `patience_s`, then raised as `Unavailable`; a refusal raises `Rejected` (401/403
as `Unauthorized`: the credentials are wrong).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx

from koppla.connector.platform_auth import AuthUnavailable, platform_auth
from koppla.connector.retry import Backoff, Rejected, Unavailable, error_for_status
from koppla.connector.settings import ConnectorSettings
from koppla.core import clock, codec
from koppla.core.tls import verify_for

T = TypeVar("T")
log = logging.getLogger("koppla.connector.history")

IMPORT = "/data/foundation/import/batches"
CATALOG = "/data/foundation/catalog"
FINAL = {"success": "success", "failed": "failed", "aborted": "failed", "abandoned": "failed"}
"""Platform batch statuses that are final, and what they mean for the sync."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """A batch as the catalog shows it: its status and row counts."""

    status: str
    written: int
    failed: int

    @property
    def final(self) -> str | None:
        """`success` or `failed` once the platform is done with the batch, else None."""
        return FINAL.get(self.status)


class PlatformView(Protocol):
    """What watching a sync needs of the platform: datasets and batch outcomes."""

    def dataset_exists(self, dataset_id: str) -> bool:
        """True when the platform has the dataset."""
        ...

    def outcome(self, batch_id: str) -> BatchOutcome:
        """The batch's status and row counts."""
        ...

    def close(self) -> None:
        """Release what it holds."""
        ...


class PlatformBatches:
    """Creates, fills and completes batches, and reads their outcome (a `PlatformView`)."""

    def __init__(
        self,
        settings: ConnectorSettings,
        client: httpx.Client | None = None,
        *,
        patience_s: float = 60.0,
    ) -> None:
        self._base = settings.platform_url.rstrip("/")
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(120.0, connect=5.0),
            verify=verify_for(settings.platform_ca_file),
        )
        self._auth = platform_auth(settings, self._client)
        self._patience_s = patience_s

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def dataset_exists(self, dataset_id: str) -> bool:
        """True when the platform has the dataset (False on 404)."""
        path = f"{CATALOG}/dataSets/{_segment(dataset_id)}"
        response = self._call(lambda: self._request("GET", path))
        if response.status_code == 404:
            return False
        self._raise_for(response)
        return True

    def create(self, dataset_id: str) -> str:
        """A new batch for `dataset_id` (JSON lines); its id."""
        body = {"datasetId": dataset_id, "inputFormat": {"format": "json"}}
        response = self._call(lambda: self._request("POST", IMPORT, json=body))
        self._raise_for(response)
        return str(response.json()["id"])

    def upload(self, batch_id: str, dataset_id: str, name: str, content: bytes) -> None:
        """Put one file into the batch (a repeated upload of the same name replaces it)."""
        path = (
            f"{IMPORT}/{_segment(batch_id)}/datasets/{_segment(dataset_id)}/files/{_segment(name)}"
        )
        headers = {"content-type": "application/octet-stream"}
        response = self._call(lambda: self._request("PUT", path, content=content, headers=headers))
        self._raise_for(response)

    def complete(self, batch_id: str) -> None:
        """Signal that every file is there (safe to repeat)."""
        response = self._call(
            lambda: self._request(
                "POST", f"{IMPORT}/{_segment(batch_id)}", params={"action": "COMPLETE"}
            )
        )
        self._raise_for(response)

    def abort(self, batch_id: str) -> None:
        """Abort a loading batch that will not be used (best effort: a failure is only logged)."""
        try:
            path = f"{IMPORT}/{_segment(batch_id)}"
            self._raise_for(self._request("POST", path, params={"action": "ABORT"}))
        except (Rejected, Unavailable) as error:
            log.warning("could not abort unused batch %s: %s", batch_id, error)

    def outcome(self, batch_id: str) -> BatchOutcome:
        """The batch's status and row counts."""
        path = f"{CATALOG}/batches/{_segment(batch_id)}"
        response = self._call(lambda: self._request("GET", path))
        self._raise_for(response)
        shown = response.json().get(batch_id, {})
        metrics = shown.get("metrics") or {}
        return BatchOutcome(
            str(shown.get("status", "")),
            int(metrics.get("recordsWritten") or 0),
            int(metrics.get("failedRecordCount") or 0),
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            auth = self._auth.headers()
        except AuthUnavailable as error:
            raise Unavailable(str(error)) from error
        headers = {**auth, **kwargs.pop("headers", {})}
        try:
            response = self._client.request(method, self._base + path, headers=headers, **kwargs)
        except httpx.TransportError as error:
            raise Unavailable(f"platform unreachable: {type(error).__name__}: {error}") from error
        if response.status_code == 401:
            self._auth.refused()  # a service account's token is fetched again next time
        if response.status_code == 429 or response.status_code >= 500:
            self._raise_for(response)
        return response

    def _call(self, attempt: Callable[[], T]) -> T:
        """`attempt()`, retried with backoff while it raises `Unavailable`, up to the patience."""
        backoff = Backoff(base_s=0.5, cap_s=10.0)
        deadline = clock.monotonic() + self._patience_s
        while True:
            try:
                return attempt()
            except Unavailable as error:
                wait = backoff.failed(error.retry_after)
                if clock.monotonic() + wait > deadline:
                    raise
                time.sleep(wait)

    @staticmethod
    def _raise_for(response: httpx.Response) -> None:
        problem = error_for_status(
            response.status_code, _detail(response), response.headers.get("retry-after")
        )
        if problem is not None:
            raise problem


def _segment(value: str) -> str:
    """`value` as one URL path segment: escaped, and never `.` or `..` (which would move up)."""
    if value in ("", ".", ".."):
        raise Rejected(f"{value!r} cannot name a dataset, batch or file", status=400)
    return quote(value, safe="")


def _detail(response: httpx.Response) -> str:
    """The platform's explanation of an error answer, as short text."""
    try:
        body = codec.loads(response.content)
    except codec.JSONDecodeError:
        return response.text[:500]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:500]
    return str(body)[:500]
