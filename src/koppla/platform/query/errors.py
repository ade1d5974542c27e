"""Errors the query service raises; each says what went wrong in words a query author can act on."""

from __future__ import annotations

from koppla.core.errors import InvalidInput, TerminalError, TransientError


class QueryRefused(InvalidInput):
    """The SQL was refused before it ran: not one read-only SELECT, or it reaches past datasets."""


class QueryFailed(InvalidInput):
    """DuckDB rejected or failed the query; the message carries DuckDB's own text."""


class QueryTimeout(TerminalError):
    """The query ran past the engine's time limit and was interrupted; retrying will not help."""


class QueryBusy(TransientError):
    """Every query slot stayed taken for the whole wait; the same query may run a moment later."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
