"""`koppla demo`: the demo datasets and datastream, and how to use them."""

from __future__ import annotations

from koppla.cli.common import HomeOption, catalog, console, settings
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.demo import ensure_demo
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.location import table_location
from koppla.platform.datasets.tables import provision
from koppla.platform.schemas.demo import ensure_demo_schema
from koppla.platform.schemas.registry import home_registry
from koppla.web.listening import local_url


def demo(home: HomeOption = None) -> None:
    """Create the demo dataset and datastream (idempotent) and say how to use them."""
    loaded = settings(home)
    opened = catalog(loaded)
    try:
        print_demo(loaded, ensure_demo_stream(loaded, opened))
    finally:
        opened.close()


def ensure_demo_stream(loaded: Settings, opened: Catalog) -> Datastream:
    """The demo datastream, with its datasets' tables ready to query."""
    stream = ensure_demo(opened)
    layout = Layout(loaded.home)
    registry = home_registry(Layout(loaded.home), loaded.catalog_url)
    try:
        ensure_demo_schema(opened, registry, opened.dataset(stream.event_dataset_id))
        for dataset_id in (stream.event_dataset_id, stream.profile_dataset_id):
            if dataset_id is not None:
                provision(
                    layout,
                    registry,
                    opened.dataset(dataset_id),
                    location=table_location(loaded),
                )
    finally:
        registry.close()
    return stream


def print_demo(loaded: Settings, stream: Datastream) -> None:
    """Where to send the demo datastream's events, and how to watch and query them."""
    base = local_url(loaded)
    console.print(
        f"Demo datastream [bold]{stream.id}[/] (org {stream.org_id}) "
        "lands events in dataset [bold]demo_events[/]."
    )
    console.print(f"  send events:  POST {base}/ee/v1/interact?configId={stream.id}")
    console.print(f"  demo shop:    {base}/demo/shop/")
    console.print(f"  watch live:   koppla debug --datastream {stream.id}")
    console.print(
        '  query them:   koppla query "SELECT timestamp, eventType, '
        'web.webPageDetails.URL FROM demo_events ORDER BY timestamp DESC"'
    )
