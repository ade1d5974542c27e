"""The profile runner: follows every profile-enabled dataset and feeds the profile stage.

One pass (`step`) reads, for each dataset enabled for Profile, what its Delta table gained since
the stage's cursor (`tail.read_since`), turns the rows into observations and applies them with
the cursor they reach. A dataset newly enabled (no cursor yet), or one whose old commits were
cleaned away, is read whole first (`tail.read_all`). Records come from datasets of the
Individual Profile class, events from the others.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from koppla.core.layout import Layout
from koppla.platform.catalog.access import DEFAULT_SANDBOX
from koppla.platform.catalog.models import Dataset
from koppla.platform.catalog.store import Catalog
from koppla.platform.datasets.location import TableLocation
from koppla.platform.profiles.graph import Limits
from koppla.platform.profiles.merge import MergePolicy
from koppla.platform.profiles.observation import Kind, Observation, observe
from koppla.platform.profiles.policies import PolicyBook
from koppla.platform.profiles.rows import document
from koppla.platform.profiles.stage import ProfileStage
from koppla.platform.profiles.store import ProfileStore
from koppla.platform.profiles.tail import LogGone, Rows, read_all, read_since
from koppla.xdm.profile import PROFILE_SCHEMA_ID
from koppla.xdm.registry import SchemaRegistry

log = logging.getLogger(__name__)

POLICY_CURSOR = "merge-policy"
"""The store cursor that remembers which default merge policy the kept profiles were merged by."""


@dataclass(frozen=True, slots=True)
class StepReport:
    """What one pass did: rows read, observations applied, and whether more is waiting."""

    rows: int
    observations: int
    more: bool


class ProfileRunner:
    """Keeps the profile store current with the profile-enabled datasets of one home."""

    def __init__(
        self,
        layout: Layout,
        catalog: Catalog,
        registry: SchemaRegistry,
        store: ProfileStore,
        *,
        limits: Limits | None = None,
        events_kept: int = 100,
        max_rows: int = 20_000,
        location: TableLocation | None = None,
    ) -> None:
        """Follow the datasets of `catalog` whose tables are at `location` (by default under
        `layout`'s home: `TableLocation.local(layout.datasets)`)."""
        self._tables = location or TableLocation.local(layout.datasets)
        self._catalog = catalog
        self._registry = registry
        self._store = store
        self._max_rows = max_rows
        self.policies = PolicyBook(store)
        self.skipped = 0
        """Observations the stage could not apply (each logged with its id), since start."""
        self.stage = ProfileStage(
            store, limits=limits, events_kept=events_kept, policy=self.policies.default
        )

    def run(
        self,
        stop: threading.Event,
        poll_ms: int = 100,
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        """Step until `stop` is set; idle passes wait `poll_ms`."""
        while not stop.is_set():
            report = self.step()
            if on_progress is not None:
                on_progress()
            if not report.more:
                stop.wait(poll_ms / 1000)

    def step(self) -> StepReport:
        """One pass over every profile-enabled dataset of the home's organization (after a
        default-policy change, first the profiles kept for SQL are merged again under the new
        default)."""
        cursors = self._store.cursors()
        self._follow_policy(cursors)
        rows = observations = 0
        more = False
        # The store holds the profiles of the home's organization: other organizations'
        # datasets never feed it (their identities would merge into its customers').
        owned = self._catalog.datasets(self._catalog.default_org(), DEFAULT_SANDBOX)
        for dataset in owned:
            if not dataset.profile_enabled:
                continue
            table, options = self._tables.table(dataset.id), self._tables.storage_options()
            after = cursors.get(dataset.id, -1)
            try:
                if after < 0:
                    raise LogGone("no cursor yet")
                batch = read_since(table, after, storage_options=options, max_rows=self._max_rows)
                batches: Iterator[Rows] = iter([batch] if batch.cursor != after else [])
            except LogGone as reason:
                log.info("profiles: reading dataset %s whole (%s)", dataset.name, reason)
                batches = read_all(table, storage_options=options)
            for batch in batches:
                found = self._apply(dataset, batch)
                rows += len(batch.rows)
                observations += found
                more = more or batch.more
        return StepReport(rows, observations, more)

    def _follow_policy(self, cursors: dict[str, int]) -> None:
        """Merge every profile again when the default merge policy is not the one they used."""
        marker = _policy_marker(self.policies.default())
        if cursors.get(POLICY_CURSOR) == marker:
            return
        if cursors:  # profiles exist that were merged under another policy
            count = self.stage.remerge_all()
            log.info("profiles: %d profiles merged again under the new default policy", count)
        self.stage.apply([], {POLICY_CURSOR: marker})

    def _apply(self, dataset: Dataset, batch: Rows) -> int:
        kind: Kind = "record" if _is_profile(self._registry, dataset) else "event"
        found: list[Observation] = []
        for row, stamp in batch.rows:
            try:
                obs = observe(dataset.id, kind, document(row), stamp)
            except Exception:  # one stored row must never stop profiles
                log.exception("profiles: a row of dataset %s could not be read", dataset.name)
                continue
            if obs is not None:
                found.append(obs)
        cursors = {} if batch.cursor is None else {dataset.id: batch.cursor}
        try:
            self.stage.apply(found, cursors)
        except Exception:  # one observation must never stop profiles: find it, go on
            self.stage.apply([], {})  # raises when the store itself fails: nothing is skipped
            log.exception("profiles: a chunk of %s failed; isolating what failed", dataset.name)
            self._bisect(found)
            self.stage.apply([], cursors)
        return len(found)

    def _bisect(self, part: list[Observation]) -> None:
        """Apply `part` in halves until what fails is one observation, which is skipped (logged).

        Each apply is one transaction, so a failed half leaves nothing behind; a skip happens
        only after an empty write proves the store itself still works.
        """
        if not part:
            return
        try:
            self.stage.apply(part, {})
            return
        except Exception as error:  # something in this part is at fault
            failure = error
        if len(part) > 1:
            middle = len(part) // 2
            self._bisect(part[:middle])
            self._bisect(part[middle:])
            return
        self.stage.apply([], {})
        (obs,) = part
        self.skipped += 1
        log.error(
            "profiles: skipped %s %s of dataset %s",
            obs.kind,
            obs.record_id,
            obs.dataset_id,
            exc_info=failure,
        )


def _policy_marker(policy: MergePolicy) -> int:
    """A number that changes whenever the default policy or its settings change."""
    digest = hashlib.sha256(f"{policy.id}:{policy.version}:{policy.updated_ms}".encode())
    return int(digest.hexdigest()[:15], 16)


def _is_profile(registry: SchemaRegistry, dataset: Dataset) -> bool:
    if dataset.schema_id == PROFILE_SCHEMA_ID:
        return True
    try:
        return registry.get(dataset.schema_id).xdm_class.endswith("/context/profile")
    except Exception:  # an unknown schema: treat its rows as events
        return False
