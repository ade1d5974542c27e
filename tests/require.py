"""One rule for tests that need something this machine may lack: skip locally, fail under CI.

A test that needs a service (MariaDB), a tool (Chromium, `npm ci`'s bundle) or the shared
reference material calls `unavailable(reason)` when it is missing. On a developer's machine the
test is skipped with that reason; under `CI=true` it fails, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    """True when the environment says this run is CI (`CI=true`, any case)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Stop the calling test because `reason`: skip it locally, fail it under `CI=true`."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: it must be available)")
    pytest.skip(reason)


def require(missing: str | None) -> None:
    """Stop the calling test as `unavailable(missing)` when `missing` names a reason.

    Pairs with checks that return why something cannot run, or None when it can.
    """
    if missing is not None:
        unavailable(missing)
