"""The connector's settings, and the rules of the Data Connection admin (domain.md §2.1).

Two shapes share one set of fields and rules:

- `AdminSettings`: what a merchant sets in the admin for one organization (the organization id,
  the AEP Web SDK name, and per website what is collected and where it goes). The platform
  stores it in its catalog and serves it at `/api/v1/connector/settings`; the pages and the API
  check it with `parse_document`, which names every problem's field (`websites[base].dataset_id`).
- `ConnectorSettings`: everything one connector reads: `<home>/connector.toml`, then
  `KOPPLA_CONNECTOR_*` environment variables, over the admin settings as the platform last served
  them (`<home>/connector/settings-cache.json`, see `koppla.connector.remote_settings`). A key
  set in the file or the environment wins over the platform's (`websites` as a whole, and with
  it `org_id`); platform settings that break a rule with the local ones are logged and left out.

The API token comes from the environment (`KOPPLA_CONNECTOR_TOKEN`) only: it is never read from
or written to disk, never logged, and shown redacted in reprs.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from koppla.bus.queue import check_name
from koppla.connector.custom_attributes import COLUMN_NAME, CustomColumns
from koppla.core import codec
from koppla.core.errors import InvalidInput
from koppla.core.settings import sources_with_home_file
from koppla.xdm.tenant import TENANT_ID
from koppla.xdm.tenant import tenant_id as derived_tenant_id

log = logging.getLogger("koppla.connector.settings")

SETTINGS_FILE = "connector.toml"
CACHE_FILE = Path("connector") / "settings-cache.json"
"""Under the home: the admin settings as the platform last served them."""
ENV_PREFIX = "KOPPLA_CONNECTOR_"
TOKEN_ENV = "KOPPLA_CONNECTOR_TOKEN"
QUEUE_URL_ENV = "KOPPLA_CONNECTOR_QUEUE_URL"
CLIENT_SECRET_ENV = "KOPPLA_CONNECTOR_CLIENT_SECRET"
DATASET_ID = r"^[A-Za-z0-9_-]{0,128}$"
"""A dataset id: letters, digits, `_` and `-` (AEP's are 24 hex digits); it goes into URLs."""
DATASTREAM_ID = r"^[A-Za-z0-9_-]{0,128}$"
"""A datastream id (AEP's are UUIDs); it goes into URLs."""
ORG_ID = r"^[A-Za-z0-9]{24}@AdobeOrg$"
WEBSITE_CODE = re.compile(r"[a-z0-9_]{1,32}")
DOCUMENT_KEYS = (
    "org_id",
    "web_sdk_name",
    "tenant_id",
    "custom_order_columns",
    "custom_item_columns",
    "websites",
)
"""The keys of `AdminSettings`: what the platform stores per organization."""

PATTERN_RULES = {
    "org_id": "must be 24 letters or digits followed by @AdobeOrg",
    "web_sdk_name": "must be a JavaScript name: letters, digits, _ and $, not starting with a "
    "digit",
    "website_code": "must be 1 to 32 lower-case letters, digits or _ (store_website.code)",
    "dataset_id": "must be letters, digits, _ and - only",
    "profile_dataset_id": "must be letters, digits, _ and - only",
    "history_dataset_id": "must be letters, digits, _ and - only",
    "datastream_id": "must be letters, digits, _ and - only",
    "profile_datastream_id": "must be letters, digits, _ and - only",
    "environment_id": "must be letters, digits, _ and - only",
    "tenant_id": "must be 1 to 32 lower-case letters or digits, starting with a letter",
}
"""Pattern failures said in words, by field name."""

Section = Literal["general", "data_collection", "customer_profiles", "order_history"]


def _shown(label: str, section: Section) -> dict[str, Any]:
    """How the admin page shows a field: its label and the part of the form it is in."""
    return {"label": label, "section": section}


OrgId = Annotated[
    str,
    Field(
        default="",
        pattern=r"^([A-Za-z0-9]{24}@AdobeOrg)?$",
        description="Organization ID: 24 letters or digits followed by `@AdobeOrg`. One per "
        "instance: every website sends to this organization.",
        json_schema_extra=_shown("Organization ID", "general"),
    ),
]
WebSdkName = Annotated[
    str,
    Field(
        default="",
        pattern=r"^([A-Za-z_$][A-Za-z0-9_$]{0,63})?$",
        description="AEP Web SDK Name: the name of the alloy instance already on the site's "
        "pages (`window[<name>]`, usually `alloy`); required while a website has "
        "own_web_sdk on.",
        json_schema_extra=_shown("AEP Web SDK Name", "data_collection"),
    ),
]


TenantId = Annotated[
    str,
    Field(
        default="",
        pattern=f"^({TENANT_ID.pattern})?$",
        description="Tenant ID: the organization's tenant id, whose namespace (`_<tenant id>`) "
        "holds the custom order attributes in the events (`commerce.order._<tenant id>`, "
        "`productListItems[]._<tenant id>`); empty: derived from the organization id "
        "(`KOPPLADEMO…@AdobeOrg` → `kopplademo`). Set it to Adobe's tenant id when sending to "
        "Adobe Experience Platform.",
    ),
]


def _column_names(value: object) -> object:
    """Column names given as one text (`"gift_note, delivery_date"`, as a form sends them)
    become a list; anything else is left to the field's type."""
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    return value


def _checked_columns(names: tuple[str, ...]) -> tuple[str, ...]:
    """`names`, each an SQL column name (letters, digits and `_`, not starting with a digit,
    at most 64), none twice."""
    seen: set[str] = set()
    for name in names:
        if not COLUMN_NAME.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a column name: letters, digits and _ only, not starting with "
                "a digit, at most 64 characters"
            )
        if name.lower() in seen:
            raise ValueError(f"column {name!r} is named twice")
        seen.add(name.lower())
    return names


