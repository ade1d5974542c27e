"""Statements a session answers itself: SET, SHOW, RESET, transactions, DISCARD, DEALLOCATE.

Clients send these around their queries (psycopg's `BEGIN`, JDBC's `SET extra_float_digits`,
SQLAlchemy's `SHOW standard_conforming_strings`). Only harmless client parameters may be set,
and only to values that change nothing on the server (UTF8, UTC, ISO dates); any other setting
is refused with 42501, as the query engine refuses settings. `split_statements` finds how many
statements a query text holds, quotes and comments understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from koppla.platform.query.pgwire.catalog import SERVER_VERSION


class CommandRefused(Exception):
    """A session statement that may not run; carries a SQLSTATE."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class SessionState:
    """A connection's client parameters and transaction state."""

    parameters: dict[str, str]
    transaction: Literal["I", "T", "E"] = "I"
    statement_timeout_ms: int = 0
    dropped_statements: list[str] = field(default_factory=list)

    @classmethod
    def initial(cls, user: str, application_name: str) -> SessionState:
        """The parameters a new session starts with."""
        return cls(
            {
                "server_version": SERVER_VERSION,
                "server_version_num": "150000",
                "server_encoding": "UTF8",
                "client_encoding": "UTF8",
                "DateStyle": "ISO, MDY",
                "IntervalStyle": "postgres",
                "TimeZone": "UTC",
                "integer_datetimes": "on",
                "standard_conforming_strings": "on",
                "is_superuser": "off",
                "session_authorization": user,
                "application_name": application_name[:63],
                "default_transaction_read_only": "on",
                "transaction_read_only": "on",
                "in_hot_standby": "off",
                "transaction_isolation": "read committed",
                "default_transaction_isolation": "read committed",
                "search_path": '"$user", public',
                "extra_float_digits": "1",
                "statement_timeout": "0",
                "max_identifier_length": "63",
                "lc_collate": "C",
                "lc_ctype": "C",
                "lc_messages": "C",
            }
        )


REPORTED = (
    "server_version",
    "server_encoding",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "integer_datetimes",
    "standard_conforming_strings",
    "is_superuser",
    "session_authorization",
    "application_name",
    "default_transaction_read_only",
    "in_hot_standby",
)
"""Parameters sent as ParameterStatus at startup (and again when SET changes one)."""


@dataclass(frozen=True)
class CommandResult:
    """What a session statement answers: rows (text) when it is a SHOW, and its tag."""

    tag: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str | None, ...], ...] = ()
    changed: tuple[str, ...] = ()


_WORD = re.compile(r"^\s*([A-Za-z_]+)")
_SET = re.compile(
    r"^\s*SET\s+(?:SESSION\s+|LOCAL\s+)?(?P<name>TIME\s+ZONE|[A-Za-z_][\w.]*)\s*(?:=|\s+TO\s+|\s)"
    r"\s*(?P<value>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_TRANSACTION_SET = re.compile(
    r"^\s*SET\s+(?:SESSION\s+CHARACTERISTICS\s+AS\s+)?TRANSACTION\b", re.IGNORECASE
)
_SIMPLE_VALUE = re.compile(
    r"^(?:'(?:[^']|'')*'|[\w.+\-$\"]+)(?:\s*,\s*(?:'(?:[^']|'')*'|[\w.+\-$\"]+))*$"
)
_TIMEOUT = re.compile(r"^(\d+)\s*(ms|s|min|h)?$", re.IGNORECASE)
_UNITS_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}

_UTC = {"utc", "etc/utc", "gmt", "etc/gmt", "z", "zulu", "+00", "+00:00", "0", "universal"}
_SETTABLE = {
    "application_name",
    "datestyle",
    "extra_float_digits",
    "client_encoding",
    "timezone",
    "time zone",
    "statement_timeout",
    "search_path",
    "intervalstyle",
    "client_min_messages",
    "bytea_output",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "default_transaction_isolation",
}
_CANONICAL = {name.lower(): name for name in SessionState.initial("", "").parameters}
_CANONICAL["time zone"] = "TimeZone"

_NOOP_TAGS = {
    "BEGIN": "BEGIN",
    "START": "START TRANSACTION",
    "COMMIT": "COMMIT",
    "END": "COMMIT",
    "ROLLBACK": "ROLLBACK",
    "ABORT": "ROLLBACK",
}
SESSION_WORDS = frozenset(
    {"SET", "SHOW", "RESET", "DISCARD", "DEALLOCATE", "SAVEPOINT", "RELEASE", *_NOOP_TAGS}
)
_ROLLBACK_TO = re.compile(r"^(?:ROLLBACK|ABORT)\s+(?:WORK\s+|TRANSACTION\s+)?TO\b", re.I)


def leading_word(sql: str) -> str:
    """The statement's first keyword, upper-cased (comments skipped); '' when none."""
    match = _WORD.match(_strip_comments(sql))
    return match.group(1).upper() if match else ""


def is_session_command(sql: str) -> bool:
    """True when the session answers `sql` itself (SET, SHOW, BEGIN...)."""
    return leading_word(sql) in SESSION_WORDS


