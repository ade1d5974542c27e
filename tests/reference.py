"""Where the shared reference material (XDM schemas, client captures) lives, for tests."""

from __future__ import annotations

from pathlib import Path

from tests.require import unavailable

REFERENCE_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"


def reference_dir() -> Path:
    """The reference directory (`<repo>/../shared/reference`).

    Skips the calling test when it is absent, except under `CI=true`, where it fails instead:
    CI must never pass by silently skipping the conformance tests.
    """
    if not REFERENCE_DIR.is_dir():
        unavailable(f"reference material not found at {REFERENCE_DIR.resolve()}")
    return REFERENCE_DIR
