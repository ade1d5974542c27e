"""The tenant namespace: where an organization's own XDM fields live (`_<tenantId>`).

AEP gives each organization a tenant id; custom fields must sit in an object named `_` plus that
id. Koppla derives the id from the organization id, so the platform and a connector that knows
only the organization agree on it without asking (a connector sending to Adobe's platform sets
its real tenant id in settings instead).
"""

from __future__ import annotations

import re

TENANT_ID = re.compile(r"[a-z][a-z0-9]{0,31}")
"""What a tenant id looks like: lower-case letters and digits, starting with a letter."""
FALLBACK = "tenant"
RESERVED = frozenset({"koppla", "unknown", "datetimes", "id", "experience", "repo", "dc", "acp"})
"""Ids whose namespace would clash with a system column or an Adobe namespace (`_koppla`,
`_unknown`, `_id`, `_experience`, ...); such an organization's tenant id gets `org` appended."""


def tenant_id(org_id: str) -> str:
    """The tenant id of `org_id`: its lower-cased letters and digits before `@`, without the
    trailing digits (`KOPPLADEMO00000000000000@AdobeOrg` → `kopplademo`), at most 32
    characters; `tenant` when nothing of that is left."""
    local = org_id.split("@", 1)[0].lower()
    kept = "".join(ch for ch in local if ch.isascii() and ch.isalnum())
    trimmed = kept.rstrip("0123456789") or kept
    trimmed = trimmed.lstrip("0123456789")[:32]
    if not trimmed:
        return FALLBACK
    return trimmed + "org" if trimmed in RESERVED else trimmed


def namespace(tenant: str) -> str:
    """The object name that holds `tenant`'s fields: `_` + the tenant id."""
    return "_" + tenant
