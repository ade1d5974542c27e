"""Arrow data brought to a wider shape: absent fields (nested, in lists too) read null."""

from __future__ import annotations

import pyarrow as pa

from koppla.platform.datasets.conform import conform_table

ITEM = pa.struct([("SKU", pa.string())])
WIDE_ITEM = pa.struct([("SKU", pa.string()), ("_t", pa.struct([("engraving", pa.string())]))])
NARROW = pa.schema([("_id", pa.string()), ("items", pa.list_(ITEM))])
WIDE = pa.schema([("_id", pa.string()), ("items", pa.list_(WIDE_ITEM)), ("flag", pa.bool_())])


def test_fields_a_table_lacks_are_null_and_its_values_are_kept() -> None:
    narrow = pa.table(
        {"_id": ["a", "b", "c"], "items": [[{"SKU": "x"}, {"SKU": "y"}], None, []]},
        schema=NARROW,
    )
    wide = conform_table(narrow, WIDE)
    assert wide.schema.equals(WIDE)
    assert wide.to_pylist() == [
        {
            "_id": "a",
            "items": [{"SKU": "x", "_t": None}, {"SKU": "y", "_t": None}],
            "flag": None,
        },
        {"_id": "b", "items": None, "flag": None},
        {"_id": "c", "items": [], "flag": None},
    ]


def test_a_table_of_the_shape_already_is_returned_as_it_is() -> None:
    table = pa.table({"_id": ["a"], "items": [None]}, schema=NARROW)
    assert conform_table(table, NARROW) is table
