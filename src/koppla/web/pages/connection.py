"""The Data Connection pages: service account, Settings, Order History, Data Customization.

Each acts for the signed-in person's organization, each form carries the session's CSRF token,
a refused save shows every message next to its field, and each field's help is its description
in `koppla.connector.settings`. The JSON twins are `/api/v1/connector/settings`,
`/api/v1/connector/service-account[/test]` and `/api/v1/connector/history`.

- `GET|POST /admin/connection/service-account`: authorization type, the workspace file, the
  platform URL and sandbox; `action=test` runs Test connection (pasted credentials, else the
  saved ones), `action=save` keeps the account (secret encrypted), `action=remove` forgets it.
- `GET|POST /admin/connection/settings?scope=default|website:<code>|new`: the scope switcher and
  every §2.1 field of that scope; what the saved settings put in effect.
- `GET /admin/connection/history`, `POST …/history` (Start Sync), `POST …/history/dataset`,
  `GET …/history/syncs` (the progress table, polled while a sync runs).
- `GET /admin/connection/customization`: the Custom Order Attributes table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from koppla.connector.connection_check import ConnectionReport
from koppla.connector.settings import (
    FormField,
    Problem,
    SettingsInvalid,
    WebsiteSettings,
    form_fields,
    parse_document,
    with_website,
)
from koppla.core import clock
from koppla.core.errors import Conflict, InvalidInput, KopplaError, NotFound
from koppla.platform.catalog.access import DEFAULT_SANDBOX, Principal
from koppla.platform.catalog.connector_settings import (
    ConnectorSettingsStore,
    StoredSettings,
    VersionConflict,
)
from koppla.platform.catalog.users import Session
from koppla.web.auth import Svc
from koppla.web.pages.render import page
from koppla.web.pages.session import CsrfChecked, SignedIn
from koppla.web.routes.connector_history import (
    NoConnector,
    SyncStart,
    history_syncs,
    start_history_sync,
)
from koppla.web.routes.connector_settings import (
    ConnectionClient,
    Pasted,
    PlatformUrls,
    Store,
    missing_references,
    platform_urls,
    read_settings,
    run_connection_test,
    save_account,
    save_settings,
    version_number,
)
from koppla.web.routes.custom_attributes import attribute_rows
from koppla.web.services import Services
from koppla.xdm.tenant import tenant_id

router = APIRouter(include_in_schema=False)

BASE = "/admin/connection"
TABS = (
    ("service-account", "Service account"),
    ("settings", "Settings"),
    ("history", "Order History"),
    ("customization", "Data Customization"),
)
SECTIONS = (
    ("general", "General"),
    ("data_collection", "Data collection"),
    ("customer_profiles", "Customer profiles"),
)
NO_STORE = {"Cache-Control": "no-store"}


async def _render(view: Callable[..., HTMLResponse], *args: Any, **kwargs: Any) -> HTMLResponse:
    """Render a page off the event loop (its reads touch SQLite files)."""
    return await run_in_threadpool(partial(view, *args, **kwargs))


def principal_of(session: Session) -> Principal:
    """The signed-in person as the APIs see a caller."""
    return Principal(name=session.user, org_id=session.org_id, kind="session")


@router.get(BASE, include_in_schema=False)
def connection_home(_: SignedIn) -> Response:
    """The Data Connection pages start at the service account."""
    return RedirectResponse(f"{BASE}/service-account", status.HTTP_303_SEE_OTHER)


# service account -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountForm:
    """The service account form as shown (a pasted workspace stays for the next button)."""

    auth_type: str = "oauth_server_to_server"
    workspace: str = ""
    platform_url: str = ""
    sandbox: str = DEFAULT_SANDBOX
    private_key: str = ""


def _allowed(request: Request) -> PlatformUrls:
    """Where this server's Test connection may go."""
    services: Services = request.app.state.services
    return platform_urls(services.settings)