def run_command(sql: str, state: SessionState) -> CommandResult:
    """Answer one session statement, updating `state`; `CommandRefused` when not allowed."""
    text = _strip_comments(sql).strip().rstrip(";").strip()
    word = leading_word(text)
    if word in ("SAVEPOINT", "RELEASE"):
        return CommandResult(word)
    if _ROLLBACK_TO.match(text):
        if state.transaction == "E":
            state.transaction = "T"
        return CommandResult("ROLLBACK")
    if word in _NOOP_TAGS:
        return _transaction(word, text, state)
    if word == "SET":
        return _set(text, state)
    if word == "SHOW":
        return _show(text, state)
    if word == "RESET":
        return CommandResult("RESET")
    if word == "DISCARD":
        state.transaction = "I"
        return CommandResult("DISCARD ALL")
    if word == "DEALLOCATE":
        name = re.sub(r"^DEALLOCATE\s+(PREPARE\s+)?", "", text, flags=re.IGNORECASE).strip()
        state.dropped_statements.append(name.strip('"'))
        return CommandResult("DEALLOCATE ALL" if name.upper() == "ALL" else "DEALLOCATE")
    raise CommandRefused("0A000", f"{word} is not supported")


def _transaction(word: str, text: str, state: SessionState) -> CommandResult:
    tag = _NOOP_TAGS[word]
    if word in ("BEGIN", "START"):
        state.transaction = "T"
    else:
        if state.transaction == "E" and tag == "COMMIT":
            tag = "ROLLBACK"
        state.transaction = "I"
    return CommandResult(tag)


def _set(text: str, state: SessionState) -> CommandResult:
    if _TRANSACTION_SET.match(text):
        return CommandResult("SET")
    match = _SET.match(text)
    if match is None:
        raise CommandRefused("42601", f"cannot read the SET statement: {text[:200]}")
    name = re.sub(r"\s+", " ", match.group("name")).lower()
    raw = match.group("value").strip()
    if name not in _SETTABLE:
        raise CommandRefused(
            "42501", f"SET {name} is not allowed: settings are fixed by the server"
        )
    if len(raw) > 200 or not _SIMPLE_VALUE.match(raw):
        raise CommandRefused("22023", f"invalid value for parameter {name}: {raw[:200]}")
    value = raw if name == "search_path" else _unquoted(raw)
    _check_value(name, value)
    canonical = _CANONICAL.get(name, name)
    if name == "statement_timeout":
        state.statement_timeout_ms = _timeout_ms(value)
    if name in ("timezone", "time zone"):
        value = "UTC"
    if name == "client_encoding":
        value = "UTF8"
    state.parameters[canonical] = value
    return CommandResult("SET", changed=(canonical,) if canonical in REPORTED else ())


def _check_value(name: str, value: str) -> None:
    lowered = value.strip().lower()
    fixed = {
        "client_encoding": ({"utf8", "utf-8", "unicode"}, "UTF8"),
        "timezone": (_UTC, "UTC"),
        "time zone": (_UTC | {"local", "default"}, "UTC"),
    }
    if name in fixed and lowered not in fixed[name][0]:
        raise CommandRefused(
            "42501", f"{name} is fixed at {fixed[name][1]} by the server; got {value!r}"
        )
    if name == "datestyle" and "iso" not in lowered:
        raise CommandRefused("42501", f"DateStyle is fixed at ISO by the server; got {value!r}")
    if name == "statement_timeout":
        _timeout_ms(value)


def _timeout_ms(value: str) -> int:
    match = _TIMEOUT.match(value.strip())
    if match is None:
        raise CommandRefused("22023", f"invalid value for statement_timeout: {value!r}")
    return int(match.group(1)) * _UNITS_MS[(match.group(2) or "ms").lower()]


def _show(text: str, state: SessionState) -> CommandResult:
    name = re.sub(r"^SHOW\s+", "", text, flags=re.IGNORECASE).strip().strip('"')
    lowered = re.sub(r"\s+", " ", name).lower()
    if lowered == "all":
        rows = tuple((k, v, "") for k, v in sorted(state.parameters.items()))
        return CommandResult("SHOW", ("name", "setting", "description"), rows)
    if lowered == "transaction isolation level":
        lowered = "transaction_isolation"
    canonical = _CANONICAL.get(lowered)
    if canonical is None or canonical not in state.parameters:
        raise CommandRefused("42704", f'unrecognized configuration parameter "{name[:100]}"')
    return CommandResult("SHOW", (lowered,), ((state.parameters[canonical],),))


def _unquoted(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    return value.strip('"')


def _strip_comments(sql: str) -> str:
    return re.sub(r"^(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*", "", sql, flags=re.DOTALL)


_SPECIAL = re.compile(r"['\";$]|--|/\*")
_DOLLAR_TAG = re.compile(r"\$(\w*)\$")


def split_statements(sql: str) -> list[str]:
    """The non-empty statements in `sql`, split at semicolons outside quotes and comments
    (in time linear in the text's length)."""
    statements: list[str] = []
    start = index = 0
    length = len(sql)
    while (special := _SPECIAL.search(sql, index)) is not None:
        index = special.start()
        char = special.group()
        if char in ("'", '"'):
            end = sql.find(char, index + 1)
            while end != -1 and end + 1 < length and sql[end + 1] == char:
                end = sql.find(char, end + 2)
            index = length if end == -1 else end + 1
        elif char == "--":
            end = sql.find("\n", index)
            index = length if end == -1 else end + 1
        elif char == "/*":
            end = sql.find("*/", index + 2)
            index = length if end == -1 else end + 2
        elif char == "$" and (tag := _DOLLAR_TAG.match(sql, index)):
            end = sql.find(tag.group(0), tag.end())
            index = length if end == -1 else end + len(tag.group(0))
        elif char == ";":
            statements.append(sql[start:index])
            index += 1
            start = index
        else:
            index += 1
    statements.append(sql[start:])
    return [s for s in statements if _strip_comments(s).strip()]
