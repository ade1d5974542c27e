"""Where a deployment's Delta tables live: a local (or NFS) directory, or an object-store URI.

Every process of a deployment that writes or reads datasets must reach the same tables. On one
machine that is the `datasets` folder under the home directory; past one machine it is a shared
mount (NFS: the same path on every machine) or an S3-compatible bucket (`s3://bucket/prefix`)
with the storage options delta-rs needs to reach it (endpoint, region, keys).

Concurrent writers on S3 need commits that cannot overwrite each other. delta-rs gets them from
conditional puts (`If-None-Match: *`, which AWS S3, MinIO and moto honour): `conditional_put:
etag` is added for `s3://` roots unless the options choose another way (a DynamoDB locking
provider, or `AWS_S3_ALLOW_UNSAFE_RENAME` for a single writer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from koppla.core.layout import Layout
from koppla.core.settings import Settings

QUARANTINE = "_quarantine"
"""The quarantine table's name beside the dataset tables (as in `Layout.quarantine`)."""

_S3_SCHEMES = frozenset({"s3", "s3a"})
_SAFE_COMMITS = frozenset(
    {"conditional_put", "aws_s3_locking_provider", "aws_s3_allow_unsafe_rename"}
)


@dataclass(frozen=True, slots=True)
class TableLocation:
    """The root under which each dataset's Delta table is `<root>/<dataset id>`, and the
    storage options to open it with (`DeltaTable(uri, storage_options=...)`)."""

    root: str
    """A local directory, or a URI such as `s3://bucket/prefix` (no trailing slash needed)."""
    options: Mapping[str, str] = field(default_factory=dict)
    """delta-rs storage options (`AWS_ENDPOINT_URL`, `AWS_REGION`, keys, ...)."""

    @classmethod
    def local(cls, directory: Path) -> TableLocation:
        """Tables under a local or mounted directory (`<home>/datasets` by default)."""
        return cls(str(directory))

    @classmethod
    def parse(cls, url: str, options: Mapping[str, str], default: Path) -> TableLocation:
        """The location a `storage_url` setting names: `default` (a directory) when empty, a
        directory for a plain path or `file://` URL, else the URI with `options`.

        For `s3://`, `conditional_put: etag` is added unless `options` pick a commit method.
        """
        if not url:
            return cls.local(default)
        parts = urlsplit(url)
        if not parts.scheme or parts.scheme == "file":
            return cls.local(Path(parts.path if parts.scheme else url))
        chosen = dict(options)
        if parts.scheme in _S3_SCHEMES and not {k.lower() for k in chosen} & _SAFE_COMMITS:
            chosen["conditional_put"] = "etag"
        return cls(url.rstrip("/"), chosen)

    @property
    def directory(self) -> Path | None:
        """The local (or mounted) directory of the tables; None on an object store."""
        return local_path(self.root)

    @property
    def remote(self) -> bool:
        """True for an object store (a URI with a scheme), False for a directory."""
        return is_remote(self.root)

    def table(self, dataset_id: str) -> str:
        """The URI (or path) of one dataset's Delta table."""
        return f"{self.root.rstrip('/')}/{dataset_id}"

    def quarantine(self) -> str:
        """The URI (or path) of the quarantine's Delta table."""
        return self.table(QUARANTINE)

    def storage_options(self) -> dict[str, str] | None:
        """The options to pass to deltalake calls; None when there are none."""
        return dict(self.options) or None


def table_location(settings: Settings) -> TableLocation:
    """Where the deployment of `settings` keeps its tables: `storage_url` with
    `storage_options`, or the home's `datasets` directory when `storage_url` is empty."""
    return TableLocation.parse(
        settings.storage_url, settings.storage_options, Layout(settings.home).datasets
    )


def is_remote(uri: str | Path) -> bool:
    """True when `uri` names an object store (`s3://...`), False for a path or `file://`."""
    if isinstance(uri, Path):
        return False
    scheme = urlsplit(uri).scheme
    return bool(scheme) and scheme != "file"


def local_path(uri: str | Path) -> Path | None:
    """The local path `uri` names (a path or `file://` URL), None for an object store."""
    if isinstance(uri, Path):
        return uri
    if is_remote(uri):
        return None
    return Path(urlsplit(uri).path if uri.startswith("file:") else uri)


def arrow_filesystem(uri: str | Path, options: Mapping[str, str] | None) -> pafs.FileSystem | None:
    """Arrow's own file system rooted at the table `uri`, for `to_pyarrow_dataset(filesystem=)`.

    Reading through deltalake's default Python file handler makes Arrow's I/O threads call
    back into Python, which can abort the process at interpreter exit ("terminate called
    without an active exception"); Arrow's native S3 and local file systems do not. None for a
    scheme Arrow has no native file system for here (then deltalake's handler is used).
    """
    path = local_path(uri)
    if path is not None:
        return pafs.SubTreeFileSystem(str(path.absolute()), pafs.LocalFileSystem())
    parts = urlsplit(str(uri))
    if parts.scheme not in _S3_SCHEMES:
        return None
    s3 = pafs.S3FileSystem(**_s3_arguments({k.lower(): v for k, v in (options or {}).items()}))
    return pafs.SubTreeFileSystem(f"{parts.netloc}{parts.path}", s3)


def _s3_arguments(options: Mapping[str, str]) -> dict[str, str]:
    """`pyarrow.fs.S3FileSystem` arguments from delta-rs storage options (lower-cased keys).

    Options not given are left to Arrow's defaults (the AWS environment variables and
    credential chain, as delta-rs does).
    """
    arguments: dict[str, str] = {}
    for name, keys in _S3_KEYS.items():
        value = next((options[k] for k in keys if k in options), None)
        if value is not None:
            arguments[name] = value
    endpoint = arguments.pop("endpoint_override", None)
    if endpoint is not None:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        arguments["endpoint_override"] = parts.netloc
        arguments["scheme"] = parts.scheme
    return arguments


_S3_KEYS = {
    "access_key": ("aws_access_key_id", "access_key_id"),
    "secret_key": ("aws_secret_access_key", "secret_access_key"),
    "session_token": ("aws_session_token", "session_token", "aws_token", "token"),
    "region": ("aws_region", "region", "aws_default_region"),
    "endpoint_override": ("aws_endpoint_url", "aws_endpoint", "endpoint_url", "endpoint"),
}
