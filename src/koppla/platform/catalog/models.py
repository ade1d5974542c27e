"""The catalog's nouns: organizations' datastreams, datasets and their batches."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from koppla.core.errors import InvalidInput

DEFAULT_ORG_ID = "KOPPLADEMO00000000000000@AdobeOrg"
"""The organization of a home made without one: its demo data, first tokens and older data."""
SANDBOX = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
ORG_ID = re.compile(r"^[A-Za-z0-9]{24}@AdobeOrg$")
DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DATASTREAM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_.-]{0,127}$")
ORIGIN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$")
RESERVED_NAMES = frozenset(
    {"quarantine", "batches", "datasets", "information_schema", "profiles", "identities"}
)

BatchStatus = Literal["loading", "processing", "success", "failed", "aborted"]
"""A batch's life: `loading` (streaming batches while they commit; ingestion batches while
files are uploaded), `processing` (an ingestion batch completed by its client, being ingested),
then `success`, `failed` or (an ingestion batch given up by its client) `aborted`."""

BATCH_STATUSES: tuple[BatchStatus, ...] = ("loading", "processing", "success", "failed", "aborted")
FINAL_STATUSES: frozenset[BatchStatus] = frozenset({"success", "failed", "aborted"})


def check_org_id(org_id: str) -> str:
    """`org_id` if it is `<24 letters or digits>@AdobeOrg`, else `InvalidInput` naming the rule."""
    if not ORG_ID.fullmatch(org_id):
        raise InvalidInput(
            f"organization id {org_id!r} must be 24 letters or digits followed by '@AdobeOrg'",
            field="orgId",
        )
    return org_id


def check_sandbox(name: str) -> str:
    """`name` if it is a sandbox name (lowercase letters, digits and '-'), else `InvalidInput`."""
    if not SANDBOX.fullmatch(name):
        raise InvalidInput(
            f"sandbox name {name!r} must be lowercase letters, digits and '-' (at most 64)",
            field="x-sandbox-name",
        )
    return name


def check_dataset_name(name: str) -> str:
    """`name` if it can be a SQL table name and is not reserved."""
    if not DATASET_NAME.fullmatch(name):
        raise InvalidInput(
            f"dataset name {name!r} must start with a lowercase letter and hold only lowercase "
            "letters, digits and '_' (at most 63 characters)",
            field="name",
        )
    if name in RESERVED_NAMES:
        raise InvalidInput(f"dataset name {name!r} is reserved", field="name")
    return name


def check_datastream_id(datastream_id: str) -> str:
    """`datastream_id` if it is a plausible datastream id (a UUID, optionally `:sandbox`)."""
    if not DATASTREAM_ID.fullmatch(datastream_id):
        raise InvalidInput(
            f"datastream id {datastream_id!r} may hold only letters, digits and ':_.-'",
            field="datastreamId",
        )
    return datastream_id


def check_origin(origin: str) -> str:
    """`origin` if it looks like `scheme://host[:port]`, optionally with a `*.` wildcard host."""
    if not ORIGIN.fullmatch(origin):
        raise InvalidInput(
            f"allowed origin {origin!r} must look like https://shop.example or https://*.example",
            field="allowedOrigins",
        )
    return origin


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named, schema-bound table of records, stored in Delta Lake."""

    id: str
    name: str
    schema_id: str
    created_ms: int
    description: str = ""
    profile_enabled: bool = False
    """Enabled for Profile (AEP's `unifiedProfile` tag): its records and events feed profiles."""
    org_id: str = DEFAULT_ORG_ID
    sandbox: str = "prod"


@dataclass(frozen=True, slots=True)
class Datastream:
    """What an Edge `configId` names: an organization and where its events land."""

    id: str
    org_id: str
    name: str
    event_dataset_id: str
    profile_dataset_id: str | None
    allowed_origins: tuple[str, ...]
    created_ms: int
    sandbox: str = "prod"

    def allows_origin(self, origin: str) -> bool:
        """True when `origin` may send events (any origin when the list is empty)."""
        if not self.allowed_origins or not origin:
            return True
        for allowed in self.allowed_origins:
            if allowed == origin:
                return True
            if "://*." in allowed:
                scheme, host = allowed.split("://*.", 1)
                if origin.startswith(scheme + "://") and origin.endswith("." + host):
                    return True
        return False


@dataclass(frozen=True, slots=True)
class BatchError:
    """One kind of problem a batch met: a code, a sentence with an example, how many records."""

    code: str
    description: str
    record_count: int


@dataclass(frozen=True, slots=True)
class Batch:
    """A unit of ingestion into one dataset, with its outcome.

    Streaming batches (one per pipeline commit) use the first fields only. Batches created
    through the batch ingestion API also have an `input_format` (`json` or `parquet`), their
    files' count and size, the rows skipped because the dataset already held their `_id`
    (`duplicates`), a summary of the problems met (`errors`) and the token holder who created
    them. `records` counts the rows written, `failed_records` the rows refused,
    `records_read` every row read (a failed batch writes none of the good ones).
    """

    id: str
    dataset_id: str
    status: BatchStatus
    records: int
    failed_records: int
    created_ms: int
    completed_ms: int | None
    source: str
    input_format: str = ""
    multiline_json: bool = False
    file_count: int = 0
    input_bytes: int = 0
    duplicates: int = 0
    errors: tuple[BatchError, ...] = ()
    created_by: str = ""
    started_ms: int | None = None
    updated_ms: int | None = None
    records_read: int | None = None
    """Rows read from an ingestion batch's files once it finished (None before, and for
    streaming batches: then written + failed + skipped)."""

    @property
    def ingested(self) -> bool:
        """True for a batch created through the batch ingestion API (not a streaming one)."""
        return bool(self.input_format)
