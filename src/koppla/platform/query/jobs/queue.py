"""The queue of waiting query jobs, fair between organizations.

A free worker takes the oldest waiting job of the organization with the fewest running jobs;
organizations that tie take turns (the one that started a job least recently goes first). One
organization never runs more than `per_org` jobs at once, so with `per_org` below the number of
workers a worker is always left for the others: an organization's endless queries delay only its
own. Waiting jobs live in memory only: a process that stops marks them FAILED on its next start.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from itertools import count


@dataclass
class _Org:
    waiting: deque[str] = field(default_factory=deque)
    running: int = 0
    last_start: int = -1
    """The turn at which this organization last started a job (-1: never)."""


class FairQueue:
    """Waiting jobs by organization; `take` hands the next one to a worker. Safe to share."""

    def __init__(self, per_org: int) -> None:
        """A queue that lets one organization run at most `per_org` jobs at once."""
        if per_org < 1:
            raise ValueError(f"per_org must be 1 or more, got {per_org}")
        self._per_org = per_org
        self._orgs: dict[str, _Org] = {}
        self._turns = count()
        self._closed = False
        self._changed = threading.Condition()

    def put(self, org_id: str, job_id: str) -> None:
        """Queue `job_id` of `org_id` behind that organization's other waiting jobs."""
        with self._changed:
            self._orgs.setdefault(org_id, _Org()).waiting.append(job_id)
            self._changed.notify()

    def next_job(self) -> tuple[str, str] | None:
        """The organization and id of the job to start now, counted as running; None when
        no waiting job may start (none waits, or every waiting one's organization is full)."""
        with self._changed:
            ready = [
                (org.running, org.last_start, org_id)
                for org_id, org in self._orgs.items()
                if org.waiting and org.running < self._per_org
            ]
            if not ready:
                return None
            org_id = min(ready)[2]
            org = self._orgs[org_id]
            org.running += 1
            org.last_start = next(self._turns)
            return org_id, org.waiting.popleft()

    def take(self) -> tuple[str, str] | None:
        """Wait for a job that may start and return it, counted as running (call `done`
        after it); None once the queue is closed."""
        with self._changed:
            while not self._closed:
                found = self.next_job()
                if found is not None:
                    return found
                self._changed.wait()
            return None

    def done(self, org_id: str) -> None:
        """A job of `org_id` that `take` or `next_job` handed out has ended."""
        with self._changed:
            self._orgs[org_id].running -= 1  # kept when idle: it remembers the org's last turn
            self._changed.notify_all()

    def running(self, org_id: str) -> int:
        """How many jobs of `org_id` are running."""
        with self._changed:
            org = self._orgs.get(org_id)
            return 0 if org is None else org.running

    def close(self) -> None:
        """Stop handing out jobs: every `take` returns None; waiting jobs are dropped."""
        with self._changed:
            self._closed = True
            for org in self._orgs.values():
                org.waiting.clear()
            self._changed.notify_all()
