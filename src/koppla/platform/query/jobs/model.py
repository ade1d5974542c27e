"""The shapes of the asynchronous query service: a query job, its errors, a template, a page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from koppla.platform.query.result import Column

State = Literal["SUBMITTED", "IN_PROGRESS", "SUCCESS", "FAILED", "KILLED", "TIMEOUT"]
"""Adobe's query states: queued, running, and the four ends (KILLED: cancelled)."""

TERMINAL: frozenset[State] = frozenset({"SUCCESS", "FAILED", "KILLED", "TIMEOUT"})
ACTIVE: frozenset[State] = frozenset({"SUBMITTED", "IN_PROGRESS"})

ErrorType = Literal["USER_ERROR", "SYSTEM_ERROR"]

Results = Literal["none", "kept", "expired"]
"""Whether a job's result rows are on disk: not (yet, or never), kept, or expired and deleted."""


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a query did not succeed, as Adobe's `errors[]` items: a code, text, whose fault."""

    code: str
    message: str
    error_type: ErrorType = "USER_ERROR"

    def to_json(self) -> dict[str, str]:
        """Adobe's error object."""
        return {"code": self.code, "message": self.message, "errorType": self.error_type}


@dataclass(frozen=True, slots=True)
class Submission:
    """What a caller asks to run: the SQL as sent and as it will run (parameters in), and who."""

    org_id: str
    sandbox: str
    user_id: str
    sql: str
    effective_sql: str
    client: str = "API"
    client_id: str = ""
    name: str = ""
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    template_id: str = ""
    template_name: str = ""


@dataclass(frozen=True, slots=True)
class QueryJob:
    """One submitted query: what was asked, where it is, and how it ended."""

    id: str
    request: Submission
    state: State
    created_ms: int
    updated_ms: int
    started_ms: int | None = None
    ended_ms: int | None = None
    row_count: int = 0
    truncated: bool = False
    columns: tuple[Column, ...] = ()
    errors: tuple[JobError, ...] = ()
    results: Results = "none"
    deleted: bool = False

    def elapsed_ms(self, now_ms: int) -> int:
        """Adobe's `elapsedTime`: milliseconds since IN_PROGRESS began (till the end, if any)."""
        if self.started_ms is None:
            return 0
        return max(0, (self.ended_ms if self.ended_ms is not None else now_ms) - self.started_ms)


@dataclass(frozen=True, slots=True)
class Template:
    """A named, shared query of an organization's sandbox, with default parameter values."""

    id: str
    org_id: str
    sandbox: str
    name: str
    sql: str
    params: dict[str, Any]
    user_id: str
    last_updated_by: str
    created_ms: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class ResultPage:
    """A slice of a finished query's rows, as JSON values, and where it sits in the whole."""

    columns: tuple[Column, ...]
    rows: list[list[Any]]
    start: int
    limit: int
    row_count: int
    truncated: bool
