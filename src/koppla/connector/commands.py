"""`koppla connector ...`: the store side's commands (mounted by the lead's CLI).

Named after Magento's own commands where they do the same job: `index:reindex
sales_order_data_exporter_v2` rebuilds the orders feed, `saas:resync --feed orders` sends
everything again; `index:reindex customer_profiles` and `saas:resync --feed customers` do the
same for the customer profiles of the websites that have them on.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from koppla.connector.changelog import (
    CHANGELOGS,
    install_triggers,
    triggers_installed,
    uninstall_triggers,
)
from koppla.connector.demo_store import DemoShop, create_demo_schema
from koppla.connector.history.request import require_credentials
from koppla.connector.runner import (
    CUSTOMER_SYNC,
    INITIAL_SYNC,
    LAST_CHANGE_MS,
    LAST_CUSTOMER_CHANGE_MS,
    Connector,
    follow_platform,
    start_history,
)
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.connector.source import connect
from koppla.core import clock, codec
from koppla.core.errors import KopplaError

FEED = "sales_order_data_exporter_v2"
CUSTOMER_INDEXER = "customer_profiles"
FEEDS = ("orders", "customers")

HomeOption = Annotated[
    Path,
    typer.Option("--home", envvar="KOPPLA_HOME", help="Koppla home (holds connector.toml)."),
]

T = TypeVar("T")
console = Console()
err = Console(stderr=True)

connector_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="The store-side connector: Magento orders and customers → back-office XDM events and "
    "profile records → the platform.",
)


def _guard(action: Callable[[], T]) -> T:
    try:
        return action()
    except KopplaError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None


def _settings(home: Path) -> ConnectorSettings:
    return _guard(lambda: load_settings(home))


@contextmanager
def _connector(home: Path, *, follow: bool = False) -> Iterator[Connector]:
    """The connector of `home`; with `follow`, following the platform's admin settings."""
    settings = _settings(home)
    connector = Connector(settings, remote=follow_platform(settings) if follow else None)
    try:
        yield connector
    finally:
        connector.close()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def _reindex(connector: Connector, label: str, *, resend: bool) -> None:
    total = connector.source.count_orders(connector.feed.websites())
    with _progress() as bar:
        task = bar.add_task(label, total=total)
        report = connector.reindex(lambda n: bar.advance(task, n), resend=resend)
    console.print(
        f"{report.read} orders read, {report.changed} changed, {report.events} events queued, "
        f"{report.errors} orders with errors"
    )


def _reindex_customers(connector: Connector, label: str, *, resend: bool) -> None:
    websites = connector.customers.websites()
    if not websites:
        console.print("no website has customer_profiles on; nothing to do")
        return
    total = connector.customer_source.count(websites)
    with _progress() as bar:
        task = bar.add_task(label, total=total)
        report = connector.reindex_customers(lambda n: bar.advance(task, n), resend=resend)
    console.print(
        f"{report.read} customers read, {report.changed} changed, {report.events} messages "
        f"queued, {report.errors} customers with errors"
    )


@connector_app.command("index:reindex")
def reindex(
    indexer: Annotated[
        str, typer.Argument(help=f"The indexer: {FEED} (orders) or {CUSTOMER_INDEXER}.")
    ],
    home: HomeOption = Path("koppla-data"),
) -> None:
    """Rebuild the orders feed (or customer) snapshots; queue messages for real changes only
    (sends nothing)."""
    if indexer not in (FEED, CUSTOMER_INDEXER):
        err.print(
            f"[red]error:[/] unknown indexer {indexer!r}; the orders feed is {FEED}, "
            f"the customer profiles are {CUSTOMER_INDEXER}"
        )
        raise typer.Exit(2)
    with _connector(home) as connector:
        if indexer == FEED:
            _reindex(connector, "Reindexing orders", resend=False)
        else:
            _reindex_customers(connector, "Reindexing customers", resend=False)


