"""The store connector's admin settings and service account, per organization, over HTTP.

The JSON twin of the Data Connection pages. Every call acts for the caller's organization.

- `GET /api/v1/connector/settings`: the organization's settings document, its `version`
  (also as `ETag`; `If-None-Match` answers 304), and each field's label, section and
  description (the form's help).
- `PUT /api/v1/connector/settings`: the whole document (`version`, or `If-Match: "v<n>"`,
  guards against a concurrent save: 409; `*` saves over any version, and anything else is
  refused naming `version`). 400 lists every problem: `{"detail", "errors": [{"field":
  "websites[base].dataset_id", "message"}]}`; a missing or empty `org_id` is the caller's.
  `warnings` name datasets and datastreams the organization does not have (saved anyway: the
  connector may send to Adobe's platform).
- `PUT|DELETE /api/v1/connector/settings/websites/{code}`: one website's settings.
- `GET|PUT|DELETE /api/v1/connector/service-account`: the pasted workspace file's credential (the
  client secret is encrypted at rest and never answered: `"clientSecret": "••••"`).
- `POST /api/v1/connector/service-account/test`: Test connection, with a pasted workspace or
  the saved account: a token from the platform's IMS endpoint, then a platform call. Every
  field of a paste must be UTF-8 text (400 naming the field).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from koppla.connector.connection_check import (
    CONNECTION_TIMEOUT_S,
    ConnectionReport,
    ServiceCredentials,
    check_connection,
)
from koppla.connector.settings import (
    AdminSettings,
    Problem,
    SettingsInvalid,
    document_json,
    form_fields,
    parse_document,
    with_website,
    without_website,
)
from koppla.core import clock, codec
from koppla.core.errors import InvalidInput, NotFound
from koppla.core.settings import Settings
from koppla.core.text import is_unicode
from koppla.core.tls import verify_for
from koppla.platform.catalog.access import DEFAULT_SANDBOX, Principal
from koppla.platform.catalog.connector_settings import (
    ConnectorSettingsStore,
    ServiceAccount,
    StoredSettings,
    VersionConflict,
)
from koppla.platform.catalog.models import check_sandbox
from koppla.platform.catalog.workspace import parse_workspace
from koppla.web.auth import Caller, Svc
from koppla.web.services import Services
from koppla.xdm.tenant import tenant_id

router = APIRouter(prefix="/api/v1/connector", tags=["connector settings"])

VERSION = re.compile(r"[0-9]{1,18}")
"""A settings version as text (an `ETag` is `"v<version>"`)."""

_RULES = {"description": "Every broken rule: `{detail, errors: [{field, message}]}`."}
_STALE = {"description": "The settings changed since the version the save was based on."}
_NO_ACCOUNT = {"description": "The organization has no service account."}
_BAD_PASTE = {"description": "A refused workspace file or setting, naming its field."}


def settings_store(request: Request) -> ConnectorSettingsStore:
    """The services' store of connector settings (on the catalog file)."""
    svc: Services = request.app.state.services
    return svc.connector_settings


Store = Annotated[ConnectorSettingsStore, Depends(settings_store)]


async def connection_client(request: Request) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP client Test connection uses: the system's trust store, plus this server's own
    certificate when it serves TLS (so a self-signed platform can be tested)."""
    svc: Services = request.app.state.services
    verify = verify_for(svc.settings.tls_cert)
    async with httpx.AsyncClient(timeout=CONNECTION_TIMEOUT_S, verify=verify) as client:
        yield client


ConnectionClient = Annotated[httpx.AsyncClient, Depends(connection_client)]


# settings ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Saved:
    """A saved document and what it names that the organization lacks."""

    stored: StoredSettings
    warnings: list[Problem]


def read_settings(store: ConnectorSettingsStore, org_id: str) -> StoredSettings:
    """The organization's stored settings, its organization id filled in when none was saved."""
    stored = store.get(org_id)
    if not stored.document:
        empty = {"org_id": org_id, "web_sdk_name": "", "websites": []}
        return StoredSettings(org_id, empty, stored.version, stored.updated_ms, stored.updated_by)
    return stored


