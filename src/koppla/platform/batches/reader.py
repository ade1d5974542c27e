"""Reading the rows of a batch file in slices: JSON lines, multi-line JSON, or Parquet.

A slice starts at a `Cursor` (a byte offset in JSON lines, a row index otherwise) and holds up to
a given number of rows, so a file of any size is read a bounded amount at a time, and a restart
resumes where the durable progress says. Each row comes with its number as the client counts
it (1-based line of a JSON-lines file, 1-based row of a Parquet file or a JSON array).

A row that cannot be read (bad JSON, not an object, nested too deep, a line longer than
`max_line_bytes`) comes back with its problem and its text as sent; it never stops the file, and
reading resumes after the over-long line's newline. A file that cannot be read at all (corrupt
Parquet, a Parquet row group larger than `max_row_group_bytes` uncompressed, a multi-line JSON
file larger than `max_document_bytes` or that does not parse) raises `FileUnreadable`. So one
hostile file costs a bounded amount of memory, whatever it holds.

Parquet timestamps without a time zone are read as UTC (XDM date-times are instants).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from koppla.core import codec, nesting

Problem = tuple[str, str, str]
"""One problem of a row: (path, code, message), as validation reports them."""

Format = Literal["json", "parquet"]

MAX_SENT_CHARS = 64 * 1024
"""The most of a row's text kept for download when the row is refused."""

MAX_LINE_BYTES = 8 * 1024 * 1024
"""The longest line of a JSON-lines file read as a row; a longer one is a `lineTooLong` error."""

MAX_SLICE_BYTES = 64 * 1024 * 1024
"""A slice of a JSON-lines file ends once it read this many bytes, however few rows."""

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""The largest multi-line JSON file read (it is parsed whole); `batch_max_document_bytes`."""

MAX_ROW_GROUP_BYTES = 512 * 1024 * 1024
"""The largest Parquet row group (uncompressed) read; a file with a larger one is unreadable."""

_SKIP_CHUNK = 1024 * 1024


class FileUnreadable(Exception):
    """The whole file cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row of a file: its number, the object read (None when unreadable), and its text."""

    number: int
    value: dict[str, Any] | None
    text: str | None = None
    """The row as sent, for files of text (JSON lines); else made from `value` when needed."""
    problem: Problem | None = None

    def sent(self) -> str:
        """The row as sent (at most `MAX_SENT_CHARS` of it), for the failed-rows download."""
        text = self.text
        if text is None:
            try:
                text = codec.dumps(self.value).decode()
            except TypeError:  # a Parquet value JSON cannot hold (bytes, decimals)
                text = repr(self.value)
        return text[:MAX_SENT_CHARS]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a slice starts: `offset` (bytes into JSON lines, rows otherwise), rows passed."""

    offset: int = 0
    row: int = 0


@dataclass(frozen=True, slots=True)
class Slice:
    """Rows read from a file, where the next slice starts, and whether the file is done."""

    rows: list[RawRow]
    next: Cursor
    done: bool


@dataclass
class _ParquetState:
    reader: pq.ParquetFile
    batches: Any
    position: int
    pending: list[RawRow] = field(default_factory=list)