ColumnNames = Annotated[
    tuple[str, ...],
    BeforeValidator(_column_names),
    AfterValidator(_checked_columns),
]
CustomOrderColumns = Annotated[
    ColumnNames,
    Field(
        default=(),
        description="Custom order columns: columns of the shop's `sales_order` whose values "
        "travel as order-level custom attributes (named as the column), besides the JSON "
        "object in `sales_order_payment.additional_information`; a column wins over a JSON key "
        "of the same name. A column the table lacks is reported and left out.",
    ),
]
CustomItemColumns = Annotated[
    ColumnNames,
    Field(
        default=(),
        description="Custom item columns: columns of the shop's `sales_order_item` whose values "
        "travel as item-level custom attributes, besides the JSON object in "
        "`sales_order_item.additional_data`. A column the table lacks is reported and left "
        "out.",
    ),
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: the field it is about (`websites[base].dataset_id`) and why."""

    field: str
    message: str

    def as_json(self) -> dict[str, str]:
        """`{"field", "message"}`, as the API lists it."""
        return {"field": self.field, "message": self.message}


class SettingsInvalid(InvalidInput):
    """Settings that break rules: `problems` lists every one, each naming its field."""

    def __init__(self, problems: list[Problem]) -> None:
        shown = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in problems)
        super().__init__(f"invalid connector settings: {shown}", field=problems[0].field or None)
        self.problems = problems


Loc = tuple[str | int, ...]


def _broken(loc: Loc, message: str, value: object) -> InitErrorDetails:
    """A broken rule as a validation error at its field."""
    return InitErrorDetails(
        type=PydanticCustomError("settings_rule", "{message}", {"message": message}),
        loc=loc,
        input=value,
    )


def _again(issue: ErrorDetails) -> InitErrorDetails:
    """A field's validation error, to be raised again with others."""
    found = InitErrorDetails(type=issue["type"], loc=issue["loc"], input=issue["input"])
    if "ctx" in issue:
        found["ctx"] = issue["ctx"]
    return found


def _refuse(title: str, problems: list[tuple[Loc, str, object]]) -> NoReturn:
    """Raise every `(location, message, value)` at once, each at its field."""
    raise ValidationError.from_exception_data(
        title, [_broken(loc, message, value) for loc, message, value in problems]
    )


class WebsiteSettings(BaseModel):
    """What one Magento website collects and where it goes (website-scope admin settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    website_code: str = Field(
        pattern=f"^{WEBSITE_CODE.pattern}$",
        description="Magento `store_website.code`, e.g. `base`.",
    )
    org_id: str = Field(
        default="",
        pattern=r"^([A-Za-z0-9]{24}@AdobeOrg)?$",
        description="Kept for settings written before the organization id became global: when "
        "set, it must be the global `org_id`; filled with it otherwise.",
    )
    own_web_sdk: bool = Field(
        default=False,
        description="Is the AEP Web SDK already deployed to your site: the storefront "
        "collector then forwards through that alloy instance (web_sdk_name), so datastream_id "
        "is ignored for storefront events and only needed for what the connector streams "
        "(back-office events, customer profiles).",
        json_schema_extra=_shown(
            "Is the AEP Web SDK already deployed to your site", "data_collection"
        ),
    )
    storefront_events: bool = Field(
        default=True,
        description="Storefront events: collect the shoppers' behavioural events in the browser "
        "(page views, product views, cart, checkout, sign-in).",
        json_schema_extra=_shown("Storefront events", "data_collection"),
    )
    back_office_events: bool = Field(
        default=True,
        description="Back office events: send order placed, invoiced, shipped, cancelled and "
        "refunded from the shop database (no consent handling: set consent in the platform).",
        json_schema_extra=_shown("Back office events", "data_collection"),
    )
    datastream_id: str = Field(
        default="",
        pattern=DATASTREAM_ID,
        description="Datastream ID: the datastream this website's events go through (the "
        "storefront's alloy `datastreamId`, and the connection id the connector streams to). "
        "Required unless the AEP Web SDK is already deployed.",
        json_schema_extra=_shown("Datastream ID", "data_collection"),
    )
    dataset_id: str = Field(
        default="",
        pattern=DATASET_ID,
        description="Dataset ID: the dataset the events go to. Required unless both storefront "
        "and back-office events are off (still required with an own Web SDK), and while "
        "customer profiles are on (profile events go to it).",
        json_schema_extra=_shown("Dataset ID", "data_collection"),
    )
    environment_id: str = Field(
        default="koppla",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Data space id, sent as `commerce.commerceScope.environmentID`.",
        json_schema_extra=_shown("Data space ID", "general"),
    )
    customer_profiles: bool = Field(
        default=False,
        description="Customer profiles: send each customer as a profile record, and the "
        "account created, updated and deleted events.",
        json_schema_extra=_shown("Customer profiles", "customer_profiles"),
    )
    profile_dataset_id: str = Field(
        default="",
        pattern=DATASET_ID,
        description="Profile Dataset ID: the dataset the profile records go to; required while "
        "customer profiles are on, and different from the Dataset ID.",
        json_schema_extra=_shown("Profile Dataset ID", "customer_profiles"),
    )
    profiles_same_datastream: bool = Field(
        default=True,
        description="Stream customer profiles through the same datastream ID; when off, the "
        "Datastream for customer profiles is required.",
        json_schema_extra=_shown(
            "Stream customer profiles through same datastream ID", "customer_profiles"
        ),
    )
    profile_datastream_id: str = Field(
        default="",
        pattern=DATASTREAM_ID,
        description="Datastream for customer profiles: required while customer profiles are on "
        "and not streamed through the same datastream.",
        json_schema_extra=_shown("Datastream for customer profiles", "customer_profiles"),
    )
    history_copy_dataset_id: bool = Field(
        default=True,
        description="Order History: copy the Dataset ID from Settings (historical orders go to "
        "`dataset_id`; else to `history_dataset_id`).",
        json_schema_extra=_shown("Copy Dataset ID from Settings", "order_history"),
    )
    history_dataset_id: str = Field(
        default="",
        pattern=DATASET_ID,
        description="Order History: the dataset historical orders go to while "
        "history_copy_dataset_id is off.",
        json_schema_extra=_shown("Order History Dataset ID", "order_history"),
    )

    @model_validator(mode="wrap")
    @classmethod
    def _rules(cls, data: Any, handler: ModelWrapValidatorHandler[WebsiteSettings]) -> Any:
        """Every problem at once: the fields' own, and the rules between the fields that are
        well formed (a malformed field is checked as if it had its default)."""
        try:
            site, found = handler(data), []
        except ValidationError as error:
            if not isinstance(data, Mapping):
                raise
            found = error.errors()
            bad = {issue["loc"][0] for issue in found if issue["loc"]}
            try:
                site = handler({k: v for k, v in data.items() if k not in bad})
            except ValidationError:
                raise error from None
        malformed = {issue["loc"][0] for issue in found if issue["loc"]}
        broken = [(loc, message) for loc, message in rules(site) if loc[0] not in malformed]
        if not found and not broken:
            return site
        raise ValidationError.from_exception_data(
            "WebsiteSettings",
            [_again(issue) for issue in found]
            + [_broken(loc, message, getattr(site, str(loc[0]))) for loc, message in broken],
        )

    @property
    def profile_stream(self) -> str:
        """The datastream customer profile records and events go through."""
        if self.profiles_same_datastream or not self.profile_datastream_id:
            return self.datastream_id
        return self.profile_datastream_id

    @property
    def streamed(self) -> bool:
        """True when the connector streams something of this website (back-office events, or
        customer profiles through `datastream_id`)."""
        same = self.customer_profiles and self.profiles_same_datastream
        return self.back_office_events or same


def rules(site: WebsiteSettings) -> list[tuple[Loc, str]]:
    """The §2.1 rules one website breaks on its own, each as `((field,), message)`."""
    found: list[tuple[Loc, str]] = []
    if not site.datastream_id:
        if not site.own_web_sdk:
            found.append(
                (
                    ("datastream_id",),
                    "a datastream id is required unless the AEP Web SDK is already deployed "
                    "(own_web_sdk)",
                )
            )
        elif site.streamed:
            what = "back-office events" if site.back_office_events else "customer profiles"
            found.append(
                (
                    ("datastream_id",),
                    f"a datastream id is required while {what} are on: the connector streams "
                    "them through it (with own_web_sdk only the storefront's events use the "
                    "deployed Web SDK's datastream)",
                )
            )
    if not site.dataset_id:
        if site.storefront_events or site.back_office_events:
            found.append(
                (
                    ("dataset_id",),
                    "a dataset id is required unless both storefront_events and "
                    "back_office_events are off",
                )
            )
        elif site.customer_profiles:
            found.append(
                (
                    ("dataset_id",),
                    "a dataset id is required while customer_profiles is on (profile events "
                    "go to it)",
                )
            )
    found += _profile_rules(site)
    return found


def _profile_rules(site: WebsiteSettings) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    if site.customer_profiles and not site.profile_dataset_id:
        found.append(
            (
                ("profile_dataset_id",),
                "a profile dataset id is required while customer_profiles is on",
            )
        )
    if site.profile_dataset_id and site.profile_dataset_id == site.dataset_id:
        found.append(
            (
                ("profile_dataset_id",),
                "must differ from dataset_id (profile records and events go to different datasets)",
            )
        )
    separate = site.customer_profiles and not site.profiles_same_datastream
    if separate and not site.profile_datastream_id:
        found.append(
            (
                ("profile_datastream_id",),
                "a profile datastream id is required while profiles_same_datastream is off",
            )
        )
    return found


def admin_rules(
    org_id: str, web_sdk_name: str, websites: Iterable[WebsiteSettings]
) -> list[tuple[Loc, str, object]]:
    """The rules between the global fields and the websites: one organization per instance
    (a website's own `org_id`, kept from older settings, must be the global one), unique
    website codes, and the AEP Web SDK Name of websites with `own_web_sdk`."""
    found: list[tuple[Loc, str, object]] = []
    seen: set[str] = set()
    sites = list(websites)
    if sites and not org_id:
        found.append((("org_id",), "an organization id is required", org_id))
    for index, site in enumerate(sites):
        if site.website_code in seen:
            found.append(
                (("websites", index, "website_code"), "each website_code may appear once", "")
            )
        seen.add(site.website_code)
        if site.org_id and org_id and site.org_id != org_id:
            found.append(
                (
                    ("websites", index, "org_id"),
                    f"one organization per instance: every website sends to the global org_id "
                    f"{org_id}",
                    site.org_id,
                )
            )
        if site.own_web_sdk and not web_sdk_name:
            found.append(
                (
                    ("websites", index, "own_web_sdk"),
                    "needs the AEP Web SDK Name (web_sdk_name, global): the name of the alloy "
                    "instance already deployed",
                    True,
                )
            )
    return found


def _legacy_org(given: str, websites: Iterable[WebsiteSettings]) -> str:
    """The global organization id: `given`, else the one all websites name (older settings).

    Websites naming different organizations are refused by `admin_rules` against the first.
    """
    return given or next((w.org_id for w in websites if w.org_id), "")


def _with_org(websites: tuple[WebsiteSettings, ...], org_id: str) -> tuple[WebsiteSettings, ...]:
    """The websites, each carrying the global organization id (what the senders read)."""
    return tuple(w if w.org_id else w.model_copy(update={"org_id": org_id}) for w in websites)


class AdminSettings(BaseModel):
    """The Data Connection admin settings of one organization: what the platform stores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org_id: OrgId
    web_sdk_name: WebSdkName
    tenant_id: TenantId = Field(json_schema_extra=_shown("Tenant ID", "general"))
    custom_order_columns: CustomOrderColumns = Field(
        json_schema_extra=_shown("Custom order columns", "general")
    )
    custom_item_columns: CustomItemColumns = Field(
        json_schema_extra=_shown("Custom item columns", "general")
    )
    websites: tuple[WebsiteSettings, ...] = Field(
        default=(), description="The websites whose data is collected, each with its settings."
    )

    @model_validator(mode="after")
    def _global_rules(self) -> AdminSettings:
        org = _legacy_org(self.org_id, self.websites)
        problems = admin_rules(org, self.web_sdk_name, self.websites)
        if problems:
            _refuse("AdminSettings", problems)
        object.__setattr__(self, "org_id", org)
        object.__setattr__(self, "websites", _with_org(self.websites, org))
        return self

    def website(self, code: str) -> WebsiteSettings | None:
        """The settings of website `code`, or None."""
        return next((w for w in self.websites if w.website_code == code), None)


def effective_tenant(tenant_id: str, org_id: str) -> str:
    """`tenant_id` when set, else the tenant id derived from `org_id`; empty without both."""
    if tenant_id:
        return tenant_id
    return derived_tenant_id(org_id) if org_id else ""


def parse_document(data: Any) -> AdminSettings:
    """The admin settings in `data` (a JSON object); `SettingsInvalid` lists every problem,
    each naming its field with the website's code (`websites[base].dataset_id`)."""
    try:
        return AdminSettings.model_validate(data)
    except ValidationError as error:
        raise SettingsInvalid(_problems(error, _codes(data))) from None


def document_json(settings: AdminSettings) -> dict[str, Any]:
    """The stored form of `settings`: every field, the websites without their copy of the
    organization id."""
    shown = settings.model_dump(mode="json")
    for site in shown["websites"]:
        site.pop("org_id", None)
    return shown


def with_website(document: Mapping[str, Any], site: Mapping[str, Any]) -> dict[str, Any]:
    """`document` with the website `site["website_code"]` replaced by `site` (or added)."""
    code = site.get("website_code")
    websites = [w for w in document.get("websites", []) if w.get("website_code") != code]
    return {**document, "websites": [*websites, dict(site)]}


def without_website(document: Mapping[str, Any], code: str) -> dict[str, Any]:
    """`document` without the website `code`."""
    kept = [w for w in document.get("websites", []) if w.get("website_code") != code]
    return {**document, "websites": kept}


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of the admin form: where it is, how it is shown, what it means."""

    name: str
    scope: Literal["global", "website"]
    label: str
    section: Section
    kind: Literal["checkbox", "text"]
    default: object
    description: str
    pattern: str | None

    def as_json(self) -> dict[str, object]:
        """The field as `GET /api/v1/connector/settings` lists it."""
        return {
            "name": self.name,
            "scope": self.scope,
            "label": self.label,
            "section": self.section,
            "kind": self.kind,
            "default": self.default,
            "description": self.description,
            "pattern": self.pattern,
        }


def form_fields() -> list[FormField]:
    """Every field of the admin form, global ones first, with its description as help."""
    found: list[FormField] = []
    for scope, model in (("global", AdminSettings), ("website", WebsiteSettings)):
        for name, info in model.model_fields.items():
            extra = info.json_schema_extra
            if not isinstance(extra, dict) or "label" not in extra:
                continue
            pattern = next((str(m.pattern) for m in info.metadata if hasattr(m, "pattern")), None)
            found.append(
                FormField(
                    name=name,
                    scope="global" if scope == "global" else "website",
                    label=str(extra["label"]),
                    section=_section(extra.get("section")),
                    kind="checkbox" if info.annotation is bool else "text",
                    default=info.default,
                    description=info.description or "",
                    pattern=pattern,
                )
            )
    return found


def _section(value: object) -> Section:
    for known in ("general", "data_collection", "customer_profiles", "order_history"):
        if value == known:
            return known
    return "general"


class ConnectorSettings(BaseSettings):
    """Every setting the connector reads; documented in `docs/connector.md`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, hide_input_in_errors=True
    )

    home: Path = Field(default=Path("koppla-data"), description="Koppla home (state lives here).")
    source_dsn: str = Field(
        default="",
        description="Shop database URL, e.g. `mysql+pymysql://user@host/magento`; "
        "default: the demo store `sqlite:///<home>/demo-shop.sqlite`.",
    )
    platform_url: str = Field(
        default="http://127.0.0.1:8080",
        pattern=r"^https?://",
        description="Base URL of the platform.",
    )
    platform_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA (or self-signed certificate) to trust for an https "
        "platform_url; default: the system's trust store.",
    )
    token: SecretStr | None = Field(
        default=None, description="Platform API token (env KOPPLA_CONNECTOR_TOKEN only)."
    )
    client_id: str = Field(
        default="",
        max_length=256,
        description="Service account client id: with `client_secret`, the connector fetches its "
        "access tokens from `{ims_url}/ims/token/v3` (OAuth client credentials) instead of "
        "using `token`, and sends it as `x-api-key`.",
    )
    client_secret: SecretStr | None = Field(
        default=None,
        description="Service account client secret (env KOPPLA_CONNECTOR_CLIENT_SECRET only).",
    )
    scopes: tuple[str, ...] = Field(
        default=("openid", "AdobeID", "read_organizations"),
        description="Scopes asked for with the service account's tokens.",
    )
    ims_url: str = Field(
        default="",
        pattern=r"^(https?://.*)?$",
        description="Base URL of the token endpoint; default: `platform_url` (Koppla is its "
        "own IMS); for Adobe, `https://ims-na1.adobelogin.com`.",
    )
    sandbox: str = Field(
        default="prod",
        pattern=r"^[a-z0-9][a-z0-9-]{0,63}$",
        description="Sandbox sent as `x-sandbox-name` with every platform request.",
    )
    settings_from_platform: bool = Field(
        default=True,
        description="Read the admin settings (org_id, web_sdk_name, websites) from the "
        "platform (`GET /api/v1/connector/settings`) at every poll, cached under "
        "`<home>/connector/settings-cache.json`; keys set in connector.toml or the "
        "environment win.",
    )
    poll_interval_s: float = Field(
        default=1.0, gt=0, le=3600, description="Seconds between two looks for changes."
    )
    change_tracking: Literal["triggers", "poll"] = Field(
        default="triggers",
        description="`triggers`: changelog tables filled by triggers; `poll`: scan updated_at.",
    )
    redact: bool = Field(default=False, description="Hash emails, drop addresses.")
    batch_max_messages: int = Field(default=500, ge=1, le=500)
    batch_max_bytes: int = Field(default=1_000_000, ge=10_000, le=1_000_000)
    queue_url: SecretStr = Field(
        default=SecretStr(""),
        description="Queue of the historical order sync: empty (or `embedded`) for the "
        "embedded queue under the home, or a RabbitMQ URL such as "
        "`amqp://guest:guest@127.0.0.1:5672/` (with a password: env "
        "KOPPLA_CONNECTOR_QUEUE_URL only).",
    )
    queue_name: str = Field(
        default="",
        description="Name of the history sync's queue; empty: `koppla-history-<an id made for "
        "this home>`, so connectors sharing a RabbitMQ never take each other's chunks.",
    )
    history_workers: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Consumer processes `history:sync` starts while it waits.",
    )
    history_chunk_orders: int = Field(
        default=2000,
        ge=10,
        le=10_000,
        description="Orders per queue message (and per platform batch) of the history sync.",
    )
    history_max_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Deliveries of one history chunk before it goes to the dead-letter queue.",
    )
    org_id: OrgId
    web_sdk_name: WebSdkName
    tenant_id: TenantId
    custom_order_columns: CustomOrderColumns
    custom_item_columns: CustomItemColumns
    websites: tuple[WebsiteSettings, ...] = Field(
        default=(), description="The websites whose orders are sent."
    )

    _overrides: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("queue_name")
    @classmethod
    def _queue_name(cls, value: str) -> str:
        if value:
            try:
                check_name(value)
            except InvalidInput as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("queue_url")
    @classmethod
    def _queue_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url not in ("", "embedded") and not url.startswith(("amqp://", "amqps://")):
            raise ValueError("must be empty, `embedded`, or an amqp:// or amqps:// URL")
        return value

    @model_validator(mode="after")
    def _admin_rules(self) -> ConnectorSettings:
        org = _legacy_org(self.org_id, self.websites)
        problems = admin_rules(org, self.web_sdk_name, self.websites)
        if problems:
            _refuse("ConnectorSettings", problems)
        object.__setattr__(self, "org_id", org)
        object.__setattr__(self, "websites", _with_org(self.websites, org))
        return self

    @property
    def dsn(self) -> str:
        """The source DSN, defaulting to the demo store under the home."""
        return self.source_dsn or f"sqlite:///{(self.home / 'demo-shop.sqlite').resolve()}"

    @property
    def state_path(self) -> Path:
        """The connector's own state database."""
        return self.home / "connector" / "state.sqlite"

    @property
    def admin(self) -> AdminSettings:
        """The admin part: organization, Web SDK name, websites."""
        return AdminSettings(
            org_id=self.org_id,
            web_sdk_name=self.web_sdk_name,
            tenant_id=self.tenant_id,
            custom_order_columns=self.custom_order_columns,
            custom_item_columns=self.custom_item_columns,
            websites=self.websites,
        )

    @property
    def tenant(self) -> str:
        """The tenant id the events' custom attributes are namespaced with: `tenant_id`, else
        the one derived from `org_id` (`koppla.xdm.tenant.tenant_id`); empty without either."""
        return effective_tenant(self.tenant_id, self.org_id)

    @property
    def custom_columns(self) -> CustomColumns:
        """The merchant-named columns the store source reads as custom attributes."""
        return CustomColumns(self.custom_order_columns, self.custom_item_columns)

    def website(self, code: str) -> WebsiteSettings | None:
        """The settings of a configured website, or None."""
        return next((w for w in self.websites if w.website_code == code), None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: explicit arguments, then environment, then `<home>/connector.toml`."""
        return sources_with_home_file(settings_cls, init_settings, env_settings, SETTINGS_FILE)


def load_settings(
    home: Path, *, document: Mapping[str, Any] | None = None, **overrides: object
) -> ConnectorSettings:
    """Read the settings of `home`; raises `SettingsInvalid` naming the field of each problem.

    The admin settings (`DOCUMENT_KEYS`) come from `document` when given, else from the
    platform's as last fetched (`<home>/connector/settings-cache.json`, unless
    `settings_from_platform` is off), for each key that neither `overrides`, the environment
    nor `connector.toml` sets; when those set `websites`, the platform's `org_id` is not taken
    either (the local websites name their own organization). Platform settings that break a
    rule together with the local ones are logged and left out: the local settings alone apply.
    """
    return _load(home, document, overrides, fallback=True)


def has_credentials(settings: ConnectorSettings) -> bool:
    """True when the connector can authenticate to the platform: a token, or a service account
    (`client_id` with its secret)."""
    token, secret = settings.token, settings.client_secret
    service_account = bool(settings.client_id and secret and secret.get_secret_value())
    return bool(token and token.get_secret_value()) or service_account


def reload_settings(settings: ConnectorSettings) -> ConnectorSettings:
    """`settings` read again (the file, the environment, the platform's cached settings), with
    the same explicit overrides it was loaded with. Unlike `load_settings`, platform settings
    that break a rule raise `SettingsInvalid`: a running connector keeps the ones it has."""
    return _load(settings.home, None, settings._overrides, fallback=False)


def _load(
    home: Path,
    document: Mapping[str, Any] | None,
    overrides: Mapping[str, object],
    *,
    fallback: bool,
) -> ConnectorSettings:
    file_data = _file_data(home / SETTINGS_FILE)
    given = {k: v for k, v in overrides.items() if v is not None}
    local = set(given) | set(file_data) | _env_keys()
    platform = dict(document) if document is not None else None
    if platform is None and _from_platform(given, file_data):
        platform = read_cache(home)
    remote = _platform_part(platform or {}, local)
    try:
        settings = _build(home, remote, given)
    except SettingsInvalid as invalid:
        if not remote or not fallback:
            raise
        log.warning(
            "the platform's connector settings are not applied, the local ones alone are: %s",
            invalid,
        )
        settings = _build(home, {}, given)
    settings._overrides = dict(overrides)
    return settings


def _platform_part(platform: Mapping[str, Any], local: set[str]) -> dict[str, Any]:
    """The admin keys the platform's settings give that no local source sets (`org_id` goes
    with `websites`: local websites name their organization)."""
    skipped = local | ({"org_id"} if "websites" in local else set())
    return {k: v for k, v in platform.items() if k in DOCUMENT_KEYS and k not in skipped}


def _build(home: Path, remote: Mapping[str, Any], given: Mapping[str, object]) -> ConnectorSettings:
    """The settings from `remote` admin keys and `given` overrides (file and env beneath)."""
    try:
        return ConnectorSettings(home=home, **{**remote, **given})
    except ValidationError as error:
        raise settings_error(error) from None


def read_cache(home: Path) -> dict[str, Any] | None:
    """The admin settings the platform last served to this home's connector, or None."""
    path = home / CACHE_FILE
    try:
        cached = codec.loads(path.read_bytes())
    except (OSError, codec.JSONDecodeError):
        return None
    settings = cached.get("settings") if isinstance(cached, dict) else None
    return settings if isinstance(settings, dict) else None


