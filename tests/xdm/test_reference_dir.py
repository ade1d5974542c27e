"""The reference-material helper: skip locally when absent, fail under CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import reference


def test_present_directory_is_returned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(reference, "REFERENCE_DIR", tmp_path)
    assert reference.reference_dir() == tmp_path


def test_absent_directory_skips_locally(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(reference, "REFERENCE_DIR", tmp_path / "missing")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="reference material not found"):
        reference.reference_dir()


def test_absent_directory_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(reference, "REFERENCE_DIR", tmp_path / "missing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        reference.reference_dir()