class RowReader:
    """Reads slices of batch files, keeping open what the next slice of a file continues."""

    def __init__(
        self,
        max_depth: int,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_slice_bytes: int = MAX_SLICE_BYTES,
        max_document_bytes: int = MAX_DOCUMENT_BYTES,
        max_row_group_bytes: int = MAX_ROW_GROUP_BYTES,
    ) -> None:
        self._max_depth = max_depth
        self._max_line = max_line_bytes
        self._max_slice = max_slice_bytes
        self._max_document = max_document_bytes
        self._max_row_group = max_row_group_bytes
        self._too_deep = (
            f"the row nests deeper than {max_depth} levels of objects and arrays (batch_max_depth)"
        )
        self._documents: dict[Path, list[Any]] = {}
        self._parquet: dict[Path, _ParquetState] = {}

    def read(self, path: Path, kind: Format, multiline: bool, cursor: Cursor, limit: int) -> Slice:
        """Up to `limit` rows of the file at `path` from `cursor`; `FileUnreadable` if it is."""
        if kind == "parquet":
            return self._read_parquet(path, cursor, limit)
        if multiline:
            return self._read_document(path, cursor, limit)
        return self._read_lines(path, cursor, limit)

    def forget(self, path: Path) -> None:
        """Drop what is kept open for the file at `path`."""
        self._documents.pop(path, None)
        self._parquet.pop(path, None)

    def holding(self) -> int:
        """How many files have something kept open (a parsed document, a Parquet reader)."""
        return len(self._documents) + len(self._parquet)

    def _read_lines(self, path: Path, cursor: Cursor, limit: int) -> Slice:
        rows: list[RawRow] = []
        number = cursor.row
        try:
            with path.open("rb") as file:
                file.seek(cursor.offset)
                while len(rows) < limit and file.tell() - cursor.offset < self._max_slice:
                    line = file.readline(self._max_line + 1)
                    if not line:
                        return Slice(rows, Cursor(file.tell(), number), True)
                    number += 1
                    if len(line) > self._max_line and not line.endswith(b"\n"):
                        rows.append(self._too_long(number, line, file))
                        continue
                    text = line.strip()
                    if text:
                        rows.append(self._line_row(number, text))
                return Slice(rows, Cursor(file.tell(), number), _at_end(file))
        except OSError as error:
            raise FileUnreadable(f"the file cannot be read: {error}") from error

    def _too_long(self, number: int, start: bytes, file: BinaryIO) -> RawRow:
        """The row error of an over-long line (whose `start` was read); skips to its end."""
        while True:
            rest = file.readline(_SKIP_CHUNK)
            if not rest or rest.endswith(b"\n"):
                break
        message = f"the line is longer than {self._max_line} bytes"
        return _unreadable(number, start[:MAX_SENT_CHARS], "lineTooLong", message)

    def _line_row(self, number: int, text: bytes) -> RawRow:
        try:
            value = codec.loads(text)
        except codec.JSONDecodeError as error:
            if "depth limit" in str(error):
                return _unreadable(number, text, "depth", self._too_deep)
            return _unreadable(number, text, "json", f"the line is not valid JSON: {error}")
        if not isinstance(value, dict):
            return _unreadable(number, text, "shape", f"expected a JSON object, got {_kind(value)}")
        if nesting.json_deeper_than(text, self._max_depth):
            return _unreadable(number, text, "depth", self._too_deep)
        return RawRow(number, value, text.decode("utf-8", "replace")[:MAX_SENT_CHARS])

    def _read_document(self, path: Path, cursor: Cursor, limit: int) -> Slice:
        document = self._documents.get(path)
        if document is None:
            document = _load_document(path, self._max_document)
            self._documents[path] = document
        end = min(len(document), cursor.offset + limit)
        rows = [self._document_row(i + 1, document[i]) for i in range(cursor.offset, end)]
        done = end >= len(document)
        if done:
            self._documents.pop(path, None)
        return Slice(rows, Cursor(end, end), done)

    def _document_row(self, number: int, value: Any) -> RawRow:
        if not isinstance(value, dict):
            text = codec.dumps(value).decode()[:MAX_SENT_CHARS]
            message = f"expected a JSON object, got {_kind(value)}"
            return RawRow(number, None, text, ("", "shape", message))
        if nesting.deeper_than(value, self._max_depth):
            return RawRow(number, None, _deep_text(value), ("", "depth", self._too_deep))
        return RawRow(number, value)

    def _read_parquet(self, path: Path, cursor: Cursor, limit: int) -> Slice:
        try:
            state = self._parquet_state(path, cursor.offset, limit)
            while len(state.pending) < limit:
                batch = next(state.batches, None)
                if batch is None:
                    break
                state.pending.extend(_batch_rows(batch, state.position + len(state.pending)))
        except (pa.ArrowException, OSError, ValueError) as error:
            self._parquet.pop(path, None)
            raise FileUnreadable(f"the Parquet file cannot be read: {error}") from error
        rows, state.pending = state.pending[:limit], state.pending[limit:]
        state.position += len(rows)
        done = state.position >= state.reader.metadata.num_rows
        if done:
            self._parquet.pop(path, None)
        return Slice(rows, Cursor(state.position, state.position), done)

    def _parquet_state(self, path: Path, start: int, limit: int) -> _ParquetState:
        """The open reader of `path` positioned at row `start` (reopened when it is not)."""
        state = self._parquet.get(path)
        if state is not None and state.position == start:
            return state
        reader = pq.ParquetFile(path)
        first_group, skip = 0, start
        metadata = reader.metadata
        for group in range(metadata.num_row_groups):
            size = metadata.row_group(group).total_byte_size
            if size > self._max_row_group:
                raise ValueError(
                    f"row group {group} holds {size} bytes uncompressed, more than the "
                    f"{self._max_row_group} read at once: write smaller row groups"
                )
        while first_group < metadata.num_row_groups:
            rows = metadata.row_group(first_group).num_rows
            if skip < rows:
                break
            skip -= rows
            first_group += 1
        groups = list(range(first_group, metadata.num_row_groups))
        batches = reader.iter_batches(batch_size=max(1, min(limit, 65_536)), row_groups=groups)
        state = _ParquetState(reader, batches, start - skip)
        while skip > 0:  # drop the rows of the first group that were read before
            batch = next(batches, None)
            if batch is None:
                break
            taken = min(skip, batch.num_rows)
            state.pending.extend(_batch_rows(batch.slice(taken), start))
            skip -= taken
            state.position += taken
        self._parquet[path] = state
        return state


