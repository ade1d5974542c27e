"""The store connector's admin settings and service account of each organization.

In the catalog's SQLite file, own tables:

- `connector_settings`: one JSON document per organization (the Data Connection admin settings:
  global fields and websites; `koppla.connector.settings` holds their rules, this store keeps
  what it is given), with a version that grows by one at every save (a save may name the version
  it was based on, and is refused with `VersionConflict` when another save came first) and the
  time of the last save.
- `connector_service_accounts`: the service account pasted on the admin page (the credential of
  a Developer Console workspace file). Its client secret is encrypted with Fernet (AES-128-CBC
  and HMAC-SHA256) under a key kept in `<home>/keys/settings.key`, created with mode 0600 on
  first use, as Magento keeps its crypt key in `env.php`. The secret is never returned by the
  accessors that describe the account; `secrets()` decrypts it for the one caller that needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from koppla.core import clock, codec
from koppla.core.errors import Conflict, TerminalError
from koppla.core.sqlite import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS connector_settings (
  org_id TEXT PRIMARY KEY, document TEXT NOT NULL, version INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL, updated_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS connector_service_accounts (
  org_id TEXT PRIMARY KEY, auth_type TEXT NOT NULL, client_id TEXT NOT NULL,
  credential_org_id TEXT NOT NULL, technical_account_id TEXT NOT NULL, scopes TEXT NOT NULL,
  secret BLOB NOT NULL, platform_url TEXT NOT NULL, sandbox TEXT NOT NULL,
  updated_ms INTEGER NOT NULL, updated_by TEXT NOT NULL);
"""

KEY_FILE = Path("keys") / "settings.key"
"""Under the home: the key that encrypts stored secrets."""


@dataclass(frozen=True, slots=True)
class StoredSettings:
    """An organization's settings document as stored: version 0 and `{}` before any save."""

    org_id: str
    document: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    updated_ms: int | None = None
    updated_by: str = ""

    @property
    def etag(self) -> str:
        """The HTTP entity tag of this version."""
        return f'"v{self.version}"'


class VersionConflict(Conflict):
    """A save based on a version that is no longer the stored one."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(
            f"the settings changed since version {expected} (now version {current}): "
            "reload them and save again"
        )
        self.current = current


class SecretUnreadable(TerminalError):
    """A stored secret that the key no longer opens (the key file was replaced)."""


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """What is kept of a service account, without its secrets (see `secrets()` of the store)."""

    org_id: str
    auth_type: str
    client_id: str
    credential_org_id: str
    technical_account_id: str
    scopes: tuple[str, ...]
    platform_url: str
    sandbox: str
    updated_ms: int
    updated_by: str

    def as_json(self) -> dict[str, object]:
        """The account as the API shows it: the secret only as `"••••"` / `hasSecret`."""
        return {
            "authType": self.auth_type,
            "clientId": self.client_id,
            "clientSecret": "••••",
            "hasSecret": True,
            "orgId": self.credential_org_id,
            "technicalAccountId": self.technical_account_id,
            "scopes": list(self.scopes),
            "platformUrl": self.platform_url,
            "sandbox": self.sandbox,
            "updatedMs": self.updated_ms,
            "updatedBy": self.updated_by,
        }


class SecretBox:
    """Encrypts and decrypts secrets with a Fernet key kept in one file (0600, made once)."""

    def __init__(self, key_file: Path) -> None:
        self._key_file = key_file
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(_read_or_create_key(self._key_file))
        return self._fernet

    def seal(self, secret: str) -> bytes:
        """`secret`, encrypted and authenticated."""
        return self._key().encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        """The secret `sealed` holds; `SecretUnreadable` when this key did not seal it."""
        try:
            return self._key().decrypt(sealed).decode()
        except InvalidToken:
            raise SecretUnreadable(
                f"the stored client secret cannot be decrypted with {self._key_file}: "
                "paste the workspace file again"
            ) from None


def _read_or_create_key(path: Path) -> bytes:
    """The key in `path`, made (mode 0600, directory 0700) when the file does not exist."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    try:
        os.write(handle, key)
        os.fsync(handle)
    finally:
        os.close(handle)
    return key


