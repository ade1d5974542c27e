"""Errors that carry their retry semantics: one predicate decides retry or give up."""

from __future__ import annotations


class KopplaError(Exception):
    """Base of Koppla's own errors."""


class TransientError(KopplaError):
    """Worth retrying: the same call may succeed later (a service down, a lock, a timeout)."""


class TerminalError(KopplaError):
    """Not worth retrying: the input or the configuration is wrong and must change first."""


class NotFound(TerminalError):
    """A named thing (datastream, dataset, batch) does not exist."""


class Conflict(TerminalError):
    """The request clashes with what exists (a duplicate name, a rule between settings)."""


class InvalidInput(TerminalError):
    """Input that breaks a documented rule; the message names the field and the reason."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def is_retryable(error: BaseException) -> bool:
    """True when retrying the call that raised `error` may succeed."""
    if isinstance(error, TerminalError):
        return False
    return isinstance(error, TransientError | ConnectionError | TimeoutError | OSError)