def settings_error(error: ValidationError) -> SettingsInvalid:
    """One clear message per problem, each naming its field (`websites[0].org_id: ...`)."""
    return SettingsInvalid(_problems(error, {}))


def _problems(error: ValidationError, codes: Mapping[int, str]) -> list[Problem]:
    """Every issue of `error`; a website is named by its code when `codes` knows it."""
    found: list[Problem] = []
    for issue in error.errors():
        loc = issue["loc"]
        if len(loc) >= 2 and loc[0] == "websites" and isinstance(loc[1], int) and loc[1] in codes:
            path = f"websites[{codes[loc[1]]}]" + _path(loc[2:], nested=True)
        else:
            path = _path(loc)
        message = issue["msg"].removeprefix("Value error, ")
        if issue["type"] == "string_pattern_mismatch" and loc:
            message = PATTERN_RULES.get(str(loc[-1]), message)
        found.append(Problem(path, message))
    return found or [Problem("", str(error))]


def _codes(data: Any) -> dict[int, str]:
    """`{index: website code}` of the websites in raw `data` whose code is usable in a path."""
    sites = data.get("websites") if isinstance(data, Mapping) else None
    if not isinstance(sites, list | tuple):
        return {}
    found: dict[int, str] = {}
    for index, site in enumerate(sites):
        code = site.get("website_code") if isinstance(site, Mapping) else None
        if isinstance(code, str) and WEBSITE_CODE.fullmatch(code):
            found[index] = code
    return found


