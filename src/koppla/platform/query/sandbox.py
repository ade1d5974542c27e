"""The sandboxed DuckDB database a query engine runs in: resources capped, files off, locked.

Every setting is applied before `lock_configuration`, in the order DuckDB requires: the temp
directory and the caps first, then empty `allowed_directories` / `allowed_paths`, then external
access off, then the lock. DuckDB always lets queries reach its own temp directory, even with
external access off and `allowed_directories` empty, so that directory is kept from user SQL by
`reach.check_reach`, which refuses every function and table reference that could name a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

_NO_SPILL = re.compile(r"^\s*0+(?:\.0*)?\s*[A-Za-z]*\s*$")

# Settings DuckDB accepts only when the database is created.
_AT_START: dict[str, str | bool | int | float | list[str]] = {
    "python_enable_replacements": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


@dataclass(frozen=True)
class SandboxLimits:
    """What one engine's database may use: memory, threads, and disk to spill to.

    `temp_directory` None or a zero `temp_limit` ("0", "0GB") turns spilling off, so a query
    that outgrows `memory_limit` fails instead of writing to disk.
    """

    memory_limit: str = "1GB"
    threads: int = 2
    temp_directory: Path | None = None
    temp_limit: str = "0"
    readable: tuple[Path, ...] = ()
    """Directories DuckDB itself may read (the datasets' files); user SQL still names none."""

    @property
    def spills(self) -> bool:
        """True when queries may spill to `temp_directory`."""
        return self.temp_directory is not None and not _NO_SPILL.match(self.temp_limit)

    def describe(self) -> str:
        """The limits in words, for error messages: `memory 64MB, spill to disk up to 16MB`."""
        spill = f"spill to disk up to {self.temp_limit}" if self.spills else "no spilling to disk"
        return f"memory {self.memory_limit}, {spill}"


def open_sandbox(limits: SandboxLimits) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB database with `limits` applied and its configuration locked.

    The temp directory is created with mode 0700 when spilling is on.
    """
    db = duckdb.connect(":memory:", config=_AT_START)
    try:
        for name, value in _settings(limits):
            db.execute(f"SET {name} = ?", [value])
    except BaseException:
        db.close()
        raise
    return db


def _settings(limits: SandboxLimits) -> list[tuple[str, str | int | bool | list[str]]]:
    return [
        *_spill_settings(limits),
        ("memory_limit", limits.memory_limit),
        ("threads", limits.threads),
        ("parquet_metadata_cache", True),
        ("allowed_directories", [f"{root.resolve()}/" for root in limits.readable]),
        ("allowed_paths", []),
        ("enable_external_access", False),
        ("lock_configuration", True),
    ]


def _spill_settings(limits: SandboxLimits) -> list[tuple[str, str]]:
    if not limits.spills or limits.temp_directory is None:
        return [("temp_directory", ""), ("max_temp_directory_size", "0B")]
    directory = limits.temp_directory
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    return [("temp_directory", str(directory)), ("max_temp_directory_size", limits.temp_limit)]
