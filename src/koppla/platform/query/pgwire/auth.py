"""Who a PostgreSQL client is: user (organization), database (sandbox) and password (a token).

Connection strings are shaped like Adobe Query Service's: user `<orgId>@AdobeOrg`, database
`<sandbox>:all` (`prod:all`) or just `<sandbox>`, password an API or IMS access token. The token
decides the organization; the user must name that same organization. The sandbox comes from the
database, as the `x-sandbox-name` header picks it over HTTP. Every refusal happens before any
query runs and carries PostgreSQL's SQLSTATE for it; the password is never logged.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Protocol

from koppla.core.errors import InvalidInput
from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.models import check_sandbox

ORG_SUFFIX = "@AdobeOrg"
_ORG_USER = re.compile(r"[A-Za-z0-9]{1,64}@AdobeOrg")


class TokenCheck(Protocol):
    """What resolves a token: `Catalog.principal`."""

    def principal(self, token: str) -> Principal | None:
        """The holder of a valid token, else None."""
        ...


@dataclass(frozen=True, slots=True)
class Login:
    """A client authenticated: whose data it reads (`scope`) and as what name."""

    org_id: str
    sandbox: str
    token_name: str

    @property
    def scope(self) -> tuple[str, str]:
        """The query engine's scope: organization and sandbox."""
        return (self.org_id, self.sandbox)


@dataclass(frozen=True, slots=True)
class LoginRefused(Exception):
    """Why a login was refused: a SQLSTATE and a message for the client."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def sandbox_of(database: str) -> str:
    """The sandbox a database name names (`prod:all` → `prod`); `LoginRefused` 3D000 if none."""
    name = database.strip()
    if name.endswith(":all"):
        name = name[: -len(":all")]
    try:
        return check_sandbox(name or "prod")
    except InvalidInput:
        raise LoginRefused(
            "3D000",
            f'database "{database}" does not exist: use <sandbox>:all, such as prod:all',
        ) from None


def normal_org(user: str) -> str:
    """The organization id a user name names: itself, a doubled `@AdobeOrg` made single."""
    org = user.strip()
    doubled = ORG_SUFFIX + ORG_SUFFIX
    while org.endswith(doubled):
        org = org[: -len(ORG_SUFFIX)]
    return org


def login(tokens: TokenCheck, user: str, database: str, password: str) -> Login:
    """Check a client's credentials; `LoginRefused` with 28P01, 28000 or 3D000 otherwise."""
    sandbox = sandbox_of(database)
    principal = tokens.principal(password) if password else None
    if principal is None:
        raise LoginRefused(
            "28P01",
            f'password authentication failed for user "{user}": the password must be a valid, '
            "unexpired API token or access token",
        )
    asked = normal_org(user).removesuffix(ORG_SUFFIX)
    if asked != principal.org_id.removesuffix(ORG_SUFFIX):
        raise LoginRefused(
            "28000",
            f'user "{user}" is not the organization of this token; '
            "connect with the token's organization id as user",
        )
    return Login(principal.org_id, sandbox, principal.name)


def is_loopback(address: str) -> bool:
    """True when `address` (a peer's IP) is this machine: 127.0.0.0/8, ::1 (or IPv4-mapped)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def shown_user(user: str) -> str:
    """How a refused login's user may appear in the log: an organization id as it is, anything
    else (it may be a token pasted into the wrong field) not at all."""
    if _ORG_USER.fullmatch(user):
        return f"user {user}"
    return "an unknown user"
