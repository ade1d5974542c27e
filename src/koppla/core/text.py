"""Text as people send it: JSON may carry what no file or database can store."""

from __future__ import annotations

from koppla.core.errors import InvalidInput


def is_unicode(text: str) -> bool:
    """True when `text` has a UTF-8 form (no lone UTF-16 surrogate, as JSON's `\\ud800` makes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_unicode(text: str, field: str) -> str:
    """`text` when it has a UTF-8 form, else `InvalidInput` naming `field` and where it breaks."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidInput(
            f"{field} is not valid text: a lone UTF-16 surrogate at character {error.start}",
            field=field,
        ) from None
    return text
