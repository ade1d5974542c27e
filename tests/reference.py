"""Where the shared reference material (XDM schemas, client captures) lives, for tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REFERENCE_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"


def reference_dir() -> Path:
    """The reference directory (`<repo>/../shared/reference`).

    Skips the calling test when it is absent, except under `CI=true`, where it fails instead:
    CI must never pass by silently skipping the conformance tests.
    """
    if REFERENCE_DIR.is_dir():
        return REFERENCE_DIR
    reason = f"reference material not found at {REFERENCE_DIR.resolve()}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: it must be present)")
    pytest.skip(reason)
