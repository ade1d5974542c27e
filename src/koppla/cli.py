"""The `koppla` command line: run the platform, manage datastreams and datasets, query data."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from koppla.connector.commands import connector_app
from koppla.core import codec
from koppla.core.errors import KopplaError
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.demo import ensure_demo
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.tables import provision
from koppla.xdm.registry import builtin_registry

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="KOPPLA_HOME", help="Data directory [default: ./koppla-data]."),
]

T = TypeVar("T")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings(home: Path | None, **overrides: object) -> Settings:
    return Settings.load(home=home, **overrides)


def _catalog(settings: Settings) -> Catalog:
    settings.home.mkdir(parents=True, exist_ok=True)
    return Catalog(Layout(settings.home).catalog)


def _demo(settings: Settings, catalog: Catalog) -> Datastream:
    """The demo datastream, with its datasets' tables ready to query."""
    stream = ensure_demo(catalog)
    for dataset_id in (stream.event_dataset_id, stream.profile_dataset_id):
        if dataset_id is not None:
            provision(Layout(settings.home), builtin_registry(), catalog.dataset(dataset_id))
    return stream


def _edge_hint(settings: Settings, stream: Datastream) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base = f"{settings.scheme}://{host}:{settings.port}"
    return f"{base}/ee/v1/interact?configId={stream.id}"


