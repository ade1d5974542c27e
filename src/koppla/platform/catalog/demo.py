"""The demo organization, datasets and datastream that `koppla demo` and `koppla up --demo` make."""

from __future__ import annotations

from koppla.core.errors import Conflict, NotFound
from koppla.platform.catalog.models import DEFAULT_ORG_ID, Dataset, Datastream
from koppla.platform.catalog.store import Catalog
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.profile import commerce_profile

DEMO_ORG_ID = DEFAULT_ORG_ID
DEMO_DATASTREAM_ID = "6d3b1f0e-8c2a-4e7b-9a41-0d2f6a1c5e90"
DEMO_DATASET = "demo_events"
DEMO_PROFILE_DATASET = "demo_profiles"


def _ensure_dataset(catalog: Catalog, name: str, schema_id: str, description: str) -> Dataset:
    """The dataset `name`, enabled for Profile (created when missing)."""
    try:
        found = catalog.dataset(name)
    except NotFound:
        return catalog.create_dataset(
            name,
            schema_id=schema_id,
            description=description,
            profile_enabled=True,
            org_id=DEMO_ORG_ID,
        )
    if found.org_id != DEMO_ORG_ID:
        raise Conflict(
            f"the demo needs the dataset name {name!r}, which organization {found.org_id} "
            "uses: the demo cannot be made in this home"
        )
    return found if found.profile_enabled else catalog.set_profile_enabled(found.id, True)


def ensure_demo(catalog: Catalog) -> Datastream:
    """The demo datastream with its event and profile datasets, created on first use.

    Idempotent, and it brings a demo made by an older Koppla up to date: the profile dataset is
    added and attached to the datastream when missing.
    """
    _ensure_dataset(
        catalog,
        DEMO_DATASET,
        commerce_experience_event().id,
        "Storefront and back-office events of the demo datastream",
    )
    profiles = _ensure_dataset(
        catalog,
        DEMO_PROFILE_DATASET,
        commerce_profile().id,
        "Customer profile records of the demo shop",
    )
    try:
        stream = catalog.datastream(DEMO_DATASTREAM_ID)
        if stream.org_id != DEMO_ORG_ID:
            raise Conflict(
                f"the demo datastream id {DEMO_DATASTREAM_ID} belongs to organization "
                f"{stream.org_id}: the demo cannot be made in this home"
            )
    except NotFound:
        return catalog.create_datastream(
            org_id=DEMO_ORG_ID,
            event_dataset=DEMO_DATASET,
            profile_dataset=DEMO_PROFILE_DATASET,
            name="Koppla demo",
            datastream_id=DEMO_DATASTREAM_ID,
        )
    if stream.profile_dataset_id is None:
        stream = catalog.set_profile_dataset(stream.id, profiles.id)
    return stream