@connector_app.command("saas:resync")
def resync(
    feed: Annotated[str, typer.Option("--feed", help="The feed to resend: orders or customers.")],
    home: HomeOption = Path("koppla-data"),
) -> None:
    """Send every order's whole history (or every customer's profile) again; the platform drops
    duplicates by `_id`."""
    if feed not in FEEDS:
        err.print(f"[red]error:[/] unknown feed {feed!r}; the feeds are 'orders' and 'customers'")
        raise typer.Exit(2)
    with _connector(home) as connector:
        if feed == "orders":
            _reindex(connector, "Resyncing orders", resend=True)
        else:
            _reindex_customers(connector, "Resyncing customers", resend=True)
        result = connector.sender.drain(max_rounds=1_000_000)
        console.print(f"{result.sent} events sent, {result.failed} refused")
        if result.waiting:
            err.print("[yellow]the platform is not taking events now; `run` will deliver them[/]")


@connector_app.command("run")
def run(home: HomeOption = Path("koppla-data")) -> None:
    """Run the scheduled loop: changes → orders feed → outbox → delivery, until Ctrl+C; the
    admin settings saved on the platform are followed at every poll."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with _connector(home, follow=True) as connector:
        connector.refresh_settings()
        _guard(connector.check)
        console.print(
            f"connector running: {connector.settings.change_tracking} change tracking every "
            f"{connector.settings.poll_interval_s} s → {connector.settings.platform_url}"
        )
        with _stop_on_signals() as stop:
            history = start_history(connector.settings, stop)
            connector.loop(stop)
            history.join(timeout=30)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM while inside (the previous handlers come back after)."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@connector_app.command("status")
def status(
    home: HomeOption = Path("koppla-data"),
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the backlog, the last change seen, the last delivery, the delivery lag and the
    customer counts."""
    settings = _settings(home)
    from koppla.connector.state import State

    state = State(settings.state_path, maintain=False)  # the running connector migrates
    try:
        backlog = state.backlog()
        now = clock.now_ms()
        report = {
            "pending": backlog.pending,
            "sent": backlog.sent,
            "failed": backlog.failed,
            "initialSyncDone": state.cursor(INITIAL_SYNC) is not None,
            "changeTracking": settings.change_tracking,
            "lastChangeCursor": state.cursor(
                "changelog_version" if settings.change_tracking == "triggers" else "poll_timestamp"
            ),
            "lastChangeMs": _int(state.cursor(LAST_CHANGE_MS)),
            "lastDeliveryMs": backlog.last_sent_ms,
            "deliveryLagS": (now - backlog.oldest_pending_ms) / 1000
            if backlog.oldest_pending_ms
            else 0.0,
            "ordersWithErrors": [
                {"orderId": oid, "field": fld, "message": msg}
                for oid, fld, msg in state.order_errors()
            ],
            "customers": {
                "profileWebsites": [
                    w.website_code for w in settings.websites if w.customer_profiles
                ],
                "backfilledWebsites": [
                    c for c in (state.cursor(CUSTOMER_SYNC) or "").split(",") if c
                ],
                "lastChangeMs": _int(state.cursor(LAST_CUSTOMER_CHANGE_MS)),
                **state.customer_counts(),
            },
            "customAttributes": _custom_attributes(settings),
        }
    finally:
        state.close()
    if json:
        sys.stdout.write(codec.dumps_pretty(report) + "\n")
        return
    for key, value in report.items():
        console.print(f"[bold]{key}[/]: {value}")


def _custom_attributes(settings: ConnectorSettings) -> dict[str, Any]:
    """The custom attribute settings in effect, and the named columns the shop lacks (the shop
    is asked only when columns are named)."""
    found: dict[str, Any] = {
        "tenant": settings.tenant,
        "orderColumns": list(settings.custom_order_columns),
        "itemColumns": list(settings.custom_item_columns),
    }
    if settings.custom_order_columns or settings.custom_item_columns:
        from koppla.connector.source import StoreSource

        engine = connect(settings.dsn)
        try:
            found["missingColumns"] = StoreSource(
                engine, settings.custom_columns
            ).missing_custom_columns()
        except Exception as error:  # the shop is down: say so, the rest of the status stands
            found["missingColumns"] = f"the shop database cannot be read: {type(error).__name__}"
        finally:
            engine.dispose()
    return found


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


