"""Text without a UTF-8 form (a lone surrogate from JSON's `\\ud800`) is refused by name."""

from __future__ import annotations

import pytest

from koppla.core.errors import InvalidInput
from koppla.core.text import check_unicode, is_unicode


def test_a_lone_surrogate_is_named_with_its_field_and_place() -> None:
    sent = "ab\ud800c"  # what a JSON parser such as the API's makes of "ab\\ud800c"
    assert not is_unicode(sent) and is_unicode("caf\u00e9 \U0001f600")
    with pytest.raises(InvalidInput, match="at character 2") as refused:
        check_unicode(sent, "name")
    assert refused.value.field == "name"
    assert check_unicode("fine", "name") == "fine"
