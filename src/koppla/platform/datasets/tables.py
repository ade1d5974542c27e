"""A dataset's Delta table: its schema (XDM fields plus system columns) and its creation."""

from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable

from koppla.core.layout import Layout
from koppla.platform.catalog.models import Dataset
from koppla.platform.datasets import quarantine
from koppla.xdm.arrow import arrow_schema
from koppla.xdm.registry import SchemaRegistry
from koppla.xdm.types import Schema

SYSTEM_COLUMNS = [("_batch_id", pa.string()), ("_unknown", pa.string())]


def dataset_arrow_schema(schema: Schema) -> pa.Schema:
    """The Delta table schema of a dataset: its XDM fields plus Koppla's system columns.

    `_batch_id` names the batch a row came in; `_unknown` holds, as JSON, fields the sender
    included that the schema does not define (kept, not dropped).
    """
    base = arrow_schema(schema)
    for name, kind in SYSTEM_COLUMNS:
        base = base.append(pa.field(name, kind))
    return base


def provision(layout: Layout, registry: SchemaRegistry, dataset: Dataset) -> None:
    """Create the dataset's empty Delta table (and the quarantine's) unless they exist.

    A dataset is then queryable, empty, from the moment it is created.
    """
    path = layout.dataset(dataset.id)
    if not DeltaTable.is_deltatable(str(path)):
        path.mkdir(parents=True, exist_ok=True)
        schema = dataset_arrow_schema(registry.get(dataset.schema_id))
        DeltaTable.create(str(path), schema=schema, mode="ignore")
    if not DeltaTable.is_deltatable(str(layout.quarantine)):
        layout.quarantine.mkdir(parents=True, exist_ok=True)
        DeltaTable.create(str(layout.quarantine), schema=quarantine.SCHEMA, mode="ignore")