def check_for(org_id: str, data: Any) -> AdminSettings:
    """`data` as the settings of `org_id`; `SettingsInvalid` lists every problem.

    A missing (or empty) `org_id` is the organization's; another organization's is refused
    (one per instance, and a person or token acts for its own organization only), as is any
    value that is not text.
    """
    if not isinstance(data, dict):
        raise SettingsInvalid([Problem("", "the settings must be a JSON object")])
    given = {k: v for k, v in data.items() if k != "version"}
    if given.get("org_id", "") == "":
        given["org_id"] = org_id
    problems: list[Problem] = []
    try:
        checked = parse_document(given)
    except SettingsInvalid as invalid:
        problems = invalid.problems
    named = given["org_id"]
    if named != org_id and not any(p.field == "org_id" for p in problems):
        problems.insert(
            0,
            Problem(
                "org_id",
                f"must be this organization's id, {org_id}: one organization per instance",
            ),
        )
    own = tenant_id(org_id)
    tenant = given.get("tenant_id")
    if tenant and tenant != own and not any(p.field == "tenant_id" for p in problems):
        problems.append(
            Problem(
                "tenant_id",
                f"this platform's tenant id for {org_id} is {own}: leave it empty or set {own} "
                "(another tenant id belongs in connector.toml, for a connector sending to "
                "Adobe Experience Platform)",
            )
        )
    if problems:
        raise SettingsInvalid(problems)
    return checked


def save_settings(
    svc: Services,
    store: ConnectorSettingsStore,
    principal: Principal,
    data: Any,
    expect_version: int | None,
) -> Saved:
    """Check `data` and save it as the settings of the principal's organization."""
    checked = check_for(principal.org_id, data)
    stored = store.put(
        principal.org_id, document_json(checked), by=principal.name, expect_version=expect_version
    )
    return Saved(stored, missing_references(svc, principal.org_id, checked))


def missing_references(svc: Services, org_id: str, settings: AdminSettings) -> list[Problem]:
    """The datasets and datastreams `settings` name that the organization does not have."""
    found: list[Problem] = []
    for site in settings.websites:
        where = f"websites[{site.website_code}]"
        for name in ("dataset_id", "profile_dataset_id", "history_dataset_id"):
            value = getattr(site, name)
            if value and not _has(lambda v: svc.catalog.dataset(v, org_id), value):
                found.append(Problem(f"{where}.{name}", f"no dataset {value!r} in {org_id}"))
        for name in ("datastream_id", "profile_datastream_id"):
            value = getattr(site, name)
            if value and not _has(lambda v: svc.catalog.datastream(v, org_id), value):
                found.append(Problem(f"{where}.{name}", f"no datastream {value!r} in {org_id}"))
    return found


def _has(lookup: Any, value: str) -> bool:
    try:
        lookup(value)
    except NotFound:
        return False
    return True


def settings_json(stored: StoredSettings, warnings: list[Problem] | None = None) -> dict[str, Any]:
    """The answer of `GET /api/v1/connector/settings`."""
    return {
        "orgId": stored.org_id,
        "version": stored.version,
        "updatedMs": stored.updated_ms,
        "updatedBy": stored.updated_by,
        "settings": stored.document,
        "warnings": [w.as_json() for w in warnings or []],
        "fields": [f.as_json() for f in form_fields()],
    }


def _refused(invalid: SettingsInvalid) -> JSONResponse:
    body = {"detail": str(invalid), "errors": [p.as_json() for p in invalid.problems]}
    return JSONResponse(body, status_code=400)


def _conflict(conflict: VersionConflict) -> JSONResponse:
    return JSONResponse({"detail": str(conflict), "version": conflict.current}, status_code=409)


def version_number(text: str) -> int | None:
    """`text` as a settings version (1 to 18 ASCII digits), else None."""
    return int(text) if VERSION.fullmatch(text) else None


