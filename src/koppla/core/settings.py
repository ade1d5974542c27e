"""The one settings object: read from `<home>/koppla.toml` and `KOPPLA_*` environment variables.

Built once at start-up by the CLI (`Settings.load`) and handed down; never read at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SETTINGS_FILE = "koppla.toml"


def sources_with_home_file(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    file_name: str,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """Arguments, then environment, then the TOML file `file_name` in the home directory.

    The home is the `home` argument if given, else `KOPPLA_HOME`, else `./koppla-data`.
    """
    given_home = getattr(init_settings, "init_kwargs", {}).get("home")
    home = Path(given_home or os.environ.get("KOPPLA_HOME", "koppla-data"))
    toml = TomlConfigSettingsSource(settings_cls, toml_file=home / file_name)
    return (init_settings, env_settings, toml)


class Settings(BaseSettings):
    """Every setting Koppla reads. Each field is documented in `docs/settings.md`."""

    model_config = SettingsConfigDict(env_prefix="KOPPLA_", extra="forbid", frozen=True)

    home: Path = Field(default=Path("koppla-data"), description="Directory holding all state.")
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port the HTTP server binds.")
    tls_cert: Path | None = Field(default=None, description="PEM certificate; serve HTTPS.")
    tls_key: Path | None = Field(default=None, description="PEM private key for `tls_cert`.")
    edge_workers: int = Field(default=1, ge=1, le=64, description="Edge HTTP processes.")
    location_hint: str = Field(default="local", description="Edge location hint for the SDK.")
    connection_test_hosts: tuple[str, ...] = Field(
        default=(),
        description="Hosts besides this server's own address that the service account page's "
        "Test connection may call (e.g. `platform.adobe.io`): the test makes this server send "
        "requests, so any other host is refused.",
    )
    public_edge_domain: str | None = Field(
        default=None,
        description="Host name browsers reach the edge at (the Web SDK's `edgeDomain`: no "
        "scheme, port or path); default: the request's Host without its port.",
    )
    alloy_path: Path | None = Field(
        default=None,
        description="The @adobe/alloy bundle the demo shop serves at /demo/static/alloy.js; "
        "default: node_modules/@adobe/alloy/dist/alloy.min.js under the working directory or the "
        "source checkout.",
    )
    alloy_url: str = Field(
        default="https://cdn1.adobedc.net/alloy/2.33.1/alloy.min.js",
        description="Where pages load the Web SDK from when there is no local bundle; also the "
        "storefront tag's script src.",
    )
    spool_segment_bytes: int = Field(
        default=64 * 1024 * 1024, ge=4096, description="Size at which a spool segment rolls."
    )
    spool_fsync: bool = Field(default=True, description="fsync the spool before acknowledging.")
    spool_max_backlog_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=0,
        description="Backpressure: while this many bytes wait in the spool for the pipeline "
        "(every stream together), the edge and the streaming API answer 503 with "
        "`Retry-After` instead of accepting more, so a pipeline that falls behind never fills "
        "the disk; 0: no bound.",
    )
    role: Literal["all", "edge", "pipeline", "api"] = Field(
        default="all",
        description="What this process runs: `all` (the embedded default: edge, pipeline, "
        "APIs, admin pages, profile stage, PostgreSQL wire server), `edge` (the public Edge "
        "Network and streaming-ingestion endpoints only), `pipeline` (a pipeline worker), or "
        "`api` (APIs, admin pages, query, profile stage). Roles other than `all` need "
        "`spool_url` and `catalog_url`, which every process of a deployment shares.",
    )
    spool_url: str = Field(
        default="",
        description="The shared durable log the edge writes to and the pipeline reads: "
        "`rabbitmq-stream://USER:PASSWORD@HOST:5552/VHOST` (RabbitMQ Streams); default: the "
        "local spool directory `<home>/spool`.",
    )
    spool_partitions: int = Field(
        default=4,
        ge=1,
        le=256,
        description="With `spool_url`: how many streams (`koppla-spool-0` …) the log is split "
        "into; each is read by one pipeline worker at a time, so this bounds how many workers "
        "share the load. Every process of a deployment must use the same number.",
    )
    spool_max_backlog_records: int = Field(
        default=5_000_000,
        ge=0,
        description="Backpressure with `spool_url`: while this many records wait in the shared "
        "log for the pipeline workers (every partition together), the edges and the streaming "
        "API answer 503 with `Retry-After`; 0: no bound.",
    )
    catalog_url: str = Field(
        default="",
        description="Where the catalog (datasets, datastreams, batches, tokens, consent), the "
        "schema registry and, with `spool_url`, the pipeline's cursors and dedupe claims live: "
        "`postgresql://USER:PASSWORD@HOST/DB`; default: SQLite files under `<home>`.",
    )
    storage_url: str = Field(
        default="",
        description="Where the datasets' Delta tables live: a directory every pipeline worker "
        "and API process reaches (a shared file system), or S3-compatible object storage "
        "(`s3://BUCKET/PREFIX`, with `storage_options`); default: `<home>/datasets`.",
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="Options for `storage_url` on object storage, as delta-rs names them "
        "(`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, "
        "`AWS_ALLOW_HTTP`); conditional puts (`conditional_put = etag`) are used unless a "
        "locking provider is named. The `AWS_*` environment variables work too.",
    )
    vacuum_retention_hours: int = Field(
        default=1,
        ge=0,
        description="How long a file that compaction replaced is kept before it is deleted: "
        "longer than any query or reader on another machine holds a table snapshot.",
    )
    pipeline_flush_ms: int = Field(
        default=200, ge=10, description="Longest wait before the pipeline commits a batch."
    )
    pipeline_max_events: int = Field(
        default=20_000, ge=1, description="Most events the pipeline commits in one batch."
    )
    compact_every_commits: int = Field(
        default=200, ge=1, description="Compact a dataset's small files after this many commits."
    )
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Comma-separated addresses of trusted proxies whose X-Forwarded-For names "
        "the client (rate limits then apply per real client); default: trust none.",
    )
    max_body_edge_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest body of an Edge Network request."
    )
    max_body_streaming_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest body of a streaming ingestion request (`/collection/...`).",
    )
    max_body_api_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest body of any other API request."
    )
    edge_max_depth: int = Field(
        default=32,
        ge=8,
        le=200,
        description="Deepest JSON nesting an edge or streaming request may have; deeper bodies "
        "are refused with 400 before anything is stored.",
    )
    edge_max_events: int = Field(
        default=1000,
        ge=1,
        description="Most events in one edge request or messages in one streaming batch.",
    )
    edge_client_rate: float = Field(
        default=200.0,
        ge=0,
        description="Edge requests per second one client address may send (token bucket, burst "
        "of two seconds' worth); past it, 429 with Retry-After. 0 turns the limit off.",
    )
    edge_datastream_rate: float = Field(
        default=50_000.0,
        ge=0,
        description="Events per second one datastream may receive (token bucket, burst of two "
        "seconds' worth); past it, 429 with Retry-After. 0 turns the limit off.",
    )
    edge_rate_exempt: list[str] = Field(
        default=["127.0.0.0/8", "::1/128"],
        description="Client networks the per-client rate limit does not apply to (a local "
        "proxy or load test); the per-datastream limit still applies.",
    )
    quarantine_hourly_limit: int = Field(
        default=10_000,
        ge=0,
        description="Invalid records one datastream may add to the quarantine per hour; past "
        "it, the edge validates requests itself and refuses invalid ones with 400. 0: no limit.",
    )
    consent_max_opt_outs: int = Field(
        default=1_000_000,
        ge=1,
        description="Most opt-outs the consent table keeps (oldest dropped first; the visitor's "
        "consent cookie still holds the choice).",
    )
    pipeline_stall_s: float = Field(
        default=60.0,
        gt=0,
        description="Health answers 503 when the pipeline has had work waiting and made no "
        "progress for this long.",
    )
    dedupe_window_days: float = Field(
        default=7.0,
        gt=0,
        description="How long event ids are held in each dataset's fast dedupe index; older ids "
        "are checked against the dataset itself.",
    )
    batch_max_file_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        description="Largest file one batch-ingestion upload may hold (AEP's small-file limit); "
        "a larger upload is cut off with 413.",
    )
    batch_max_files: int = Field(
        default=1000, ge=1, description="Most files one ingestion batch may hold."
    )
    batch_max_depth: int = Field(
        default=32,
        ge=8,
        le=200,
        description="Deepest JSON nesting one row of an ingestion batch may have; a deeper row "
        "is a row error.",
    )
    batch_max_document_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Largest multi-line JSON file of an ingestion batch the pipeline reads (it "
        "parses such a file whole); a larger one is an unreadable file and fails its batch. "
        "JSON-lines and Parquet files are read a slice at a time.",
    )
    batch_rows_per_step: int = Field(
        default=10_000,
        ge=1,
        description="Rows of completed ingestion batches the pipeline reads and validates per "
        "step, between passes over the streaming spool (bounds the latency batches add to "
        "streaming).",
    )
    batch_commit_rows: int = Field(
        default=50_000,
        ge=1,
        description="Most rows of an ingestion batch appended to its dataset in one Delta commit "
        "(a smaller batch lands in one commit).",
    )
    batch_max_failed_ratio: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="An ingestion batch whose share of bad rows is above this fails whole: "
        "nothing of it is stored.",
    )
    batch_diagnostics_days: float = Field(
        default=30.0,
        gt=0,
        description="How long an ingestion batch's diagnostics (row errors, failed rows, and "
        "the input files of a failed batch) are kept after it finished.",
    )
    profile_store_url: str = Field(
        default="",
        description="Where profiles and the identity graph live: an SQLAlchemy URL such as "
        "`postgresql+psycopg://koppla@db.internal/koppla`; default: SQLite in "
        "`<home>/profiles/profiles.sqlite`.",
    )
    profile_max_identities: int = Field(
        default=50,
        ge=2,
        le=1000,
        description="Most identities in one identity graph; past it the oldest links are "
        "dropped (AEP's limit is 50).",
    )
    profile_namespace_limits: dict[str, int] = Field(
        default_factory=lambda: {"CustomerId": 1},
        description="Most identities of a namespace in one graph, e.g. `{CustomerId = 1}`: two "
        "customers who share a device stay two profiles.",
    )
    profile_events_kept: int = Field(
        default=100,
        ge=1,
        description="Newest events kept per identity for profile timelines (the datasets keep "
        "every event).",
    )
    profile_poll_ms: int = Field(
        default=100, ge=10, description="How often the profile stage looks for new data."
    )
    query_timeout_s: float = Field(default=30.0, gt=0, description="Longest a SQL query may run.")
    query_max_rows: int = Field(default=10_000, ge=1, description="Most rows a query returns.")
    query_max_result_bytes: int = Field(
        default=64 * 2**20,
        ge=1024,
        description="Most memory a query's result may take as values (about its size as JSON); "
        "a larger result fails with a message naming this setting.",
    )
    query_memory_limit: str = Field(
        default="1GB", description="Memory one query engine may use (DuckDB `memory_limit`)."
    )
    query_threads: int = Field(default=2, ge=1, le=64, description="Threads per query engine.")
    query_temp_limit: str = Field(
        default="1GB",
        description="Disk a query may spill to, in `<home>/query-tmp` (DuckDB "
        "`max_temp_directory_size`); `0` turns spilling off.",
    )
    query_max_concurrent: int = Field(
        default=4, ge=1, description="Queries that may run at once; more wait, then get 503."
    )
    query_stream_timeout_s: float = Field(
        default=600.0,
        gt=0,
        le=3000,
        description="Longest a streamed query may run (PostgreSQL clients, query jobs, exports): "
        "their rows are not held in memory, so they may be many. At most 3000 s, below the hour "
        "for which compacted-away files are kept.",
    )
    query_pg_port: int = Field(
        default=5433,
        ge=0,
        le=65535,
        description="Port of the PostgreSQL wire-protocol server for psql, psycopg and BI tools "
        "(on `host`); 0 runs none.",
    )
    query_pg_max_connections: int = Field(
        default=32, ge=1, description="Most PostgreSQL client connections at once."
    )
    query_job_max_rows: int = Field(
        default=1_000_000, ge=1, description="Most rows one asynchronous query job keeps."
    )
    query_job_max_result_bytes: int = Field(
        default=256 * 2**20,
        ge=1024,
        description="Most bytes of values one asynchronous query job keeps; past it the job "
        "fails, naming this setting.",
    )
    query_results_hours: float = Field(
        default=24.0, gt=0, description="How long an asynchronous query's results are kept."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Least severe log level written."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: explicit arguments, then environment, then `<home>/koppla.toml`."""
        return sources_with_home_file(settings_cls, init_settings, env_settings, SETTINGS_FILE)

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Build the settings, with `overrides` (CLI options that were given) taking precedence."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return cls(**given)  # type: ignore[arg-type]

    @property
    def scheme(self) -> str:
        """`https` when a certificate is configured, else `http`."""
        return "https" if self.tls_cert else "http"
