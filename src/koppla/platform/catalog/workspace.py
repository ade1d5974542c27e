"""The workspace file of Adobe's Developer Console: what `koppla credentials create` prints and
what the Data Connection service account page takes.

Its shape is the Console's `<project>-<workspace>.json`: `project.org.ims_org_id`, and under
`project.workspace.details.credentials[]` one entry per credential with its `integration_type`
(`oauth_server_to_server`, or `service` for the deprecated JWT kind) and the matching object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from koppla.core import codec
from koppla.core.errors import InvalidInput
from koppla.platform.catalog.access import AuthType, Credential
from koppla.platform.catalog.models import check_org_id

MAX_WORKSPACE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class WorkspaceCredential:
    """The part of a workspace file a connector needs to fetch tokens."""

    client_id: str
    client_secret: str
    org_id: str
    technical_account_id: str
    scopes: tuple[str, ...]
    auth_type: AuthType


def workspace_json(
    credential: Credential, secret: str, *, project: str = "Koppla"
) -> dict[str, Any]:
    """The Developer Console workspace file for `credential`, with its client secret."""
    if credential.auth_type == "jwt":
        entry: dict[str, Any] = {
            "id": credential.client_id[:12],
            "name": credential.name,
            "integration_type": "service",
            "jwt": {
                "client_id": credential.client_id,
                "client_secret": secret,
                "techacct": credential.technical_account_id,
                "meta_scopes": list(credential.scopes),
            },
        }
    else:
        entry = {
            "id": credential.client_id[:12],
            "name": credential.name,
            "integration_type": "oauth_server_to_server",
            "oauth_server_to_server": {
                "client_id": credential.client_id,
                "client_secrets": [secret],
                "technical_account_email": credential.technical_account_id,
                "technical_account_id": credential.technical_account_id,
                "scopes": list(credential.scopes),
            },
        }
    return {
        "project": {
            "id": credential.client_id[:16],
            "name": project,
            "title": project,
            "org": {"id": credential.org_id.split("@")[0], "ims_org_id": credential.org_id},
            "workspace": {
                "id": credential.client_id[:16],
                "name": "Production",
                "details": {"credentials": [entry]},
            },
        }
    }


def parse_workspace(text: str) -> WorkspaceCredential:
    """The first usable credential of a workspace file; `InvalidInput` naming what is wrong."""
    if len(text.encode()) > MAX_WORKSPACE_BYTES:
        raise InvalidInput("the workspace file is larger than 64 KiB", field="workspace")
    try:
        document = codec.loads(text)
    except (ValueError, TypeError):
        raise InvalidInput("the workspace file is not JSON", field="workspace") from None
    project = _object(document, "project", "project")
    org = _object(project, "org", "project.org")
    org_id = org.get("ims_org_id")
    if not isinstance(org_id, str):
        raise InvalidInput("project.org.ims_org_id is missing", field="project.org.ims_org_id")
    try:
        check_org_id(org_id)
    except InvalidInput as error:
        raise InvalidInput(str(error), field="project.org.ims_org_id") from None
    workspace = _object(project, "workspace", "project.workspace")
    details = _object(workspace, "details", "project.workspace.details")
    credentials = details.get("credentials")
    if not isinstance(credentials, list) or not credentials:
        raise InvalidInput(
            "the workspace has no credential (project.workspace.details.credentials)",
            field="project.workspace.details.credentials",
        )
    for index, entry in enumerate(credentials):
        if not isinstance(entry, dict):
            continue
        where = f"project.workspace.details.credentials[{index}]"
        if isinstance(entry.get("oauth_server_to_server"), dict):
            return _oauth(entry["oauth_server_to_server"], org_id, where)
        if isinstance(entry.get("jwt"), dict):
            return _jwt(entry["jwt"], org_id, where)
    raise InvalidInput(
        "no OAuth server-to-server or JWT credential in the workspace",
        field="project.workspace.details.credentials",
    )


def _oauth(body: dict[str, Any], org_id: str, where: str) -> WorkspaceCredential:
    where += ".oauth_server_to_server"
    secrets = body.get("client_secrets")
    if not isinstance(secrets, list) or not secrets or not isinstance(secrets[0], str):
        raise InvalidInput(f"{where}.client_secrets is missing", field=f"{where}.client_secrets")
    return WorkspaceCredential(
        client_id=_text(body, "client_id", where),
        client_secret=secrets[0],
        org_id=org_id,
        technical_account_id=str(body.get("technical_account_id", "")),
        scopes=_scopes(body.get("scopes"), f"{where}.scopes"),
        auth_type="oauth_server_to_server",
    )


def _jwt(body: dict[str, Any], org_id: str, where: str) -> WorkspaceCredential:
    where += ".jwt"
    return WorkspaceCredential(
        client_id=_text(body, "client_id", where),
        client_secret=_text(body, "client_secret", where),
        org_id=org_id,
        technical_account_id=str(body.get("techacct", "")),
        scopes=_scopes(body.get("meta_scopes", []), f"{where}.meta_scopes"),
        auth_type="jwt",
    )


def _object(parent: object, key: str, where: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} is missing or not an object", field=where)
    return value


def _text(body: dict[str, Any], key: str, where: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{where}.{key} is missing", field=f"{where}.{key}")
    return value


def _scopes(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise InvalidInput(f"{where} must be a list of scope names", field=where)
    return tuple(value)