class ConnectorSettingsStore:
    """Settings documents and service accounts per organization; each method one transaction."""

    def __init__(self, path: Path, *, key_file: Path | None = None) -> None:
        self._file = SqliteFile(path, SCHEMA)
        self._box = SecretBox(key_file or path.parent / KEY_FILE)

    def close(self) -> None:
        """Close the connection."""
        self._file.close()

    def get(self, org_id: str) -> StoredSettings:
        """The settings of `org_id` (version 0, empty, when none were saved)."""
        row = self._file.one(
            "SELECT document, version, updated_ms, updated_by FROM connector_settings "
            "WHERE org_id = ?",
            (org_id,),
        )
        if row is None:
            return StoredSettings(org_id)
        return StoredSettings(org_id, codec.loads(row[0]), int(row[1]), int(row[2]), str(row[3]))

    def put(
        self,
        org_id: str,
        document: dict[str, Any],
        *,
        by: str,
        expect_version: int | None = None,
    ) -> StoredSettings:
        """Save `document` as the settings of `org_id`, one version up.

        With `expect_version`, refused with `VersionConflict` unless it is the stored version.
        """
        now = clock.now_ms()
        with self._file.transaction() as db:
            row = db.execute(
                "SELECT version FROM connector_settings WHERE org_id = ?", (org_id,)
            ).fetchone()
            current = 0 if row is None else int(row[0])
            if expect_version is not None and expect_version != current:
                raise VersionConflict(expect_version, current)
            db.execute(
                "INSERT INTO connector_settings VALUES (?, ?, ?, ?, ?) ON CONFLICT(org_id) DO "
                "UPDATE SET document = excluded.document, version = excluded.version, "
                "updated_ms = excluded.updated_ms, updated_by = excluded.updated_by",
                (org_id, codec.dumps(document).decode(), current + 1, now, by),
            )
        return StoredSettings(org_id, document, current + 1, now, by)

    def service_account(self, org_id: str) -> ServiceAccount | None:
        """The service account of `org_id` (without its secret), or None."""
        row = self._file.one(
            "SELECT auth_type, client_id, credential_org_id, technical_account_id, scopes, "
            "platform_url, sandbox, updated_ms, updated_by FROM connector_service_accounts "
            "WHERE org_id = ?",
            (org_id,),
        )
        if row is None:
            return None
        return ServiceAccount(
            org_id=org_id,
            auth_type=str(row[0]),
            client_id=str(row[1]),
            credential_org_id=str(row[2]),
            technical_account_id=str(row[3]),
            scopes=tuple(str(row[4]).split()),
            platform_url=str(row[5]),
            sandbox=str(row[6]),
            updated_ms=int(row[7]),
            updated_by=str(row[8]),
        )

    def secrets(self, org_id: str) -> dict[str, str] | None:
        """The decrypted secrets of `org_id`'s service account (`client_secret`, and for the
        deprecated JWT kind `private_key`), or None without an account."""
        row = self._file.one(
            "SELECT secret FROM connector_service_accounts WHERE org_id = ?", (org_id,)
        )
        if row is None:
            return None
        opened = codec.loads(self._box.open(bytes(row[0])))
        return {str(k): str(v) for k, v in opened.items()} if isinstance(opened, dict) else {}

    def save_service_account(
        self, account: ServiceAccount, secrets: Mapping[str, str]
    ) -> ServiceAccount:
        """Keep `account` (replacing the organization's) with its `secrets` encrypted."""
        sealed = self._box.seal(codec.dumps(dict(secrets)).decode())
        with self._file.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO connector_service_accounts VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    account.org_id,
                    account.auth_type,
                    account.client_id,
                    account.credential_org_id,
                    account.technical_account_id,
                    " ".join(account.scopes),
                    sealed,
                    account.platform_url,
                    account.sandbox,
                    account.updated_ms,
                    account.updated_by,
                ),
            )
        return account

    def remove_service_account(self, org_id: str) -> bool:
        """Forget the service account of `org_id`; True when there was one."""
        with self._file.transaction() as db:
            cursor = db.execute(
                "DELETE FROM connector_service_accounts WHERE org_id = ?", (org_id,)
            )
            return cursor.rowcount > 0
