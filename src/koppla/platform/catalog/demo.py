"""The demo organization, dataset and datastream that `koppla demo` and `koppla up --demo` make."""

from __future__ import annotations

from koppla.core.errors import NotFound
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.xdm.experience_event import commerce_experience_event

DEMO_ORG_ID = "KOPPLADEMO00000000000000@AdobeOrg"
DEMO_DATASTREAM_ID = "6d3b1f0e-8c2a-4e7b-9a41-0d2f6a1c5e90"
DEMO_DATASET = "demo_events"


def ensure_demo(catalog: Catalog) -> Datastream:
    """The demo datastream, created with its dataset on first use (idempotent)."""
    try:
        return catalog.datastream(DEMO_DATASTREAM_ID)
    except NotFound:
        pass
    try:
        catalog.dataset(DEMO_DATASET)
    except NotFound:
        catalog.create_dataset(
            DEMO_DATASET,
            schema_id=commerce_experience_event().id,
            description="Storefront events of the demo datastream",
        )
    return catalog.create_datastream(
        org_id=DEMO_ORG_ID,
        event_dataset=DEMO_DATASET,
        name="Koppla demo",
        datastream_id=DEMO_DATASTREAM_ID,
    )
