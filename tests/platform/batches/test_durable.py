"""Durable writes: a file is replaced whole, and the folder naming it is synced after."""

from __future__ import annotations

from pathlib import Path

import pytest

from koppla.platform.batches import durable


def test_a_durable_write_replaces_the_file_and_syncs_every_folder_it_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    real = durable.fsync_directory

    def recorded(path: Path) -> None:
        synced.append(path)
        real(path)

    monkeypatch.setattr(durable, "fsync_directory", recorded)
    target = tmp_path / "batch" / "parts" / "part-000000.parquet"
    durable.write_durably(target, b"first")
    assert synced == [tmp_path, tmp_path / "batch", tmp_path / "batch" / "parts"]
    synced.clear()
    durable.write_durably(target, b"second")
    assert target.read_bytes() == b"second"
    assert synced == [target.parent]  # the rename is made durable each time
    assert sorted(p.name for p in target.parent.iterdir()) == ["part-000000.parquet"]
