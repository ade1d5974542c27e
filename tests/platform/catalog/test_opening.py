"""Opening the catalog where the settings keep it: the home's file, or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from koppla.core.settings import Settings
from koppla.platform.catalog.opening import open_catalog

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


def test_the_catalog_url_decides_where_the_catalog_lives(tmp_path: Path, catalog_url: str) -> None:
    catalog = open_catalog(Settings(home=tmp_path / "home", catalog_url=catalog_url))
    try:
        catalog.create_dataset("events", schema_id="s", org_id=ORG)
        on_file = (tmp_path / "home" / "catalog.sqlite").exists()
        assert (catalog.dialect, on_file) == (
            ("postgresql", False) if catalog_url else ("sqlite", True)
        )
    finally:
        catalog.close()
    again = open_catalog(Settings(home=tmp_path / "home", catalog_url=catalog_url))
    try:
        assert [d.name for d in again.datasets(ORG)] == ["events"]
    finally:
        again.close()
