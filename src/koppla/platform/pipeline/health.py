"""The pipeline's heartbeat file: what health checks and `koppla status` know of the pipeline.

The pipeline process writes it (atomically, about once a second and on every error); the HTTP
server reads it. A heartbeat that is old means the pipeline is not running; a backlog whose
progress time is old means it is stuck.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import msgspec

from koppla.core import codec


@dataclass(frozen=True, slots=True)
class PipelineHealth:
    """One heartbeat of the pipeline process. Times are epoch milliseconds."""

    pid: int
    started_ms: int
    heartbeat_ms: int
    progress_ms: int
    """Last time the pipeline stored something or found nothing waiting."""
    last_error: str | None = None
    last_error_ms: int | None = None
    restarts: int = 0


def write(path: Path, health: PipelineHealth) -> None:
    """Replace the heartbeat file with `health` (write to a temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(codec.dumps(asdict(health)))
    os.replace(temporary, path)


def read(path: Path) -> PipelineHealth | None:
    """The last heartbeat written, or None when there is none (or it cannot be read)."""
    try:
        return msgspec.convert(codec.loads(path.read_bytes()), PipelineHealth)
    except (OSError, ValueError, msgspec.ValidationError):
        return None