def _batch_rows(batch: pa.RecordBatch, first: int) -> list[RawRow]:
    """The rows of an Arrow record batch as dicts (maps as dicts); numbers from `first` + 1."""
    try:
        values = _values(batch)
    except _CELL_ERRORS:  # one cell Python cannot hold (a year past 9999, say): find its row
        return [_one_row(batch, i, first + i + 1) for i in range(batch.num_rows)]
    return [RawRow(first + i + 1, value) for i, value in enumerate(values)]


_CELL_ERRORS = (pa.ArrowException, ValueError, OverflowError)


def _one_row(batch: pa.RecordBatch, index: int, number: int) -> RawRow:
    try:
        (value,) = _values(batch.slice(index, 1))
    except _CELL_ERRORS as error:
        return RawRow(number, None, "", ("", "parquet", f"the row cannot be read: {error}"))
    return RawRow(number, value)


def _values(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = _naive_as_utc(batch).to_pylist()
    converters = [
        (field.name, convert)
        for field in batch.schema
        if (convert := _map_converter(field.type)) is not None
    ]
    for value in values:
        for name, convert in converters:
            if value.get(name) is not None:
                value[name] = convert(value[name])
    return values


Convert = Callable[[Any], Any]


def _naive_as_utc(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` with its timestamps without a time zone (nested ones too) marked as UTC."""
    schema = pa.schema([field.with_type(_utc_type(field.type)) for field in batch.schema])
    return batch if schema.equals(batch.schema) else batch.cast(schema)


def _utc_type(kind: pa.DataType) -> pa.DataType:
    """`kind` with every timestamp type without a time zone in it given `UTC`."""
    if pa.types.is_timestamp(kind):
        return kind if kind.tz is not None else pa.timestamp(kind.unit, tz="UTC")
    if pa.types.is_struct(kind):
        return pa.struct([child.with_type(_utc_type(child.type)) for child in kind])
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(_utc_type(kind.value_type)))
    if pa.types.is_large_list(kind):
        return pa.large_list(kind.value_field.with_type(_utc_type(kind.value_type)))
    if pa.types.is_map(kind):
        return pa.map_(kind.key_field, kind.item_field.with_type(_utc_type(kind.item_type)))
    return kind


def _map_converter(kind: pa.DataType) -> Convert | None:
    """What turns a Python value of Arrow type `kind` with maps as `[(key, value)]` into one
    with maps as dicts; None when `kind` holds no map (then the value is left as it is).

    `to_pylist(maps_as_pydicts=...)` does the same but several times slower.
    """
    if pa.types.is_map(kind):
        item = _map_converter(kind.item_type)
        if item is None:
            return lambda pairs: dict(pairs)
        return lambda pairs: {key: None if v is None else item(v) for key, v in pairs}
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        element = _map_converter(kind.value_type)
        if element is None:
            return None
        return lambda items: [None if v is None else element(v) for v in items]
    if pa.types.is_struct(kind):
        fields = [
            (child.name, convert)
            for child in kind
            if (convert := _map_converter(child.type)) is not None
        ]
        if not fields:
            return None

        def struct(value: dict[str, Any]) -> dict[str, Any]:
            for name, convert in fields:
                if value.get(name) is not None:
                    value[name] = convert(value[name])
            return value

        return struct
    return None


def _load_document(path: Path, max_bytes: int) -> list[Any]:
    """The rows of a multi-line JSON file: the items of its array, or its one object."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FileUnreadable(
                f"the multi-line JSON file holds {size} bytes, more than the {max_bytes} parsed "
                "at once (batch_max_document_bytes): send it as JSON lines instead"
            )
        document = codec.loads(path.read_bytes())
    except OSError as error:
        raise FileUnreadable(f"the file cannot be read: {error}") from error
    except codec.JSONDecodeError as error:
        raise FileUnreadable(f"the file is not one JSON document: {error}") from error
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        return [document]
    raise FileUnreadable(
        f"a multi-line JSON file holds one array or one object, not {_kind(document)}"
    )


def _unreadable(number: int, text: bytes, code: str, message: str) -> RawRow:
    sent = text.decode("utf-8", "replace")[:MAX_SENT_CHARS]
    return RawRow(number, None, sent, ("", code, message))


def _deep_text(value: Any) -> str:
    try:
        return codec.dumps(value).decode()[:MAX_SENT_CHARS]
    except TypeError:  # deeper than the codec writes
        return ""


def _at_end(file: BinaryIO) -> bool:
    position = file.tell()
    at_end = not file.read(1)
    file.seek(position)
    return at_end


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