def _path(loc: Iterable[int | str], *, nested: bool = False) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text or nested else str(part)
    return text


def _file_data(path: Path) -> dict[str, Any]:
    """What `connector.toml` sets; secrets in it are refused."""
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    _refuse_secrets_on_disk(path, data)
    return data


def _env_keys() -> set[str]:
    """The admin keys the environment sets (`KOPPLA_CONNECTOR_ORG_ID`, ...; any case)."""
    present = {name.upper() for name in os.environ}
    return {key for key in DOCUMENT_KEYS if f"{ENV_PREFIX}{key.upper()}" in present}


def _from_platform(given: Mapping[str, object], file_data: Mapping[str, Any]) -> bool:
    """Whether the platform's settings apply (`settings_from_platform`, on by default)."""
    if "settings_from_platform" in given:
        return bool(given["settings_from_platform"])
    env = next(
        (v for k, v in os.environ.items() if k.upper() == f"{ENV_PREFIX}SETTINGS_FROM_PLATFORM"),
        None,
    )
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(file_data.get("settings_from_platform", True))


def _refuse_secrets_on_disk(path: Path, data: Mapping[str, Any]) -> None:
    """Secrets never live in the settings file: the token, the client secret, or a queue URL
    with a password."""
    if "token" in data:
        raise InvalidInput(
            f"token: not allowed in {path}; set the environment variable {TOKEN_ENV}",
            field="token",
        )
    if "client_secret" in data:
        raise InvalidInput(
            f"client_secret: not allowed in {path}; set the environment variable "
            f"{CLIENT_SECRET_ENV}",
            field="client_secret",
        )
    queue = data.get("queue_url")
    if isinstance(queue, str) and _has_password(queue):
        raise InvalidInput(
            f"queue_url: a URL with a password is not allowed in {path}; set the environment "
            f"variable {QUEUE_URL_ENV}",
            field="queue_url",
        )


def _has_password(url: str) -> bool:
    """True when `url` carries a password (`scheme://user:password@host`)."""
    authority = url.split("://", 1)[-1].split("/", 1)[0]
    return "@" in authority and ":" in authority.rsplit("@", 1)[0]
