"""Every column Koppla reads exists in Magento's real declarative schema, with a compatible type."""

from __future__ import annotations

import pytest
from sqlalchemy import Date, DateTime, Integer, LargeBinary, Numeric, String, Text

from koppla.connector import schema
from koppla.connector.schema import CUSTOMER_TRACKED_TABLES, TRACKED_TABLES
from tests.connector.magento_ddl import columns, load_tables
from tests.reference import reference_dir

COMPATIBLE: list[tuple[type, set[str]]] = [
    (Numeric, {"decimal"}),
    (Integer, {"int", "smallint", "bigint", "tinyint"}),
    (Text, {"text", "mediumtext", "longtext"}),
    (String, {"varchar"}),
    (DateTime, {"timestamp", "datetime"}),
    (Date, {"date"}),
    (LargeBinary, {"blob", "mediumblob", "longblob"}),
]


def _allowed(sql_type: object) -> set[str]:
    for kind, names in COMPATIBLE:
        if isinstance(sql_type, kind):
            return names
    raise AssertionError(f"no Magento type mapping for {sql_type!r}")


@pytest.mark.parametrize("table", schema.metadata.sorted_tables, ids=lambda t: t.name)
def test_every_column_koppla_reads_exists_with_a_compatible_type(table: object) -> None:
    magento = load_tables(reference_dir())
    name = table.name  # type: ignore[attr-defined]
    assert name in magento, f"Magento has no table {name}"
    real = columns(magento[name])
    for column in table.columns:  # type: ignore[attr-defined]
        assert column.name in real, f"{name}.{column.name} is not in Magento's schema"
        declared = real[column.name]
        assert declared.kind in _allowed(column.type), (
            f"{name}.{column.name}: Koppla reads {column.type}, Magento declares {declared.kind}"
        )
        if isinstance(column.type, String) and not isinstance(column.type, Text):
            assert column.type.length == int(declared.attrs.get("length", "255"))
        if isinstance(column.type, Numeric):
            declared_size = (int(declared.attrs["precision"]), int(declared.attrs["scale"]))
            assert (column.type.precision, column.type.scale) == declared_size, column.name
        if column.primary_key and isinstance(column.type, Integer):
            assert declared.attrs.get("identity") == "true"
        elif column.primary_key:  # the status tables are keyed by name
            assert declared.attrs.get("identity") != "true" and not declared.nullable
        if not column.nullable and not column.primary_key:
            assert not declared.nullable, f"{name}.{column.name} is nullable in Magento"


def test_tracked_tables_carry_the_order_id_column() -> None:
    magento = load_tables(reference_dir())
    for table_name, column in {**TRACKED_TABLES, **CUSTOMER_TRACKED_TABLES}.items():
        assert column in columns(magento[table_name])


def test_every_column_an_order_read_selects_is_in_koppla_schema() -> None:
    from koppla.connector.source import COLUMNS

    tables = {table.name: table for table in schema.metadata.sorted_tables}
    for name, wanted in COLUMNS.items():
        assert set(wanted) <= set(tables[name].c.keys()), name
