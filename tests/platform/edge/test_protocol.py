"""Edge responses: the fast template answer equals the plain one."""

from __future__ import annotations

from koppla.core import codec
from koppla.platform.edge import protocol


def test_the_templated_identity_response_equals_the_built_one() -> None:
    org, ecid, hint = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg", "1" * 38, "local"
    fast = protocol.identity_response("req-1", org, ecid, hint)
    plain = protocol.response_body("req-1", protocol.identity_handles(org, ecid, hint))
    assert codec.loads(fast) == codec.loads(plain)


def test_a_request_id_needing_escapes_falls_back_to_the_built_response() -> None:
    org, ecid = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg", "2" * 38
    odd = 'quote"and\\slash'
    assert codec.loads(protocol.identity_response(odd, org, ecid, "x"))["requestId"] == odd