@connector_app.command("history:sync")
def history_sync(
    start: Annotated[str, typer.Option("--from", help="First order date, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--to", help="Last order date, YYYY-MM-DD (UTC).")],
    home: HomeOption = Path("koppla-data"),
    website: Annotated[
        str | None, typer.Option(help="Only this website (default: every configured one).")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Run consumers here and show progress until done (--no-wait: leave the work "
            "to the running connector or `history:work`).",
        ),
    ] = True,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=32, help="Consumer processes.", show_default="the history_workers setting"
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the final figures as JSON.")] = False,
) -> None:
    """Send the orders created From..To (at most five years) as batches to each website's
    history dataset, through the queue; exactly once, resumable."""
    from koppla.connector.history import commands as history

    settings = _settings(home)
    _guard(lambda: require_credentials(settings))  # this command sends the batches itself
    code = history.sync(settings, start, end, website, wait=wait, workers=workers, as_json=json)
    raise typer.Exit(code)


@connector_app.command("history:status")
def history_status(
    home: HomeOption = Path("koppla-data"),
    request: Annotated[
        str | None, typer.Option("--id", help="The sync's id (default: the newest).")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a history sync's progress: orders found, done, failed; batches created, succeeded,
    failed; rate and time left."""
    from koppla.connector.history import commands as history

    raise typer.Exit(history.status(_settings(home), request, json))


@connector_app.command("history:work")
def history_work(home: HomeOption = Path("koppla-data")) -> None:
    """Consume history chunks until Ctrl+C (more consumers: run it again on this machine)."""
    from koppla.connector.history import commands as history

    with _stop_on_signals() as stop:
        history.work(_settings(home), stop)


@connector_app.command("install-triggers")
def install(
    home: HomeOption = Path("koppla-data"),
    remove: Annotated[bool, typer.Option("--remove", help="Drop them instead.")] = False,
) -> None:
    """Create the order and customer changelog tables and triggers in the shop database (Update
    by Schedule)."""
    settings = _settings(home)
    engine = connect(settings.dsn)
    try:
        if remove:
            uninstall_triggers(engine)
            console.print("changelog triggers removed")
        else:
            count = install_triggers(engine)
            console.print(f"changelog tables and triggers installed ({count} statements)")
    finally:
        engine.dispose()


@connector_app.command("demo-store")
def demo_store(
    home: HomeOption = Path("koppla-data"),
    orders: Annotated[int, typer.Option(help="Orders to generate.")] = 200,
    simulate: Annotated[bool, typer.Option(help="Keep placing and moving orders.")] = False,
    every: Annotated[float, typer.Option(help="Seconds between simulated actions.")] = 1.0,
    seed: Annotated[
        int | None, typer.Option(help="Random seed.", show_default="a new one each run")
    ] = None,
) -> None:
    """Create and populate the SQLite demo shop (with triggers); `--simulate` keeps it busy."""
    settings = _settings(home)
    if not settings.dsn.startswith("sqlite"):
        err.print("[red]error:[/] demo-store only writes to a SQLite source_dsn")
        raise typer.Exit(2)
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = connect(settings.dsn)
    try:
        create_demo_schema(engine)
        if not all(triggers_installed(engine, log) for log in CHANGELOGS):
            install_triggers(engine)
        shop = DemoShop(engine, seed)
        with _progress() as bar:
            task = bar.add_task("Generating orders", total=orders)
            shop.generate(orders, lambda n: bar.advance(task, n))
        console.print(f"demo shop at {settings.dsn} with {orders} new orders")
        if simulate:
            console.print("simulating shop activity (Ctrl+C stops)")
            with _stop_on_signals() as stop:
                actions = shop.simulate(stop, every)
            console.print(f"{actions} actions simulated")
    finally:
        engine.dispose()
