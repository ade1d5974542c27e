"""Validation of a document against a schema: every issue with its path, plus the record to store.

The schema is compiled once into a tree of closures (`compile_validator`); `validate` caches the
compiled validator per schema object. Validation never raises on bad input: it returns the issues.
One walk of the document does everything: checks, normalization, and collecting what normalization
would otherwise lose (unknown fields, and the text of date-times sent in another form than the
canonical UTC one). For documents decoded from JSON, `validate_json` first tries the schema as
msgspec Structs (`koppla.xdm.compiled`), which turn a document with nothing to report into its
record at C speed; anything else gets the walk.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, TypeAlias

from koppla.core import codec
from koppla.xdm.compiled import Converter, NotCompilable, Unsure, compile_structs
from koppla.xdm.types import Array, Map, Object, Scalar, Schema, Type

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INVALID: Any = object()


@dataclass(frozen=True)
class Issue:
    """One problem in a document: where (`productListItems[0].quantity`), what kind, and why.

    `code` is one of `type`, `required`, `enum`, `pattern`, `format`, `range`.
    """

    path: str
    code: str
    message: str


@dataclass(frozen=True)
class Validated:
    """The outcome of validating one document.

    `record` is the normalized document (timestamps as UTC `datetime`, dates as `date`, integers
    as `int`, numbers as `float`; nulls and unknown fields removed; an invalid value is left out,
    or becomes `None` inside an array so positions still match the issue paths). `unknown` maps
    the path of each field the schema does not define to its value. `datetimes` maps the path of
    each valid date-time whose text is not the canonical rendering of the stored instant
    (`YYYY-MM-DDTHH:MM:SS.sssZ`, what JavaScript's `toISOString` gives) to the exact text sent,
    so an offset like `+01:00` is kept beside the UTC instant.
    """

    record: dict[str, Any]
    issues: tuple[Issue, ...]
    unknown: dict[str, Any]
    datetimes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the document has no issues."""
        return not self.issues


Check: TypeAlias = Callable[[Any, str, list[Issue], dict[str, Any], dict[str, str]], Any]
"""`check(value, path, issues, unknown, sent)` returns the normalized value, or `_INVALID`."""


Fast: TypeAlias = Callable[[Any], Any]
"""`fast(value)` returns the normalized value of a value with nothing to report, or raises
`_Bail` at the first thing the full check would report or record (see `Validator.validate`)."""


class _Bail(Exception):
    """Raised by a fast check: this document needs the full check."""


_BAIL = _Bail()


@dataclass(frozen=True, eq=False)
class Validator:
    """A schema compiled for fast, repeated validation.

    Two compiled forms of the same rules: `fast` for the common case, a document with nothing
    to report (no issue, no unknown field, no date-time in another form than the canonical
    one), which builds no paths and collects nothing; and `check`, which walks the whole
    document collecting every issue with its path. `validate` tries `fast` and falls back to
    `check` at the first sign of trouble, so the result is always the full check's.
    """

    schema: Schema
    check: Check
    fast: Fast
    structs: Converter | None = None
    """The schema as msgspec Structs, for JSON-decoded documents (`validate_json`); None when
    the schema has a shape they cannot express."""

    def validate(self, document: object) -> Validated:
        """Validate one document (the `xdm` object of an event); never raises on bad input."""
        try:
            record = self.fast(document)
        except (_Bail, RecursionError):
            return self.validate_fully(document)
        return Validated(record, (), {}, {})

    def validate_json(self, document: object) -> Validated:
        """`validate` for a document decoded from JSON (dicts, lists, strings, numbers, booleans,
        nulls): the same outcome, found first by the schema's msgspec Structs (C speed) when
        the document has nothing to report."""
        if self.structs is not None:
            try:
                return Validated(self.structs.convert(document), (), {}, {})
            except (Unsure, RecursionError):
                pass
        return self.validate(document)

    def validate_fully(self, document: object) -> Validated:
        """Validate one document with the full check (every issue, every path)."""
        issues: list[Issue] = []
        unknown: dict[str, Any] = {}
        sent: dict[str, str] = {}
        record = self.check(document, "", issues, unknown, sent)
        if record is _INVALID:
            record = {}
        return Validated(record, tuple(issues), unknown, sent)


def compile_validator(schema: Schema) -> Validator:
    """Compile `schema` into a `Validator` (do it once, reuse it for every document)."""
    try:
        structs: Converter | None = compile_structs(schema)
    except NotCompilable:
        structs = None
    return Validator(schema, _compile(schema.root), _compile_fast(schema.root), structs)


@lru_cache(maxsize=64)
def _cached_validator(schema: Schema) -> Validator:
    return compile_validator(schema)


def validate(schema: Schema, document: object) -> Validated:
    """Validate `document` against `schema`, reporting every issue (compiled once per schema)."""
    return _cached_validator(schema).validate(document)


def validate_json(schema: Schema, document: object) -> Validated:
    """`validate` for a document decoded from JSON (see `Validator.validate_json`): the same
    outcome, faster for a document with nothing to report."""
    return _cached_validator(schema).validate_json(document)


def describe(value: object) -> str:
    """A short JSON-flavoured description of a value for issue messages: `string "3"`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean true" if value else "boolean false"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        text = codec.dumps(value[:60]).decode()
        return f"string {text}" + ("…" if len(value) > 60 else "")
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _type_issue(path: str, expected: str, value: object) -> Issue:
    return Issue(path, "type", f"expected {expected}, got {describe(value)}")


def _compile(node: Type) -> Check:
    if isinstance(node, Object):
        return _compile_object(node)
    if isinstance(node, Array):
        return _compile_array(node)
    if isinstance(node, Map):
        return _compile_map(node)
    return _compile_scalar(node)


def _compile_object(node: Object) -> Check:
    checks = {name: _compile(child) for name, child in node.fields.items()}
    required = tuple(name for name in node.fields if name in node.required)

    def check(
        value: Any, path: str, issues: list[Issue], unknown: dict[str, Any], sent: dict[str, str]
    ) -> Any:
        if not isinstance(value, dict):
            issues.append(_type_issue(path, "object", value))
            return _INVALID
        prefix = path + "." if path else ""
        out: dict[str, Any] = {}
        for key, item in value.items():
            child = checks.get(key)
            if child is None:
                unknown[prefix + str(key)] = item
            elif item is not None:
                result = child(item, prefix + key, issues, unknown, sent)
                if result is not _INVALID:
                    out[key] = result
        for name in required:
            if value.get(name) is None:
                issues.append(Issue(prefix + name, "required", "required field is missing"))
        return out

    return check


def _compile_array(node: Array) -> Check:
    item_check = _compile(node.items)

    def check(
        value: Any, path: str, issues: list[Issue], unknown: dict[str, Any], sent: dict[str, str]
    ) -> Any:
        if not isinstance(value, list):
            issues.append(_type_issue(path, "array", value))
            return _INVALID
        out: list[Any] = []
        for index, item in enumerate(value):
            result = item_check(item, f"{path}[{index}]", issues, unknown, sent)
            out.append(None if result is _INVALID else result)
        return out

    return check


def _compile_map(node: Map) -> Check:
    value_check = _compile(node.values)

    def check(
        value: Any, path: str, issues: list[Issue], unknown: dict[str, Any], sent: dict[str, str]
    ) -> Any:
        if not isinstance(value, dict):
            issues.append(_type_issue(path, "object", value))
            return _INVALID
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is not None:
                result = value_check(item, f"{path}.{key}", issues, unknown, sent)
                if result is not _INVALID:
                    out[key] = result
        return out

    return check


def _compile_scalar(node: Scalar) -> Check:
    if node.kind == "string":
        return _compile_string(node)
    if node.kind == "number":
        return _with_range(node, _number)
    if node.kind == "integer":
        return _with_range(node, _integer)
    if node.kind == "boolean":
        return _boolean
    if node.kind == "date-time":
        return _date_time
    return _date


def _compile_string(node: Scalar) -> Check:
    allowed = frozenset(node.enum) if node.enum is not None else None
    listed = ", ".join(node.enum or ())
    search = re.compile(node.pattern).search if node.pattern is not None else None
    pattern = node.pattern

    def check(
        value: Any, path: str, issues: list[Issue], unknown: dict[str, Any], sent: dict[str, str]
    ) -> Any:
        if not isinstance(value, str):
            issues.append(_type_issue(path, "string", value))
            return _INVALID
        if allowed is not None and value not in allowed:
            issues.append(Issue(path, "enum", f"expected one of {listed}, got {describe(value)}"))
            return _INVALID
        if search is not None and search(value) is None:
            message = f"does not match pattern {pattern}: {describe(value)}"
            issues.append(Issue(path, "pattern", message))
            return _INVALID
        return value

    return check


def _number(
    value: Any, path: str, issues: list[Issue], unknown: dict[str, Any], sent: dict[str, str]
) -> Any:
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    issues.append(_type_issue(path, "number", value))
    return _INVALID


def _integer(
    value: Any, path: str, issues: list[Issue], unknown: dict[str, Any], sent: dict[str, str]
) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    else:
        issues.append(_type_issue(path, "integer", value))
        return _INVALID
    if not _INT64_MIN <= result <= _INT64_MAX:
        issues.append(Issue(path, "range", f"outside the 64-bit integer range: {result}"))
        return _INVALID
    return result


def _with_range(node: Scalar, base: Check) -> Check:
    low, high = node.minimum, node.maximum
    if low is None and high is None:
        return base

    def check(
        value: Any, path: str, issues: list[Issue], unknown: dict[str, Any], sent: dict[str, str]
    ) -> Any:
        result = base(value, path, issues, unknown, sent)
        if result is _INVALID:
            return result
        if low is not None and result < low:
            issues.append(Issue(path, "range", f"must be >= {low:g}, got {describe(value)}"))
            return _INVALID
        if high is not None and result > high:
            issues.append(Issue(path, "range", f"must be <= {high:g}, got {describe(value)}"))
            return _INVALID
        return result

    return check


def _boolean(
    value: Any, path: str, issues: list[Issue], unknown: dict[str, Any], sent: dict[str, str]
) -> Any:
    if isinstance(value, bool):
        return value
    issues.append(_type_issue(path, "boolean", value))
    return _INVALID


def _date_time(
    value: Any, path: str, issues: list[Issue], unknown: dict[str, Any], sent: dict[str, str]
) -> Any:
    if isinstance(value, str):
        moment: datetime | None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = _parse_lowercase(value)
        if moment is None or moment.tzinfo is None:
            message = f"expected an RFC 3339 date-time with a UTC offset, got {describe(value)}"
            issues.append(Issue(path, "format", message))
            return _INVALID
        instant = moment.astimezone(UTC)
        if not _is_canonical(value):
            sent[path] = value
        return instant
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    issues.append(_type_issue(path, "date-time string", value))
    return _INVALID


def _parse_lowercase(text: str) -> datetime | None:
    """`text` read with RFC 3339's lowercase `t` and `z` (`fromisoformat` wants capitals)."""
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError:
        return None


def _is_canonical(text: str) -> bool:
    """True when `text` has the form `YYYY-MM-DDTHH:MM:SS.sssZ` (what `toISOString` gives).

    Only for text `datetime.fromisoformat` accepted: the digits are checked there, so the
    separators alone tell this form from the others it accepts (week dates, basic format, `,`).
    Text of this form is exactly the canonical rendering of the instant it names.
    """
    return len(text) == 24 and text[23] == "Z" and text[4:20:3] == "--T::."


def _date(
    value: Any, path: str, issues: list[Issue], unknown: dict[str, Any], sent: dict[str, str]
) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            message = f"expected an ISO 8601 date (YYYY-MM-DD), got {describe(value)}"
            issues.append(Issue(path, "format", message))
            return _INVALID
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    issues.append(_type_issue(path, "date string", value))
    return _INVALID


def _compile_fast(node: Type) -> Fast:
    """The fast form of `_compile(node)`: same result when there is nothing to report."""
    if isinstance(node, Object):
        return _fast_object(node)
    if isinstance(node, Array):
        item = _compile_fast(node.items)
        return lambda value: [item(v) for v in value] if isinstance(value, list) else _bail()
    if isinstance(node, Map):
        values = _compile_fast(node.values)

        def fast_map(value: Any) -> Any:
            if not isinstance(value, dict):
                raise _BAIL
            return {k: values(v) for k, v in value.items() if v is not None}

        return fast_map
    return _fast_scalar(node)


def _bail() -> Any:
    raise _BAIL


def _fast_object(node: Object) -> Fast:
    checks = {name: _compile_fast(child) for name, child in node.fields.items()}
    required = tuple(name for name in node.fields if name in node.required)

    def fast_object(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _BAIL
        out: dict[str, Any] = {}
        for key, item in value.items():
            check = checks.get(key)
            if check is None:  # an unknown field, even a null one, is recorded by the full check
                raise _BAIL
            if item is not None:
                out[key] = check(item)
        for name in required:
            if value.get(name) is None:
                raise _BAIL
        return out

    return fast_object


def _fast_scalar(node: Scalar) -> Fast:
    """A scalar check that bails instead of reporting; reuses the full check's rules."""
    full = _compile_scalar(node)
    if node.kind == "string" and node.enum is None and node.pattern is None:
        return lambda value: value if isinstance(value, str) else _bail()
    if node.kind == "date-time":
        return _fast_date_time

    def fast(value: Any) -> Any:
        issues: list[Issue] = []
        result = full(value, "", issues, _NO_UNKNOWN, _NO_SENT)
        if issues or result is _INVALID:
            raise _BAIL
        return result

    return fast


_NO_UNKNOWN: dict[str, Any] = {}
_NO_SENT: dict[str, str] = {}


def _fast_date_time(value: Any) -> Any:
    if isinstance(value, str) and _is_canonical(value):
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            raise _BAIL from None
    if isinstance(value, datetime) and value.tzinfo is not None:  # from Parquet
        return value.astimezone(UTC)
    raise _BAIL
