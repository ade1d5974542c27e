"""The life of a child process: stop on SIGTERM/SIGINT, or when the parent process is gone."""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger(__name__)


def child_stop_event(parent_pid: int, name: str) -> threading.Event:
    """An event set on SIGTERM or SIGINT, or once `parent_pid` is no longer this one's parent.

    Call from the child's main thread (signal handlers can only be set there).
    """
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_parent() -> None:
        while not stop.wait(0.5):
            if os.getppid() != parent_pid:
                log.warning("%s: the parent process is gone; stopping", name)
                stop.set()

    threading.Thread(target=watch_parent, name=f"{name}-parent-watch", daemon=True).start()
    return stop
