"""Where the Web SDK bundle (`@adobe/alloy`) comes from: a local file, else Adobe's CDN."""

from __future__ import annotations

from pathlib import Path

ALLOY_VERSION = "2.33.1"
DEFAULT_ALLOY_URL = f"https://cdn1.adobedc.net/alloy/{ALLOY_VERSION}/alloy.min.js"
_DIST = Path("node_modules/@adobe/alloy/dist")
_NAMES = ("alloy.min.js", "alloy.js")


def source_root() -> Path:
    """The repository root when Koppla runs from a source checkout (`src/koppla/...`)."""
    return Path(__file__).resolve().parents[4]


def find_alloy(configured: Path | str | None, roots: tuple[Path, ...]) -> Path | None:
    """The alloy bundle to serve: `configured` if given and present, else the first
    `node_modules/@adobe/alloy/dist/alloy.min.js` (or `alloy.js`) under one of `roots`."""
    if configured:
        path = Path(configured)
        return path if path.is_file() else None
    for root in roots:
        for name in _NAMES:
            path = root / _DIST / name
            if path.is_file():
                return path
    return None
