"""Is the process holding a lease still alive? A pid, told apart from a later process reusing it.

A lease records its holder's pid and that process's start time (from `/proc/<pid>/stat` on
Linux). The holder is alive while a process with that pid exists, is not a zombie, and started
at that time; so a killed consumer's leases are known free at once, even if its pid was reused.
Without `/proc` the start time is empty and only the pid is checked.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")


def process_start(pid: int) -> str | None:
    """The start time of process `pid` as the kernel reports it ("" when the platform has no
    `/proc`), or None when no live process has that pid (gone, or a zombie awaiting its parent)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return None if _PROC.is_dir() else _pid_only(pid)
    except OSError:
        return _pid_only(pid)
    # Field 2 (the command) is in parentheses and may hold spaces: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start = fields[0], fields[19]
    return None if state in {"Z", "X", "x"} else start


def holder_alive(pid: int, start: str) -> bool:
    """True while the process that was `pid` with start time `start` is still running."""
    found = process_start(pid)
    return found is not None and (found == start or "" in {found, start})


def _pid_only(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""
