"""Who may call the platform: API tokens, service credentials and the access tokens they buy.

Every principal belongs to one organization and one sandbox; whatever it reads or writes is of
that organization. Service credentials are OAuth server-to-server clients in the shape of Adobe's
Developer Console: a client id, a client secret (only its SHA-256 is kept: secrets are 256 random
bits, so no salt or slow hash is needed), the technical account, the scopes. `exchange` trades
them for short-lived access tokens, which are stored the way API tokens are (digest only).

They live in the catalog's database (a SQLite file, or PostgreSQL: see `koppla.core.database`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Literal

from koppla.core import clock, ids
from koppla.core.database import Connection, Database
from koppla.core.errors import KopplaError

DEFAULT_SANDBOX = "prod"
ACCESS_TOKEN_TTL_S = 86_399
"""Lifetime of an IMS access token, as Adobe's IMS gives it (24 hours less a second)."""

DEFAULT_SCOPES = (
    "openid",
    "AdobeID",
    "read_organizations",
    "additional_info.projectedProductContext",
    "session",
)
"""The scopes Adobe's Developer Console gives an AEP API credential."""

REQUIRED_SCOPES = ("openid", "AdobeID")
"""Scopes a token request must ask for (as Adobe's IMS requires for platform APIs)."""

TokenKind = Literal["token", "access", "session"]
AuthType = Literal["oauth_server_to_server", "jwt"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS credentials (
  client_id TEXT PRIMARY KEY, secret_digest TEXT NOT NULL, name TEXT NOT NULL,
  org_id TEXT NOT NULL, technical_account_id TEXT NOT NULL, scopes TEXT NOT NULL,
  auth_type TEXT NOT NULL, public_key_pem TEXT, created_ms INTEGER NOT NULL,
  revoked_ms INTEGER);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
"""The tables of credentials and of the catalog's settings (`meta`), in SQLite."""

PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS credentials (
  client_id TEXT PRIMARY KEY, secret_digest TEXT NOT NULL, name TEXT NOT NULL,
  org_id TEXT NOT NULL, technical_account_id TEXT NOT NULL, scopes TEXT NOT NULL,
  auth_type TEXT NOT NULL, public_key_pem TEXT, created_ms BIGINT NOT NULL,
  revoked_ms BIGINT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
"""The same tables in PostgreSQL."""

TOKEN_COLUMNS = (
    ("api_tokens", "org_id", "TEXT NOT NULL DEFAULT ''"),
    ("api_tokens", "sandbox", "TEXT NOT NULL DEFAULT 'prod'"),
    ("api_tokens", "client_id", "TEXT NOT NULL DEFAULT ''"),
    ("api_tokens", "scopes", "TEXT NOT NULL DEFAULT ''"),
    ("api_tokens", "kind", "TEXT NOT NULL DEFAULT 'token'"),
    ("api_tokens", "expires_ms", "INTEGER"),
    ("api_tokens", "public_id", "TEXT NOT NULL DEFAULT ''"),
)
"""Columns API tokens gained with organizations (older catalogs get them on open)."""


class TokenRefused(KopplaError):
    """A token request IMS would refuse: `error` is the OAuth error code, the message says why."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.status = status


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request: an API token, an IMS access token, or a signed-in person."""

    name: str
    org_id: str
    sandbox: str = DEFAULT_SANDBOX
    client_id: str = ""
    scopes: tuple[str, ...] = ()
    kind: TokenKind = "token"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What `koppla token list` shows of a token (never the token itself)."""

    id: str
    name: str
    org_id: str
    sandbox: str
    kind: str
    client_id: str
    created_ms: int
    expires_ms: int | None


@dataclass(frozen=True, slots=True)
class Credential:
    """A service credential (OAuth server-to-server, or the deprecated JWT kind)."""

    client_id: str
    name: str
    org_id: str
    technical_account_id: str
    scopes: tuple[str, ...]
    auth_type: AuthType
    created_ms: int
    revoked: bool
    public_key_pem: str | None = None


class Access:
    """Tokens and credentials in the catalog's database; each method one short transaction."""

    def __init__(self, file: Database, default_org: str) -> None:
        self._file = file
        self._default_org = default_org

    # tokens
    def add_token(
        self,
        name: str,
        *,
        org_id: str | None = None,
        sandbox: str = DEFAULT_SANDBOX,
        expires_s: float | None = None,
        client_id: str = "",
        scopes: tuple[str, ...] = (),
        kind: TokenKind = "token",
    ) -> str:
        """Create a token and return it; only its digest is stored."""
        token = ids.new_token()
        now = clock.now_ms()
        expires = None if expires_s is None else now + int(expires_s * 1000)
        with self._file.transaction() as db:
            db.execute(
                "DELETE FROM api_tokens WHERE expires_ms IS NOT NULL AND expires_ms < ?", (now,)
            )
            db.execute(
                "INSERT INTO api_tokens (digest, name, created_ms, org_id, sandbox, client_id, "
                "scopes, kind, expires_ms, public_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ids.token_digest(token),
                    name,
                    now,
                    org_id or self._default_org,
                    sandbox,
                    client_id,
                    " ".join(scopes),
                    kind,
                    expires,
                    ids.new_hex_id(6),
                ),
            )
        return token

    def principal(self, token: str) -> Principal | None:
        """The holder of `token`, or None when it is unknown, revoked or expired."""
        row = self._file.one(
            "SELECT name, org_id, sandbox, client_id, scopes, kind, expires_ms FROM api_tokens "
            "WHERE digest = ?",
            (ids.token_digest(token),),
        )
        if row is None or (row[6] is not None and int(row[6]) <= clock.now_ms()):
            return None
        return Principal(
            name=str(row[0]),
            org_id=str(row[1]) or self._default_org,
            sandbox=str(row[2]),
            client_id=str(row[3]),
            scopes=tuple(str(row[4]).split()),
            kind=_kind(str(row[5])),
        )

    def tokens(self, org_id: str | None = None) -> list[TokenInfo]:
        """The unexpired tokens, of one organization or of all, oldest first."""
        rows = self._file.all(
            "SELECT public_id, name, org_id, sandbox, kind, client_id, created_ms, expires_ms, "
            "digest FROM api_tokens WHERE expires_ms IS NULL OR expires_ms > ? "
            "ORDER BY created_ms",
            (clock.now_ms(),),
        )
        found = [_token_info(row, self._default_org) for row in rows]
        return [t for t in found if org_id is None or t.org_id == org_id]

    def revoke_token(self, token_or_id: str) -> bool:
        """Revoke a token given itself or its public id; True when one was revoked."""
        with self._file.transaction() as db:
            cursor = db.execute(
                "DELETE FROM api_tokens WHERE digest = ? OR public_id = ? "
                "OR (public_id = '' AND substr(digest, 1, 12) = ?)",
                (ids.token_digest(token_or_id), token_or_id, token_or_id),
            )
            return cursor.rowcount > 0

    def has_tokens(self) -> bool:
        """True once any API token exists (IMS access tokens and sessions do not count)."""
        return self._file.one("SELECT 1 FROM api_tokens WHERE kind = 'token' LIMIT 1") is not None

    # credentials
    def create_credential(
        self,
        name: str,
        *,
        org_id: str | None = None,
        scopes: tuple[str, ...] = DEFAULT_SCOPES,
        auth_type: AuthType = "oauth_server_to_server",
        public_key_pem: str | None = None,
    ) -> tuple[Credential, str]:
        """A new service credential and its client secret (returned once, stored as a digest)."""
        secret = "p8e-" + ids.new_token().removeprefix("kpl_")
        credential = Credential(
            client_id=ids.new_hex_id(16),
            name=name,
            org_id=org_id or self._default_org,
            technical_account_id=f"{ids.new_hex_id(12).upper()}@techacct.adobe.com",
            scopes=scopes,
            auth_type=auth_type,
            created_ms=clock.now_ms(),
            revoked=False,
            public_key_pem=public_key_pem,
        )
        with self._file.transaction() as db:
            db.execute(
                "INSERT INTO credentials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    credential.client_id,
                    ids.token_digest(secret),
                    name,
                    credential.org_id,
                    credential.technical_account_id,
                    " ".join(scopes),
                    auth_type,
                    public_key_pem,
                    credential.created_ms,
                ),
            )
        return credential, secret

    def credentials(self, org_id: str | None = None) -> list[Credential]:
        """Every credential (revoked ones included), of one organization or of all."""
        rows = self._file.all(
            "SELECT client_id, name, org_id, technical_account_id, scopes, auth_type, created_ms, "
            "revoked_ms, public_key_pem FROM credentials ORDER BY created_ms"
        )
        found = [_credential(row) for row in rows]
        return [c for c in found if org_id is None or c.org_id == org_id]

    def credential(self, client_id: str) -> Credential | None:
        """The credential `client_id` (revoked or not), or None."""
        return next((c for c in self.credentials() if c.client_id == client_id), None)

    def revoke_credential(self, client_id: str) -> bool:
        """Revoke a credential and every access token it bought; True when it was active."""
        with self._file.transaction() as db:
            cursor = db.execute(
                "UPDATE credentials SET revoked_ms = ? WHERE client_id = ? AND revoked_ms IS NULL",
                (clock.now_ms(), client_id),
            )
            db.execute(
                "DELETE FROM api_tokens WHERE kind = 'access' AND client_id = ?", (client_id,)
            )
            return cursor.rowcount > 0

    def check_client(self, client_id: str, client_secret: str) -> Credential:
        """The active credential whose id and secret these are; `TokenRefused` otherwise.

        The same answer for an unknown client id and a wrong secret, as IMS gives.
        """
        row = self._file.one(
            "SELECT secret_digest FROM credentials WHERE client_id = ? AND revoked_ms IS NULL",
            (client_id,),
        )
        if row is None or not _same(str(row[0]), ids.token_digest(client_secret)):
            raise TokenRefused("invalid_client", "invalid client_id or client_secret", 401)
        credential = self.credential(client_id)
        assert credential is not None
        return credential

    def exchange(
        self, client_id: str, client_secret: str, scope: str
    ) -> tuple[str, int, Credential]:
        """Trade client credentials for an access token: `(token, expires_in_s, credential)`.

        The token carries the scopes asked for, each of which the credential must hold.
        """
        credential = self.check_client(client_id, client_secret)
        if credential.auth_type != "oauth_server_to_server":
            raise TokenRefused(
                "invalid_client",
                "a JWT service account signs a JWT for its tokens: use /ims/exchange/jwt",
                401,
            )
        asked = tuple(s for s in scope.replace(",", " ").split() if s)
        if not asked:
            asked = credential.scopes
        missing = [s for s in asked if s not in credential.scopes]
        if missing:
            raise TokenRefused("invalid_scope", f"invalid scope: {', '.join(missing)}")
        token = self.add_token(
            credential.name,
            org_id=credential.org_id,
            expires_s=ACCESS_TOKEN_TTL_S,
            client_id=credential.client_id,
            scopes=asked,
            kind="access",
        )
        return token, ACCESS_TOKEN_TTL_S, credential


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _kind(value: str) -> TokenKind:
    if value == "access":
        return "access"
    if value == "session":
        return "session"
    return "token"


def _auth_type(value: str) -> AuthType:
    return "jwt" if value == "jwt" else "oauth_server_to_server"


def _token_info(row: tuple[Any, ...], default_org: str) -> TokenInfo:
    return TokenInfo(
        id=str(row[0]) or str(row[8])[:12],
        name=str(row[1]),
        org_id=str(row[2]) or default_org,
        sandbox=str(row[3]),
        kind=str(row[4]),
        client_id=str(row[5]),
        created_ms=int(row[6]),
        expires_ms=None if row[7] is None else int(row[7]),
    )


def _credential(row: tuple[Any, ...]) -> Credential:
    return Credential(
        client_id=str(row[0]),
        name=str(row[1]),
        org_id=str(row[2]),
        technical_account_id=str(row[3]),
        scopes=tuple(str(row[4]).split()),
        auth_type=_auth_type(str(row[5])),
        created_ms=int(row[6]),
        revoked=row[7] is not None,
        public_key_pem=None if row[8] is None else str(row[8]),
    )


def read_meta(db: Connection, key: str) -> str | None:
    """A value of the catalog's `meta` table, or None."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])
