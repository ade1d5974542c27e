"""Property: documents generated from the schema validate cleanly and round-trip through Arrow."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koppla.xdm.arrow import to_arrow
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.types import Array, Map, Object, Scalar, Type
from koppla.xdm.validation import validate

# A generated pair: (document as a client sends it, the record `validate` should produce).
Pair = tuple[Any, Any]

_OFFSETS = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))]
)
_MOMENTS = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1))
_DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1))


def pairs(node: Type) -> st.SearchStrategy[Pair]:
    """Valid (document, normalized record) pairs for one schema node."""
    if isinstance(node, Object):
        return _object_pairs(node)
    if isinstance(node, Array):
        return st.lists(pairs(node.items), max_size=2).map(
            lambda items: ([raw for raw, _ in items], [norm for _, norm in items])
        )
    if isinstance(node, Map):
        return st.dictionaries(st.text(min_size=1, max_size=6), pairs(node.values), max_size=2).map(
            lambda entries: (
                {key: raw for key, (raw, _) in entries.items()},
                {key: norm for key, (_, norm) in entries.items()},
            )
        )
    return _scalar_pairs(node)


def _object_pairs(node: Object) -> st.SearchStrategy[Pair]:
    required = {name: pairs(child) for name, child in node.fields.items() if name in node.required}
    optional = {
        name: pairs(child) for name, child in node.fields.items() if name not in node.required
    }
    return st.fixed_dictionaries(required, optional=optional).map(
        lambda fields: (
            {name: raw for name, (raw, _) in fields.items()},
            {name: norm for name, (_, norm) in fields.items()},
        )
    )


def _same(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Pair]:
    return strategy.map(lambda value: (value, value))


def _scalar_pairs(node: Scalar) -> st.SearchStrategy[Pair]:
    if node.kind == "string":
        if node.enum is not None:
            return _same(st.sampled_from(node.enum))
        if node.pattern is not None:
            return _same(st.from_regex(node.pattern, fullmatch=True))
        return _same(st.text(max_size=12))
    if node.kind == "number":
        low, high = node.minimum, node.maximum
        floats = st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
        ints = st.integers(
            min_value=int(low) if low is not None else -(2**40),
            max_value=int(high) if high is not None else 2**40,
        )
        return _same(floats) | ints.map(lambda i: (i, float(i)))
    if node.kind == "integer":
        low = int(node.minimum) if node.minimum is not None else -(2**63)
        ints = st.integers(min_value=low, max_value=2**63 - 1)
        small = st.integers(min_value=max(low, -(2**52)), max_value=2**52)
        return _same(ints) | small.map(lambda i: (float(i), i))
    if node.kind == "boolean":
        return _same(st.booleans())
    if node.kind == "date-time":
        return st.builds(_date_time_pair, _MOMENTS, _OFFSETS, st.booleans())
    return _DATES.map(lambda day: (day.isoformat(), day))


def _date_time_pair(moment: datetime, offset: timezone, zulu: bool) -> Pair:
    aware = moment.replace(tzinfo=offset)
    text = aware.isoformat()
    if zulu and offset is UTC:
        text = text.replace("+00:00", "Z")
    return text, aware.astimezone(UTC)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_SETTINGS
@given(pairs(commerce_experience_event().root))
def test_generated_documents_validate_to_the_expected_record(pair: Pair) -> None:
    document, expected = pair
    result = validate(commerce_experience_event(), document)
    assert result.issues == ()
    assert result.unknown == {}
    assert result.record == expected


@_SETTINGS
@given(st.lists(pairs(commerce_experience_event().root), min_size=1, max_size=3))
def test_records_round_trip_through_arrow(batch: list[Pair]) -> None:
    schema = commerce_experience_event()
    records = [validate(schema, document).record for document, _ in batch]
    table = to_arrow(schema, records)
    assert table.num_rows == len(records)
    back = [_without_nulls(row) for row in table.to_pylist(maps_as_pydicts="strict")]
    assert back == records