def _expected(body: Any, if_match: str | None) -> int | None:
    """The version a save is based on: the body's `version`, else `If-Match: "v<n>"` (absent
    or `*`: any version); `SettingsInvalid` naming `version` for anything else."""
    if isinstance(body, dict) and body.get("version") is not None:
        version = body["version"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise SettingsInvalid([Problem("version", "must be a whole number")])
        return version
    tag = (if_match or "").strip()
    if tag in ("", "*"):
        return None
    tag = tag.strip('"')
    found = version_number(tag[1:]) if tag.startswith("v") else None
    if found is None:
        raise SettingsInvalid(
            [Problem("version", 'If-Match must be an ETag these settings answered ("v<n>") or *')]
        )
    return found


def _answer(saved: Saved) -> JSONResponse:
    return JSONResponse(
        settings_json(saved.stored, saved.warnings), headers={"ETag": saved.stored.etag}
    )


@router.get(
    "/settings",
    response_model=None,
    responses={304: {"description": "Unchanged since the version named in `If-None-Match`."}},
)
async def get_settings(
    principal: Caller,
    store: Store,
    if_none_match: Annotated[str | None, Header()] = None,
) -> JSONResponse | Response:
    """The organization's connector settings, their version, and each field's help."""
    stored = await run_in_threadpool(read_settings, store, principal.org_id)
    if if_none_match and if_none_match.strip() == stored.etag:
        return Response(status_code=304, headers={"ETag": stored.etag})
    return JSONResponse(settings_json(stored), headers={"ETag": stored.etag})


@router.put("/settings", response_model=None, responses={400: _RULES, 409: _STALE})
async def put_settings(
    principal: Caller,
    svc: Svc,
    store: Store,
    body: Annotated[Any, Body()],
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Replace the organization's connector settings (checked against every §2.1 rule)."""
    try:
        expected = _expected(body, if_match)
        saved = await run_in_threadpool(save_settings, svc, store, principal, body, expected)
    except SettingsInvalid as invalid:
        return _refused(invalid)
    except VersionConflict as conflict:
        return _conflict(conflict)
    return _answer(saved)


@router.put("/settings/websites/{code}", response_model=None, responses={400: _RULES, 409: _STALE})
async def put_website(
    code: str,
    principal: Caller,
    svc: Svc,
    store: Store,
    body: Annotated[Any, Body()],
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Replace (or add) one website's settings; the rest of the document stays."""
    if not isinstance(body, dict):
        return _refused(SettingsInvalid([Problem("", "the website must be a JSON object")]))
    site = {k: v for k, v in body.items() if k != "version"}
    if site.setdefault("website_code", code) != code:
        return _refused(
            SettingsInvalid([Problem(f"websites[{code}].website_code", f"must be {code!r}")])
        )

    def save() -> Saved:
        current = read_settings(store, principal.org_id)
        document = with_website(current.document, site)
        expected = _expected(body, if_match)
        return save_settings(svc, store, principal, document, expected)

    try:
        return _answer(await run_in_threadpool(save))
    except SettingsInvalid as invalid:
        return _refused(invalid)
    except VersionConflict as conflict:
        return _conflict(conflict)


@router.delete(
    "/settings/websites/{code}", response_model=None, responses={400: _RULES, 409: _STALE}
)
async def delete_website(code: str, principal: Caller, svc: Svc, store: Store) -> JSONResponse:
    """Stop collecting website `code` (404 when it is not configured)."""

    def remove() -> Saved:
        current = read_settings(store, principal.org_id)
        codes = [w.get("website_code") for w in current.document.get("websites", [])]
        if code not in codes:
            raise NotFound(f"no website {code!r} in the connector settings")
        document = without_website(current.document, code)
        return save_settings(svc, store, principal, document, current.version)

    try:
        return _answer(await run_in_threadpool(remove))
    except NotFound as error:
        raise HTTPException(404, detail=str(error)) from None
    except SettingsInvalid as invalid:
        return _refused(invalid)
    except VersionConflict as conflict:
        return _conflict(conflict)


# service account -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pasted:
    """What the service account form (or API) sends."""

    workspace: str
    auth_type: str = "oauth_server_to_server"
    platform_url: str = ""
    sandbox: str = DEFAULT_SANDBOX
    private_key: str = ""


def pasted_credentials(pasted: Pasted) -> ServiceCredentials:
    """The credential in a pasted workspace file; `InvalidInput` naming what is wrong."""
    if pasted.auth_type not in ("oauth_server_to_server", "jwt"):
        raise InvalidInput(
            "authType: must be oauth_server_to_server (or the deprecated jwt)", field="authType"
        )
    if not pasted.workspace.strip():
        raise InvalidInput(
            "workspace: paste the workspace file (JSON) of the Developer Console project",
            field="workspace",
        )
    try:
        found = parse_workspace(pasted.workspace)
    except InvalidInput as error:
        raise InvalidInput(f"workspace: {error}", field="workspace") from None
    if found.auth_type != pasted.auth_type:
        kind = "OAuth server-to-server" if found.auth_type != "jwt" else "JWT"
        raise InvalidInput(
            f"authType: the workspace holds a {kind} credential: choose that type",
            field="authType",
        )
    return ServiceCredentials(
        client_id=found.client_id,
        client_secret=found.client_secret,
        org_id=found.org_id,
        scopes=found.scopes,
        auth_type=found.auth_type,
        technical_account_id=found.technical_account_id,
        private_key=pasted.private_key,
    )


def check_platform_url(url: str, allowed: PlatformUrls) -> str:
    """`url` without its trailing slash when it is an http(s) URL without credentials, query or
    fragment, of this server (`allowed.own`) or of a host `connection_test_hosts` allows: Test
    connection makes this server send requests, so it may not be aimed anywhere else."""
    try:
        parsed = httpx.URL(url.strip()) if url.strip() else None
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput("platformUrl: must be an http:// or https:// URL", field="platformUrl")
    if parsed.userinfo:
        raise InvalidInput("platformUrl: must not carry a user or password", field="platformUrl")
    if parsed.query or parsed.fragment:
        raise InvalidInput("platformUrl: must not carry a query or fragment", field="platformUrl")
    found = str(parsed).rstrip("/")
    if found != allowed.own and parsed.host not in allowed.hosts:
        raise InvalidInput(
            f"platformUrl: {found} is neither this platform ({allowed.own}) nor a host the "
            "connection_test_hosts setting allows",
            field="platformUrl",
        )
    return found


@dataclass(frozen=True, slots=True)
class PlatformUrls:
    """Where Test connection may go: this server's own base URL, and the allowed hosts."""

    own: str
    hosts: tuple[str, ...] = ()


def platform_urls(settings: Settings) -> PlatformUrls:
    """This server's own base URL (loopback for a wildcard bind) and the allowed hosts."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    if ":" in host:
        host = f"[{host}]"
    return PlatformUrls(
        f"{settings.scheme}://{host}:{settings.port}", settings.connection_test_hosts
    )


def save_account(
    store: ConnectorSettingsStore, principal: Principal, pasted: Pasted, allowed: PlatformUrls
) -> ServiceAccount:
    """Keep the pasted credential as the organization's service account (secret encrypted)."""
    credentials = pasted_credentials(pasted)
    if credentials.auth_type == "jwt" and not pasted.private_key.strip():
        raise InvalidInput(
            "privateKey: a JWT credential needs its private key (JWT is deprecated: prefer "
            "OAuth server-to-server)",
            field="privateKey",
        )
    account = ServiceAccount(
        org_id=principal.org_id,
        auth_type=credentials.auth_type,
        client_id=credentials.client_id,
        credential_org_id=credentials.org_id,
        technical_account_id=credentials.technical_account_id,
        scopes=credentials.scopes,
        platform_url=check_platform_url(pasted.platform_url or allowed.own, allowed),
        sandbox=_sandbox(pasted.sandbox),
        updated_ms=clock.now_ms(),
        updated_by=principal.name,
    )
    secrets = {"client_secret": credentials.client_secret}
    if credentials.private_key:
        secrets["private_key"] = credentials.private_key
    return store.save_service_account(account, secrets)


def _sandbox(name: str) -> str:
    try:
        return check_sandbox(name.strip() or DEFAULT_SANDBOX)
    except InvalidInput as error:
        raise InvalidInput(f"sandbox: {error}", field="sandbox") from None


def saved_credentials(
    store: ConnectorSettingsStore, org_id: str
) -> tuple[ServiceAccount, ServiceCredentials] | None:
    """The organization's saved service account and its (decrypted) credentials, or None."""
    account = store.service_account(org_id)
    secrets = store.secrets(org_id) if account is not None else None
    if account is None or secrets is None:
        return None
    credentials = ServiceCredentials(
        client_id=account.client_id,
        client_secret=secrets.get("client_secret", ""),
        org_id=account.credential_org_id,
        scopes=account.scopes,
        auth_type=account.auth_type,
        technical_account_id=account.technical_account_id,
        private_key=secrets.get("private_key", ""),
    )
    return account, credentials


async def run_connection_test(
    client: httpx.AsyncClient,
    store: ConnectorSettingsStore,
    principal: Principal,
    pasted: Pasted | None,
    allowed: PlatformUrls,
) -> ConnectionReport:
    """Test connection with `pasted` credentials, or the saved account when None."""
    if pasted is not None and pasted.workspace.strip():
        credentials = pasted_credentials(pasted)
        url = check_platform_url(pasted.platform_url or allowed.own, allowed)
        sandbox = _sandbox(pasted.sandbox)
    else:
        saved = await run_in_threadpool(saved_credentials, store, principal.org_id)
        if saved is None:
            raise InvalidInput(
                "workspace: no service account is saved: paste the workspace file",
                field="workspace",
            )
        account, credentials = saved
        url, sandbox = check_platform_url(account.platform_url, allowed), account.sandbox
    stored = await run_in_threadpool(store.get, principal.org_id)
    expected = str(stored.document.get("org_id") or principal.org_id)
    return await check_connection(client, url, credentials, sandbox=sandbox, expected_org=expected)


PASTED_FIELDS = {
    "workspace": "workspace",
    "authType": "auth_type",
    "platformUrl": "platform_url",
    "sandbox": "sandbox",
    "privateKey": "private_key",
}
"""The service account body's fields, and the `Pasted` attribute each fills."""


def _pasted(body: Any) -> Pasted:
    """The service account form's fields in `body`; `InvalidInput` naming a field that is not
    text (or not Unicode: JSON may carry lone UTF-16 surrogates such as `\\ud800`)."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="workspace")
    workspace = body.get("workspace", "")
    if isinstance(workspace, dict):
        try:
            workspace = codec.dumps(workspace).decode()
        except TypeError:  # a string in it is not Unicode
            raise InvalidInput("workspace: must be UTF-8 text", field="workspace") from None
    given = {**body, "workspace": workspace}
    values = {"auth_type": "oauth_server_to_server", "sandbox": DEFAULT_SANDBOX}
    for name, attribute in PASTED_FIELDS.items():
        value = given.get(name, values.get(attribute, ""))
        if not isinstance(value, str):
            raise InvalidInput(f"{name}: must be text", field=name)
        if not is_unicode(value):
            raise InvalidInput(f"{name}: must be UTF-8 text", field=name)
        values[attribute] = value
    return Pasted(**values)


def _invalid(error: InvalidInput) -> JSONResponse:
    field = error.field or "workspace"
    body = {"detail": str(error), "errors": [{"field": field, "message": str(error)}]}
    return JSONResponse(body, status_code=400)


@router.get("/service-account", response_model=None, responses={404: _NO_ACCOUNT})
async def get_service_account(principal: Caller, store: Store) -> dict[str, object]:
    """The organization's service account (404 without one); the secret is never answered."""
    account = await run_in_threadpool(store.service_account, principal.org_id)
    if account is None:
        raise HTTPException(404, detail="no service account: paste a workspace file")
    return account.as_json()


@router.put("/service-account", response_model=None, responses={400: _BAD_PASTE})
async def put_service_account(
    principal: Caller, svc: Svc, store: Store, body: Annotated[Any, Body()]
) -> JSONResponse:
    """Save a pasted workspace file's credential (`{"authType", "workspace", "platformUrl",
    "sandbox", "privateKey"}`); 400 names the field of a refusal."""
    try:
        pasted = _pasted(body)
        account = await run_in_threadpool(
            save_account, store, principal, pasted, platform_urls(svc.settings)
        )
    except InvalidInput as error:
        return _invalid(error)
    return JSONResponse(account.as_json())


@router.delete(
    "/service-account", status_code=204, response_model=None, responses={404: _NO_ACCOUNT}
)
async def delete_service_account(principal: Caller, store: Store) -> Response:
    """Forget the organization's service account (404 without one)."""
    if not await run_in_threadpool(store.remove_service_account, principal.org_id):
        raise HTTPException(404, detail="no service account")
    return Response(status_code=204)


@router.post("/service-account/test", response_model=None, responses={400: _BAD_PASTE})
async def service_account_test(
    principal: Caller,
    svc: Svc,
    store: Store,
    client: ConnectionClient,
    body: Annotated[Any, Body()] = None,
) -> JSONResponse:
    """Test connection: fetch a token with the pasted (or saved) credentials and call the
    platform with it; `{"ok", "problem", "message", "steps"}` says what failed."""
    try:
        pasted = _pasted(body) if body else None
        report = await run_connection_test(
            client, store, principal, pasted, platform_urls(svc.settings)
        )
    except InvalidInput as error:
        return _invalid(error)
    return JSONResponse(report.as_json())
