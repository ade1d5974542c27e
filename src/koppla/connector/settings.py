"""The connector's one settings object: `<home>/connector.toml` plus `KOPPLA_CONNECTOR_*` env.

The API token comes from the environment (`KOPPLA_CONNECTOR_TOKEN`) only: it is never read from
or written to disk, never logged, and shown redacted in reprs. Rules from the Data Connection
admin (domain.md §2.1) apply per website: the organization id is 24 letters or digits followed by
`@AdobeOrg`, a dataset id is required while back-office events or customer profiles are on;
customer profiles need a profile dataset id different from the dataset id, and a profile
datastream id unless they stream through the same datastream.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from koppla.bus.queue import check_name
from koppla.core.errors import InvalidInput
from koppla.core.settings import sources_with_home_file

SETTINGS_FILE = "connector.toml"
TOKEN_ENV = "KOPPLA_CONNECTOR_TOKEN"
QUEUE_URL_ENV = "KOPPLA_CONNECTOR_QUEUE_URL"
DATASET_ID = r"^[A-Za-z0-9_-]{0,128}$"
"""A dataset id: letters, digits, `_` and `-` (AEP's are 24 hex digits); it goes into URLs."""


class WebsiteSettings(BaseModel):
    """Where the back-office events of one Magento website go (website-scope admin settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    website_code: str = Field(
        pattern=r"^[a-z0-9_]{1,32}$", description="Magento `store_website.code`, e.g. `base`."
    )
    org_id: str = Field(
        pattern=r"^[A-Za-z0-9]{24}@AdobeOrg$",
        description="Organization id: 24 letters or digits followed by `@AdobeOrg`.",
    )
    datastream_id: str = Field(min_length=1, description="Datastream id (the connection id).")
    dataset_id: str = Field(
        default="", pattern=DATASET_ID, description="Dataset the events go to (its id)."
    )
    environment_id: str = Field(
        default="koppla",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Data space id, sent as `commerce.commerceScope.environmentID`.",
    )
    back_office_events: bool = Field(default=True, description="Send back-office events.")
    customer_profiles: bool = Field(
        default=False, description="Send customer profile records and profile events."
    )
    profiles_same_datastream: bool = Field(
        default=True,
        description="Stream customer profiles through `datastream_id` (else through "
        "`profile_datastream_id`).",
    )
    profile_dataset_id: str = Field(
        default="",
        pattern=DATASET_ID,
        validate_default=True,
        description="Dataset the profile records go to; required while customer_profiles is "
        "on, and different from `dataset_id`.",
    )
    profile_datastream_id: str = Field(
        default="",
        validate_default=True,
        description="Datastream for customer profiles; required when customer_profiles is on "
        "and profiles_same_datastream is off.",
    )

    history_copy_dataset_id: bool = Field(
        default=True,
        description="Order History: send historical orders to `dataset_id` (else to "
        "`history_dataset_id`).",
    )
    history_dataset_id: str = Field(
        default="",
        pattern=DATASET_ID,
        description="Order History: the dataset historical orders go to while "
        "history_copy_dataset_id is off.",
    )

    @field_validator("profile_dataset_id")
    @classmethod
    def _profile_dataset(cls, value: str, info: ValidationInfo) -> str:
        if not info.data.get("customer_profiles"):
            return value
        if not value:
            raise ValueError("a profile dataset id is required while customer_profiles is on")
        if value == info.data.get("dataset_id"):
            raise ValueError(
                "must differ from dataset_id (profile records and events go to different datasets)"
            )
        return value

    @field_validator("profile_datastream_id")
    @classmethod
    def _profile_datastream(cls, value: str, info: ValidationInfo) -> str:
        data = info.data
        separate = data.get("customer_profiles") and not data.get("profiles_same_datastream", True)
        if separate and not value:
            raise ValueError(
                "a profile datastream id is required while profiles_same_datastream is off"
            )
        return value

    @model_validator(mode="after")
    def _dataset_required(self) -> WebsiteSettings:
        if self.back_office_events and not self.dataset_id:
            raise ValueError("dataset_id is required while back_office_events is on")
        if self.customer_profiles and not self.dataset_id:
            raise ValueError(
                "dataset_id is required while customer_profiles is on (profile events go to it)"
            )
        return self

    @property
    def profile_stream(self) -> str:
        """The datastream customer profile records and events go through."""
        if self.profiles_same_datastream or not self.profile_datastream_id:
            return self.datastream_id
        return self.profile_datastream_id


class ConnectorSettings(BaseSettings):
    """Every setting the connector reads; documented in `docs/connector.md`."""

    model_config = SettingsConfigDict(
        env_prefix="KOPPLA_CONNECTOR_", extra="forbid", frozen=True, hide_input_in_errors=True
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
    websites: tuple[WebsiteSettings, ...] = Field(
        default=(), description="The websites whose orders are sent."
    )

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
    def _unique_websites(self) -> ConnectorSettings:
        codes = [w.website_code for w in self.websites]
        if len(codes) != len(set(codes)):
            raise ValueError("websites: each website_code may appear once")
        return self

    @property
    def dsn(self) -> str:
        """The source DSN, defaulting to the demo store under the home."""
        return self.source_dsn or f"sqlite:///{(self.home / 'demo-shop.sqlite').resolve()}"

    @property
    def state_path(self) -> Path:
        """The connector's own state database."""
        return self.home / "connector" / "state.sqlite"

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


def load_settings(home: Path, **overrides: object) -> ConnectorSettings:
    """Read the settings of `home`; raises `InvalidInput` naming the first bad field."""
    _refuse_token_on_disk(home / SETTINGS_FILE)
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return ConnectorSettings(home=home, **given)  # type: ignore[arg-type]
    except ValidationError as error:
        raise settings_error(error) from None


def settings_error(error: ValidationError) -> InvalidInput:
    """One clear message per problem, each naming its field (`websites[0].org_id: ...`)."""
    problems = []
    first_field = None
    for issue in error.errors():
        path = _path(issue["loc"])
        first_field = first_field or path
        message = issue["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {message}" if path else message)
    return InvalidInput("invalid connector settings: " + "; ".join(problems), field=first_field)


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _refuse_token_on_disk(path: Path) -> None:
    """Secrets never live in the settings file: the token, or a queue URL with a password."""
    if not path.is_file():
        return
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    if "token" in data:
        raise InvalidInput(
            f"token: not allowed in {path}; set the environment variable {TOKEN_ENV}",
            field="token",
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
