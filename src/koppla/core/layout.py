"""Where each piece of state lives under the data directory (`--home`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Layout:
    """The paths under one Koppla home directory."""

    home: Path

    @property
    def catalog(self) -> Path:
        """The catalog database (datastreams, datasets, batches, tokens)."""
        return self.home / "catalog.sqlite"

    @property
    def schemas(self) -> Path:
        """The schema registry's tenant part: field groups and tenant schemas."""
        return self.home / "schemas.sqlite"

    @property
    def attributes(self) -> Path:
        """The custom order attributes seen in each dataset's records."""
        return self.home / "attributes.sqlite"

    @property
    def spool(self) -> Path:
        """The edge's write-ahead spool."""
        return self.home / "spool"

    @property
    def pipeline_state(self) -> Path:
        """The pipeline's cursors and dedupe indexes."""
        return self.home / "pipeline"

    @property
    def pipeline_health(self) -> Path:
        """The pipeline's heartbeat: last progress and last error (read by health and status)."""
        return self.home / "pipeline" / "health.json"

    @property
    def profiles(self) -> Path:
        """The profile stage's directory: its lock and the embedded profile store."""
        return self.home / "profiles"

    @property
    def profiles_beat(self) -> Path:
        """Touched by the profile stage after every pass: its age says whether it runs."""
        return self.home / "profiles" / "heartbeat"

    @property
    def query_tmp(self) -> Path:
        """Where the query engine may spill; out of reach of user SQL."""
        return self.home / "query-tmp"

    @property
    def datasets(self) -> Path:
        """The datasets' Delta tables, unless `storage_url` puts them elsewhere (see
        `koppla.platform.datasets.location.table_location`)."""
        return self.home / "datasets"

    @property
    def quarantine(self) -> Path:
        """The Delta table of records that failed validation (under the default location)."""
        return self.home / "datasets" / "_quarantine"

    @property
    def batches(self) -> Path:
        """Batch ingestion's files: one directory per batch (uploads, progress, diagnostics)."""
        return self.home / "batches"

    def batch(self, batch_id: str) -> Path:
        """The directory of one ingestion batch."""
        return self.home / "batches" / batch_id

    def dataset(self, dataset_id: str) -> Path:
        """The Delta table of one dataset (under the default location)."""
        return self.home / "datasets" / dataset_id
