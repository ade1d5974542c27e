"""Telling a live lease holder from a dead one (or from a later process reusing its pid)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from koppla.bus.liveness import holder_alive, process_start


def test_this_process_is_alive_under_its_own_start_time() -> None:
    start = process_start(os.getpid())
    assert start is not None
    assert holder_alive(os.getpid(), start)


def test_a_reused_pid_is_not_the_old_holder() -> None:
    start = process_start(os.getpid())
    assert start is not None
    assert not holder_alive(os.getpid(), start + "0")


def test_a_killed_child_is_dead_even_before_it_is_reaped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = process_start(child.pid)
        assert start is not None
        assert holder_alive(child.pid, start)
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, still a zombie
        assert process_start(child.pid) is None
        assert not holder_alive(child.pid, start)
    finally:
        child.kill()
        child.wait()
