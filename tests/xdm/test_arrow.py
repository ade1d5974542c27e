"""The Arrow layout of a schema, and querying nested fields of it with DuckDB."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa

from koppla.xdm.arrow import arrow_schema, arrow_type, to_arrow
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.types import Array, Map, Object, Scalar, Schema
from koppla.xdm.validation import validate


def test_type_mapping() -> None:
    node = Object(
        {
            "s": Scalar("string"),
            "n": Scalar("number"),
            "i": Scalar("integer"),
            "b": Scalar("boolean"),
            "t": Scalar("date-time"),
            "d": Scalar("date"),
            "xs": Array(Scalar("integer")),
            "m": Map(Array(Object({"id": Scalar("string")}))),
        }
    )
    assert arrow_type(node) == pa.struct(
        [
            pa.field("s", pa.string()),
            pa.field("n", pa.float64()),
            pa.field("i", pa.int64()),
            pa.field("b", pa.bool_()),
            pa.field("t", pa.timestamp("us", tz="UTC")),
            pa.field("d", pa.date32()),
            pa.field("xs", pa.list_(pa.int64())),
            pa.field("m", pa.map_(pa.string(), pa.list_(pa.struct([pa.field("id", pa.string())])))),
        ]
    )


def test_columns_are_root_fields_in_definition_order() -> None:
    schema = commerce_experience_event()
    arrow = arrow_schema(schema)
    assert arrow.names == list(schema.root.fields)
    assert arrow.names[:3] == ["_id", "timestamp", "eventType"]
    assert arrow.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert arrow.metadata[b"xdm:schema"] == schema.id.encode()


def test_missing_keys_become_nulls() -> None:
    schema = Schema(
        id="urn:t",
        title="t",
        xdm_class="urn:t",
        root=Object(
            {
                "a": Scalar("string"),
                "o": Object({"x": Scalar("integer"), "y": Scalar("date")}),
            }
        ),
    )
    table = to_arrow(schema, [{"a": "1"}, {"o": {"y": date(2026, 1, 2)}}, {}])
    assert table.to_pylist() == [
        {"a": "1", "o": None},
        {"a": None, "o": {"x": None, "y": date(2026, 1, 2)}},
        {"a": None, "o": None},
    ]


def test_empty_table_has_the_schema() -> None:
    schema = commerce_experience_event()
    table = to_arrow(schema, [])
    assert table.num_rows == 0
    assert table.schema == arrow_schema(schema)


def test_duckdb_queries_nested_fields() -> None:
    schema = commerce_experience_event()
    documents = [
        {
            "_id": "e-1",
            "timestamp": "2026-11-29T16:21:22.403Z",
            "eventType": "commerce.productViews",
            "identityMap": {"ECID": [{"id": "ecid-1", "primary": True}]},
            "commerce": {"productViews": {"value": 1}},
            "productListItems": [{"SKU": "24-MB01", "priceTotal": 34, "quantity": 1}],
        },
        {
            "_id": "e-2",
            "timestamp": "2026-11-29T16:21:23Z",
            "eventType": "web.webpagedetails.pageViews",
            "identityMap": {"ECID": [{"id": "ecid-2"}], "email": [{"id": "a@b.c"}]},
        },
    ]
    records = []
    for document in documents:
        result = validate(schema, document)
        assert result.issues == ()
        records.append(result.record)
    t = to_arrow(schema, records)  # noqa: F841 - DuckDB finds the table by its variable name
    relation = duckdb.sql(
        "SELECT eventType, commerce.productViews.value, identityMap['ECID'][1].id,"
        " productListItems[1].SKU, timestamp FROM t ORDER BY _id"
    )
    assert relation is not None
    rows = relation.fetchall()
    assert rows[0][:4] == ("commerce.productViews", 1.0, "ecid-1", "24-MB01")
    assert rows[1][:4] == ("web.webpagedetails.pageViews", None, "ecid-2", None)
    assert rows[0][4] == datetime(2026, 11, 29, 16, 21, 22, 403000, tzinfo=UTC)
