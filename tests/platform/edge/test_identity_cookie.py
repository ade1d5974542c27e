"""The identity cookie is the protobuf the Web SDK decodes (field 1 = the ECID)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from koppla.core import ids
from koppla.platform.edge import identity_cookie

CAPTURED = "CiYxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3OFIRCKSk"


def test_the_captured_adobe_cookie_decodes() -> None:
    assert identity_cookie.decode(CAPTURED) == "12345678901234567890123456789012345678"


@given(st.integers(min_value=0, max_value=10**38 - 1))
def test_encode_decode_round_trip(number: int) -> None:
    ecid = f"{number:038d}"
    assert identity_cookie.decode(identity_cookie.encode(ecid)) == ecid


@given(st.text(max_size=60))
def test_garbage_never_raises(value: str) -> None:
    result = identity_cookie.decode(value)
    assert result is None or isinstance(result, str)


def test_minted_ecids_are_38_digits_and_distinct() -> None:
    minted = {ids.new_ecid() for _ in range(100)}
    assert len(minted) == 100
    assert all(ids.is_ecid(e) for e in minted)
    assert identity_cookie.cookie_name("ABC@AdobeOrg") == "kndctr_ABC_AdobeOrg_identity"
