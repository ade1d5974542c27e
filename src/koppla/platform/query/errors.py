"""Errors the query service raises; each says what went wrong in words a query author can act on."""

from __future__ import annotations

from koppla.core.errors import InvalidInput, TerminalError


class QueryRefused(InvalidInput):
    """The SQL was refused before it ran: not one read-only SELECT, or not parseable."""


class QueryFailed(InvalidInput):
    """DuckDB rejected or failed the query; the message carries DuckDB's own text."""


class QueryTimeout(TerminalError):
    """The query ran past the engine's time limit and was interrupted."""