def _account_page(
    request: Request,
    session: Session,
    store: ConnectorSettingsStore,
    form: AccountForm | None = None,
    *,
    errors: dict[str, str] | None = None,
    report: ConnectionReport | None = None,
    notice: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    account = store.service_account(session.org_id)
    shown = form or AccountForm(
        auth_type=account.auth_type if account else "oauth_server_to_server",
        platform_url=account.platform_url if account else _allowed(request).own,
        sandbox=account.sandbox if account else DEFAULT_SANDBOX,
    )
    answer = page(
        request,
        "connection_service_account.html",
        status_code=status_code,
        tabs=TABS,
        tab="service-account",
        account=account,
        form=shown,
        errors=errors or {},
        report=report,
        notice=notice,
    )
    answer.headers.update(NO_STORE)
    return answer


@router.get(f"{BASE}/service-account", response_class=HTMLResponse)
def service_account_page(
    request: Request, session: SignedIn, store: Store, saved: int = 0
) -> HTMLResponse:
    """The service account: its saved credential (never its secret) and the paste form."""
    notice = "Service account saved." if saved else ""
    return _account_page(request, session, store, notice=notice)


@router.post(f"{BASE}/service-account", response_class=HTMLResponse)
async def service_account_form(
    request: Request,
    session: CsrfChecked,
    store: Store,
    client: ConnectionClient,
) -> Response:
    """Test connection, save, or remove the service account (the form's `action`)."""
    data = await request.form()
    form = AccountForm(
        auth_type=_text(data, "auth_type") or "oauth_server_to_server",
        workspace=_text(data, "workspace"),
        platform_url=_text(data, "platform_url"),
        sandbox=_text(data, "sandbox") or DEFAULT_SANDBOX,
        private_key=_text(data, "private_key"),
    )
    action = _text(data, "action")
    principal = principal_of(session)
    pasted = Pasted(
        form.workspace, form.auth_type, form.platform_url, form.sandbox, form.private_key
    )
    try:
        if action == "remove":
            await run_in_threadpool(store.remove_service_account, session.org_id)
            return await _render(
                _account_page, request, session, store, notice="Service account removed."
            )
        if action == "save":
            await run_in_threadpool(save_account, store, principal, pasted, _allowed(request))
            return RedirectResponse(f"{BASE}/service-account?saved=1", status.HTTP_303_SEE_OTHER)
        report = await run_connection_test(client, store, principal, pasted, _allowed(request))
    except InvalidInput as error:
        errors = {_form_name(error.field): _message(error)}
        return await _render(
            _account_page, request, session, store, form, errors=errors, status_code=400
        )
    return await _render(_account_page, request, session, store, form, report=report)


def _form_name(field: str | None) -> str:
    """The form field an API field name is shown next to."""
    return {
        "authType": "auth_type",
        "platformUrl": "platform_url",
        "privateKey": "private_key",
    }.get(field or "", field or "workspace")


def _message(error: InvalidInput) -> str:
    """The message without the field name it starts with (the form shows it at the field)."""
    text = str(error)
    prefix = f"{error.field}: " if error.field else ""
    return text.removeprefix(prefix)


def _text(data: FormData, name: str) -> str:
    value = data.get(name)
    return value.strip() if isinstance(value, str) else ""


# settings ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """Where the scope switcher is: the defaults (global), a website, or a new website."""

    key: str
    label: str
    code: str | None = None

    @property
    def is_website(self) -> bool:
        """True for a website's scope (or a new website)."""
        return self.key != "default"


def scopes_of(document: dict[str, Any]) -> list[Scope]:
    """The scope switcher's choices: Default, each website, a new website."""
    found = [Scope("default", "Default (global)")]
    for site in document.get("websites", []):
        code = str(site.get("website_code", ""))
        found.append(Scope(f"website:{code}", f"Website: {code}", code))
    found.append(Scope("new", "Add a website…", None))
    return found


def _scope(document: dict[str, Any], key: str) -> Scope:
    return next((s for s in scopes_of(document) if s.key == key), scopes_of(document)[0])


def settings_fields(scope: Scope) -> list[FormField]:
    """The Settings tab's fields of `scope` (the Order History fields have their own tab)."""
    wanted = "website" if scope.is_website else "global"
    return [f for f in form_fields() if f.scope == wanted and f.section != "order_history"]


def _values(document: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """The form's values: what is saved, else each field's default."""
    if not scope.is_website:
        return {name: _shown_value(value) for name, value in document.items()}
    site: dict[str, Any] = next(
        (w for w in document.get("websites", []) if w.get("website_code") == scope.code), {}
    )
    defaults = {name: f.default for name, f in WebsiteSettings.model_fields.items()}
    return {**defaults, **site}


def _shown_value(value: Any) -> Any:
    """A saved value as its form field shows it: a list of names as `a, b`."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return value


def _from_form(
    data: FormData, document: dict[str, Any], scope: Scope
) -> tuple[dict[str, Any], str]:
    """The document with the form's values for `scope`, and the website code they are for."""
    values = {f.name: _form_value(data, f) for f in settings_fields(scope)}
    if not scope.is_website:
        return {**document, **values}, ""
    code = scope.code or _text(data, "website_code")
    saved = _values(document, scope) if scope.code else {}
    saved.pop("org_id", None)
    return with_website(document, {**saved, **values, "website_code": code}), code


def _form_value(data: FormData, field: FormField) -> object:
    """A field's value as a browser sends it: a checkbox is on when present; a text field
    left empty takes its default (e.g. the data space id)."""
    if field.kind == "checkbox":
        return field.name in data
    return _text(data, field.name) or (field.default if isinstance(field.default, str) else "")


def field_errors(
    problems: list[Problem], scope: Scope, code: str
) -> tuple[dict[str, str], list[Problem]]:
    """The problems shown next to a field of this scope's form, and the others."""
    shown: dict[str, str] = {}
    others: list[Problem] = []
    prefixes = [f"websites[{code}]."] if code else []
    for problem in problems:
        name = None
        if scope.is_website:
            name = next(
                (problem.field.removeprefix(p) for p in prefixes if problem.field.startswith(p)),
                None,
            )
            if name is None and problem.field.startswith("websites[") and not scope.code:
                name = problem.field.split("].", 1)[-1]  # a new website named by its index
        elif "." not in problem.field and "[" not in problem.field:
            name = problem.field
        if name:
            shown.setdefault(name, problem.message)
        else:
            others.append(problem)
    return shown, others


def in_effect(svc: Services, org_id: str, document: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """What the saved settings of a website put in effect: the storefront's alloy settings
    and where the connector sends, with what the organization lacks."""
    if not scope.code or not document.get("websites"):
        return {}
    try:
        settings = parse_document(document)
    except SettingsInvalid:
        return {}
    site = settings.website(scope.code)
    if site is None:
        return {}
    storefront: dict[str, str] = {}
    if site.storefront_events and site.own_web_sdk:
        storefront = {"imsOrgId": settings.org_id, "webSdkName": settings.web_sdk_name}
    elif site.storefront_events:
        storefront = {"imsOrgId": settings.org_id, "datastreamId": site.datastream_id}
    return {
        "storefront": storefront,
        "site": site,
        "warnings": [
            w
            for w in missing_references(svc, org_id, settings)
            if w.field.startswith(f"websites[{site.website_code}].")
        ],
    }


def _settings_page(
    request: Request,
    svc: Services,
    session: Session,
    stored: StoredSettings,
    scope: Scope,
    *,
    values: dict[str, Any] | None = None,
    problems: list[Problem] | None = None,
    code: str = "",
    notice: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    errors, others = field_errors(problems or [], scope, code or (scope.code or ""))
    fields = settings_fields(scope)
    return page(
        request,
        "connection_settings.html",
        status_code=status_code,
        tabs=TABS,
        tab="settings",
        stored=stored,
        scope=scope,
        scopes=scopes_of(stored.document),
        sections=[(key, label, [f for f in fields if f.section == key]) for key, label in SECTIONS],
        values=values if values is not None else _values(stored.document, scope),
        errors=errors,
        other_errors=others,
        notice=notice,
        effect=in_effect(svc, session.org_id, stored.document, scope),
        help=help_text,
    )


def help_text(field: FormField) -> str:
    """A field's description as help text: without the label it may start with (the page
    shows it above) and without the markdown code marks."""
    text = field.description.replace("`", "")
    head, colon, rest = text.partition(": ")
    if colon and head.lower() in field.label.lower() and rest:
        return rest[0].upper() + rest[1:]
    return text


@router.get(f"{BASE}/settings", response_class=HTMLResponse)
def settings_page(
    request: Request,
    svc: Svc,
    session: SignedIn,
    store: Store,
    scope: str = "default",
    saved: int = 0,
) -> HTMLResponse:
    """The Settings tab: the scope switcher and the fields of the chosen scope."""
    stored = read_settings(store, session.org_id)
    notice = f"Saved (version {stored.version})." if saved else ""
    return _settings_page(
        request, svc, session, stored, _scope(stored.document, scope), notice=notice
    )


@router.post(f"{BASE}/settings", response_class=HTMLResponse)
async def settings_form(request: Request, svc: Svc, session: CsrfChecked, store: Store) -> Response:
    """Save the Settings tab's fields of one scope (every rule checked on the whole document)."""
    data = await request.form()
    stored = await run_in_threadpool(read_settings, store, session.org_id)
    scope = _scope(stored.document, _text(data, "scope"))
    document, code = _from_form(data, stored.document, scope)
    values = _values(document, Scope(scope.key, scope.label, code or scope.code))
    try:
        expected = _form_version(_text(data, "version"))
        await run_in_threadpool(
            save_settings, svc, store, principal_of(session), document, expected
        )
    except SettingsInvalid as invalid:
        return await _render(
            _settings_page,
            request,
            svc,
            session,
            stored,
            scope,
            values=values,
            problems=invalid.problems,
            code=code,
            status_code=400,
        )
    except VersionConflict as conflict:
        return await _render(
            _settings_page,
            request,
            svc,
            session,
            stored,
            scope,
            values=values,
            problems=[Problem("version", str(conflict))],
            code=code,
            status_code=409,
        )
    target = f"website:{code}" if code else "default"
    return RedirectResponse(f"{BASE}/settings?scope={target}&saved=1", status.HTTP_303_SEE_OTHER)


def _form_version(text: str) -> int | None:
    """The version the form was opened with (None when the form has none); `SettingsInvalid`
    naming `version` when it is not one."""
    if not text:
        return None
    found = version_number(text)
    if found is None:
        raise SettingsInvalid([Problem("version", "must be a whole number")])
    return found


# order history -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryState:
    """What the Order History tab shows of one website, and why Start Sync is off."""

    site: WebsiteSettings | None
    dataset_id: str
    dataset_name: str
    blockers: tuple[str, ...]


def history_state(
    svc: Services,
    store: ConnectorSettingsStore,
    org_id: str,
    document: dict[str, Any],
    code: str | None,
) -> HistoryState:
    """The website's history dataset and every reason Start Sync is disabled."""
    blockers: list[str] = []
    if store.service_account(org_id) is None:
        blockers.append(
            "Start Sync needs service account credentials: paste the workspace file on the "
            "Service account tab."
        )
    site = None
    try:
        settings = parse_document(document) if document.get("websites") else None
    except SettingsInvalid:
        settings = None
        blockers.append("The saved settings break a rule: fix them on the Settings tab.")
    if settings is not None:
        site = settings.website(code) if code else settings.websites[0]
    if site is None:
        blockers.append("No website is configured: add one on the Settings tab.")
        return HistoryState(None, "", "", tuple(blockers))
    dataset = site.dataset_id if site.history_copy_dataset_id else site.history_dataset_id
    name = ""
    if not dataset:
        blockers.append("The dataset ID is blank.")
    else:
        try:
            name = svc.catalog.dataset(dataset, org_id).name
        except NotFound:
            blockers.append(f"The dataset ID {dataset} is invalid: no such dataset in {org_id}.")
    return HistoryState(site, dataset, name, tuple(blockers))


def _syncs(
    svc: Services, store: ConnectorSettingsStore, session: Session
) -> tuple[list[dict[str, Any]], str]:
    try:
        return history_syncs(svc, store, principal_of(session), 10), ""
    except (NotFound, Conflict) as error:
        return [], str(error)


def _history_page(
    request: Request,
    svc: Services,
    session: Session,
    store: ConnectorSettingsStore,
    code: str | None,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    stored = read_settings(store, session.org_id)
    state = history_state(svc, store, session.org_id, stored.document, code)
    syncs, unavailable = _syncs(svc, store, session)
    today = clock.now().date()
    shown = form or {
        "from": (today - timedelta(days=365)).isoformat(),
        "to": today.isoformat(),
    }
    return page(
        request,
        "connection_history.html",
        status_code=status_code,
        tabs=TABS,
        tab="history",
        stored=stored,
        websites=[w.get("website_code") for w in stored.document.get("websites", [])],
        state=state,
        fields={f.name: f for f in form_fields() if f.section == "order_history"},
        help=help_text,
        form=shown,
        errors=errors or {},
        notice=notice,
        syncs=syncs,
        running=any(s["status"] in ("producing", "running") for s in syncs),
        unavailable=unavailable,
    )


@router.get(f"{BASE}/history", response_class=HTMLResponse)
def history_page(
    request: Request,
    svc: Svc,
    session: SignedIn,
    store: Store,
    website: str | None = None,
    saved: int = 0,
) -> HTMLResponse:
    """The Order History tab: the dataset, From/To, Start Sync, the syncs' progress."""
    notice = "Order History dataset saved." if saved else ""
    return _history_page(request, svc, session, store, website, notice=notice)


@router.post(f"{BASE}/history/dataset", response_class=HTMLResponse)
async def history_dataset_form(
    request: Request, svc: Svc, session: CsrfChecked, store: Store
) -> Response:
    """Save a website's Order History dataset fields."""
    data = await request.form()
    code = _text(data, "website")
    stored = await run_in_threadpool(read_settings, store, session.org_id)
    site = next(
        (w for w in stored.document.get("websites", []) if w.get("website_code") == code), None
    )
    if site is None:
        errors = {"website": f"no website {code!r} in the settings"}
        return await _render(
            _history_page, request, svc, session, store, None, errors=errors, status_code=400
        )
    changed = {
        **site,
        "history_copy_dataset_id": "history_copy_dataset_id" in data,
        "history_dataset_id": _text(data, "history_dataset_id"),
    }
    document = with_website(stored.document, changed)
    try:
        await run_in_threadpool(
            save_settings, svc, store, principal_of(session), document, stored.version
        )
    except SettingsInvalid as invalid:
        errors, _ = field_errors(invalid.problems, Scope(f"website:{code}", "", code), code)
        return await _render(
            _history_page, request, svc, session, store, code, errors=errors, status_code=400
        )
    except VersionConflict as conflict:
        return await _render(
            _history_page,
            request,
            svc,
            session,
            store,
            code,
            errors={"version": str(conflict)},
            status_code=409,
        )
    return RedirectResponse(f"{BASE}/history?website={code}&saved=1", status.HTTP_303_SEE_OTHER)


@router.post(f"{BASE}/history", response_class=HTMLResponse)
async def start_sync_form(
    request: Request, svc: Svc, session: CsrfChecked, store: Store
) -> Response:
    """Start Sync: the same checks as `POST /api/v1/connector/history`."""
    data = await request.form()
    code = _text(data, "website") or None
    form = {"from": _text(data, "from"), "to": _text(data, "to")}
    body = SyncStart.model_validate({**form, "website": code})
    try:
        await run_in_threadpool(start_history_sync, svc, store, principal_of(session), body)
    except (NoConnector, Conflict) as error:
        errors = {"sync": str(error)}
        return await _render(
            _history_page,
            request,
            svc,
            session,
            store,
            code,
            form=form,
            errors=errors,
            status_code=409,
        )
    except KopplaError as error:
        field = error.field if isinstance(error, InvalidInput) else None
        name = field if field in ("from", "to") else "sync"
        return await _render(
            _history_page,
            request,
            svc,
            session,
            store,
            code,
            form=form,
            errors={name: str(error)},
            status_code=400,
        )
    return RedirectResponse(f"{BASE}/history?website={code or ''}", status.HTTP_303_SEE_OTHER)


@router.get(f"{BASE}/history/syncs", response_class=HTMLResponse)
def history_syncs_part(request: Request, svc: Svc, session: SignedIn, store: Store) -> HTMLResponse:
    """The syncs' progress table alone (htmx polls it while a sync runs)."""
    syncs, unavailable = _syncs(svc, store, session)
    running = any(s["status"] in ("producing", "running") for s in syncs)
    return page(
        request,
        "connection_syncs.html",
        syncs=syncs,
        running=running,
        unavailable=unavailable,
    )


# data customization ----------------------------------------------------------------------------


@router.get(f"{BASE}/customization", response_class=HTMLResponse)
async def customization_page(
    request: Request, session: SignedIn, svc: Svc, refreshed: int = 0
) -> HTMLResponse:
    """The Data Customization tab: the Custom Order Attributes table (JSON twin:
    `GET /api/v1/connector/custom-attributes`). Refresh reads both sides again."""
    uses, rows = await run_in_threadpool(attribute_rows, svc, principal_of(session))
    document = (
        await run_in_threadpool(read_settings, svc.connector_settings, session.org_id)
    ).document
    return page(
        request,
        "connection_customization.html",
        tabs=TABS,
        tab="customization",
        attributes=rows,
        datasets=uses,
        shown={row.dataset_id for row in rows},
        order_columns=_shown_value(list(document.get("custom_order_columns") or [])),
        item_columns=_shown_value(list(document.get("custom_item_columns") or [])),
        tenant=tenant_id(session.org_id),
        refreshed_ms=clock.now_ms() if refreshed else None,
    )