def build() -> typer.Typer:
    """The Typer app with every command."""
    app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
    dataset_app = typer.Typer(no_args_is_help=True, help="Datasets: create and list.")
    stream_app = typer.Typer(no_args_is_help=True, help="Datastreams: create and list.")
    token_app = typer.Typer(no_args_is_help=True, help="API tokens for the HTTP APIs.")
    app.add_typer(dataset_app, name="dataset")
    app.add_typer(stream_app, name="datastream")
    app.add_typer(token_app, name="token")
    app.add_typer(connector_app, name="connector")

    @app.command()
    def up(
        home: HomeOption = None,
        host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
        port: Annotated[int | None, typer.Option(help="Port.")] = None,
        demo: Annotated[bool, typer.Option(help="Create and print the demo datastream.")] = False,
        demo_shop: Annotated[
            bool,
            typer.Option(
                help="With --demo: run the demo shop's order simulator and its store connector."
            ),
        ] = True,
        tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate: serve HTTPS.")] = None,
        tls_key: Annotated[Path | None, typer.Option(help="PEM key for --tls-cert.")] = None,
    ) -> None:
        """Run Koppla: the edge, the pipeline and the APIs, with all state under --home."""
        from koppla.web.server import serve

        settings = _settings(home, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key)
        catalog = _catalog(settings)
        if not catalog.has_tokens():
            token = catalog.add_token("admin")
            console.print(f"[bold]Admin API token[/] (shown once, store it): {token}")
        if demo:
            _print_demo(settings, _demo(settings, catalog))
        catalog.close()
        console.print(
            f"Koppla is up on {settings.scheme}://{settings.host}:{settings.port} "
            f"with data in {settings.home.resolve()}  (Ctrl+C stops it)"
        )
        serve(settings, demo_shop=demo and demo_shop)

    @app.command()
    def demo(home: HomeOption = None) -> None:
        """Create the demo dataset and datastream (idempotent) and say how to use them."""
        settings = _settings(home)
        catalog = _catalog(settings)
        _print_demo(settings, _demo(settings, catalog))
        catalog.close()

    def _print_demo(settings: Settings, stream: Datastream) -> None:
        console.print(
            f"Demo datastream [bold]{stream.id}[/] (org {stream.org_id}) "
            "lands events in dataset [bold]demo_events[/]."
        )
        console.print(f"  send events:  POST {_edge_hint(settings, stream)}")
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        console.print(f"  demo shop:    {settings.scheme}://{host}:{settings.port}/demo/shop/")
        console.print(f"  watch live:   koppla debug --datastream {stream.id}")
        console.print(
            '  query them:   koppla query "SELECT timestamp, eventType, '
            'web.webPageDetails.URL FROM demo_events ORDER BY timestamp DESC"'
        )

    @app.command()
    def query(
        sql: Annotated[str, typer.Argument(help="One read-only SELECT over datasets by name.")],
        home: HomeOption = None,
        json: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False,
        max_rows: Annotated[int | None, typer.Option(help="Most rows to return.")] = None,
    ) -> None:
        """Run SQL over the datasets (read-only) and print the result."""
        from koppla.platform.query.render import render_table
        from koppla.web.services import build_services

        services = build_services(_settings(home))
        try:
            result = services.query.run(sql, max_rows=max_rows)
        except KopplaError as error:
            err.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
            raise typer.Exit(2) from error
        finally:
            services.close()
        if json:
            sys.stdout.write(codec.dumps(result.to_json()).decode() + "\n")
        else:
            console.print(render_table(result))

    @app.command()
    def profile(
        identity: Annotated[
            str, typer.Argument(help="namespace:id, e.g. email:ann@example.com or ecid:123...")
        ],
        home: HomeOption = None,
        policy: Annotated[
            str | None, typer.Option("--policy", help="Merge policy id [default: the default].")
        ] = None,
        events: Annotated[int, typer.Option("--events", min=0, help="Newest events to show.")] = 20,
        json: Annotated[bool, typer.Option("--json", help="Print JSON, not tables.")] = False,
    ) -> None:
        """Show a customer profile: attributes, identities, timeline and guardrail hits."""
        from koppla.platform.profiles.identity import Identity
        from koppla.platform.profiles.render import profile_json, render_profile
        from koppla.web.services import build_services

        try:
            asked = Identity.parse(identity)
        except ValueError as error:
            err.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
            raise typer.Exit(2) from error
        services = build_services(_settings(home))
        try:
            lookup = services.lookup
            view = _run(lambda: lookup.profile(asked, policy))
            if view is None:
                err.print(f"no profile for {asked}", markup=False, highlight=False)
                raise typer.Exit(1)
            timeline = lookup.events(asked, limit=events, newest_first=True) if events else []
            names = {d.id: d.name for d in services.catalog.datasets()}
        finally:
            services.close()
        if json:
            sys.stdout.write(codec.dumps(profile_json(view, timeline)).decode() + "\n")
        else:
            console.print(render_profile(view, timeline, names))

    @dataset_app.command("create")
    def dataset_create(
        name: Annotated[str, typer.Argument(help="SQL table name (lowercase, digits, _).")],
        home: HomeOption = None,
        description: Annotated[str, typer.Option(help="What the dataset holds.")] = "",
        profile_records: Annotated[
            bool,
            typer.Option(
                "--profile-records",
                help="Hold Individual Profile records (customer attributes) instead of events.",
            ),
        ] = False,
        enable_profile: Annotated[
            bool, typer.Option("--enable-profile", help="Feed real-time customer profiles.")
        ] = False,
    ) -> None:
        """Create a dataset of commerce ExperienceEvents (--profile-records: of profiles)."""
        from koppla.xdm.experience_event import commerce_experience_event
        from koppla.xdm.profile import commerce_profile

        settings = _settings(home)
        catalog = _catalog(settings)
        schema = commerce_profile() if profile_records else commerce_experience_event()
        dataset = _run(
            lambda: catalog.create_dataset(
                name,
                schema_id=schema.id,
                description=description,
                profile_enabled=enable_profile,
            )
        )
        provision(Layout(settings.home), builtin_registry(), dataset)
        console.print(f"dataset {dataset.name} created with id {dataset.id}")

    @dataset_app.command("enable-profile")
    def dataset_enable_profile(
        dataset: Annotated[str, typer.Argument(help="Dataset id or name.")],
        home: HomeOption = None,
        off: Annotated[bool, typer.Option("--off", help="Disable instead.")] = False,
    ) -> None:
        """Enable a dataset for Profile: its records and events feed customer profiles."""
        catalog = _catalog(_settings(home))
        found = _run(lambda: catalog.set_profile_enabled(dataset, not off))
        state = "enabled" if found.profile_enabled else "disabled"
        console.print(f"dataset {found.name}: profile {state}")

    @dataset_app.command("list")
    def dataset_list(home: HomeOption = None) -> None:
        """List datasets."""
        for d in _catalog(_settings(home)).datasets():
            profile = "  profile" if d.profile_enabled else ""
            console.print(f"{d.id}  {d.name}  {d.schema_id}{profile}")

    @stream_app.command("create")
    def datastream_create(
        org: Annotated[str, typer.Option(help="Organization id, <24 chars>@AdobeOrg.")],
        dataset: Annotated[str, typer.Option(help="Event dataset (id or name).")],
        home: HomeOption = None,
        origin: Annotated[list[str] | None, typer.Option(help="Allowed origin (repeat).")] = None,
        profile_dataset: Annotated[str | None, typer.Option(help="Profile dataset.")] = None,
        datastream_id: Annotated[
            str | None, typer.Option("--id", help="Id (default UUID).")
        ] = None,
        name: Annotated[str, typer.Option(help="Display name.")] = "",
    ) -> None:
        """Create a datastream: the `configId` the Web SDK sends to."""
        catalog = _catalog(_settings(home))
        stream = _run(
            lambda: catalog.create_datastream(
                org_id=org,
                event_dataset=dataset,
                name=name,
                profile_dataset=profile_dataset,
                allowed_origins=tuple(origin or ()),
                datastream_id=datastream_id,
            )
        )
        console.print(f"datastream {stream.id} created for {stream.org_id}")

    @stream_app.command("list")
    def datastream_list(home: HomeOption = None) -> None:
        """List datastreams."""
        for s in _catalog(_settings(home)).datastreams():
            origins = ",".join(s.allowed_origins) or "any origin"
            console.print(f"{s.id}  {s.org_id}  dataset={s.event_dataset_id}  {origins}")

    @app.command()
    def batches(
        home: HomeOption = None,
        dataset: Annotated[str | None, typer.Option(help="Dataset id or name.")] = None,
        limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    ) -> None:
        """List the newest batches with their status and record counts."""
        catalog = _catalog(_settings(home))
        dataset_id = _run(lambda: catalog.dataset(dataset).id) if dataset else None
        for b in catalog.batches(dataset_id=dataset_id, limit=limit):
            console.print(f"{b.id}  {b.status:7}  records={b.records} failed={b.failed_records}")

    @app.command()
    def debug(
        datastream: Annotated[str, typer.Option(help="Datastream id to watch.")],
        home: HomeOption = None,
        url: Annotated[
            str | None, typer.Option(help="Koppla's URL [default: from settings].")
        ] = None,
        token: Annotated[
            str | None,
            typer.Option(envvar="KOPPLA_TOKEN", help="API token [default: a temporary one]."),
        ] = None,
        full: Annotated[bool, typer.Option(help="Print each event's whole XDM.")] = False,
    ) -> None:
        """Tail what the edge receives for a datastream, each event with its validation result."""
        from koppla.web.debug_client import tail

        settings = _settings(home)
        base = url or f"{settings.scheme}://127.0.0.1:{settings.port}"
        temporary = None
        if token is None:
            catalog = _catalog(settings)
            token = temporary = catalog.add_token("koppla debug")
        try:
            tail(
                base,
                datastream,
                token,
                console=console,
                full=full,
                verify=settings.tls_cert is None,
            )
        except KeyboardInterrupt:
            pass
        finally:
            if temporary is not None:
                _catalog(settings).remove_token(temporary)

    @app.command()
    def status(
        home: HomeOption = None,
        json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Pipeline (running, last error, restarts), datasets, quarantine, spool, profiles."""
        from koppla.web.services import build_services
        from koppla.web.status import describe_pipeline
        from koppla.web.status import status as home_status

        services = build_services(_settings(home))
        try:
            report = home_status(services)
        finally:
            services.close()
        if json:
            sys.stdout.write(codec.dumps(report).decode() + "\n")
            return
        for line in describe_pipeline(report["pipeline"]):
            console.print(line, markup=False, highlight=False)
        for d in report["datasets"]:
            last = d["lastBatch"]
            seen = (
                "no batch yet"
                if last is None
                else (
                    f"last batch {last['status']} at {last['at']} "
                    f"({last['records']} stored, {last['failedRecords']} failed)"
                )
            )
            console.print(f"dataset [bold]{d['name']}[/]: {d['rows']} rows; {seen}")
        console.print(f"quarantine: {report['quarantinedRecords']} records")
        for s in report["spool"]:
            console.print(f"spool {s['stream']}: {s['backlogBytes']} bytes waiting to be stored")
        p = report["profiles"]
        waiting = ", ".join(f"{k} {v}" for k, v in p["commitsWaiting"].items()) or "none"
        stage = (
            "profile stage: no pass yet"
            if p["lastPassAgeS"] is None
            else f"profile stage: last pass {p['lastPassAgeS']:.0f} s ago"
        )
        console.print(
            f"profiles: {p['profiles']} profiles, {p['identities']} identities, "
            f"{p['guardrailHits']} guardrail hits; dataset commits not yet read: {waiting}; "
            f"{stage}"
        )
        for s in report["datastreams"]:
            console.print(f"datastream {s['id']}: {s['counters'] or 'no counters'}")

    @token_app.command("create")
    def token_create(
        home: HomeOption = None,
        name: Annotated[str, typer.Option(help="Who the token is for.")] = "admin",
    ) -> None:
        """Create an API token and print it (only its hash is stored)."""
        sys.stdout.write(_catalog(_settings(home)).add_token(name) + "\n")

    return app


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except KopplaError as error:
        err.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from error


def main() -> None:
    """Entry point of the `koppla` command."""
    build()()
