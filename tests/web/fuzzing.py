"""The two fuzzers, shared by `test_fuzz.py` (bounded, for CI) and `bench/fuzz.py` (longer).

`contract_fuzz` runs schemathesis against a server's `/openapi.json`, every phase and check.
`edge_fuzz` POSTs hostile bodies (see `hostile_bodies`) to the edge of a real server.
Both count what they sent per target and every 5xx they got back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from koppla.core import codec, ids
from tests.reference import reference_dir

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SOME_JSON = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
HUGE = 300_000


@dataclass
class FuzzReport:
    """What one fuzzer sent to one target and what came back."""

    target: str
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """Requests tried."""
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        """Responses with a 5xx status."""
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def line(self) -> str:
        """One line for people: requests, 5xx, statuses, failures."""
        statuses = " ".join(f"{s}:{n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.target}: {self.requests} requests tried, 5xx = {self.server_errors}, "
            f"contract failures = {len(self.failures)} ({statuses})"
        )


# --- schemathesis against /openapi.json -------------------------------------------------------

CONTRACT_EXCEPTIONS = [
    # Whether SQL is accepted depends on the SQL, not on its schema (any string is "valid").
    {"include-path": "/api/v1/query", "checks": {"positive_data_acceptance": {"enabled": False}}},
    # A datastream names a dataset that must exist; a random name is refused with 400.
    {
        "include-path": "/api/v1/datastreams",
        "include-method": "POST",
        "checks": {"positive_data_acceptance": {"enabled": False}},
    },
    # AEP's profile and identity lookups take their parameters as text and check them in the
    # route, answering AEP-style 400s that name the parameter (which parameters go together,
    # and whether an id can identify anyone, is not expressible in the OpenAPI schema).
    {
        "include-path-regex": "^(/data/core/|/api/v1/profiles/)",
        "checks": {"positive_data_acceptance": {"enabled": False}},
    },
    # The Data Connection settings and service account follow the admin's cross-field rules
    # (a dataset id required unless both event kinds are off, one organization per instance,
    # a workspace file of Adobe's shape...), which a schema cannot express; each refusal is a
    # 400 naming the field (tests/web/test_connector_settings.py checks every rule).
    {
        "include-path-regex": "^/api/v1/connector/(settings|service-account)",
        "checks": {"positive_data_acceptance": {"enabled": False}},
    },
    # The Query Service takes SQL, Adobe's `property` filter grammar (`state==SUCCESS`) and
    # timestamps as `start` keys: whether they are accepted depends on the text, answered by
    # 400s naming the parameter (tests/web/test_query_service.py checks them).
    {
        "include-path-regex": "^/data/foundation/query/",
        "checks": {"positive_data_acceptance": {"enabled": False}},
    },
    # The debugger streams until the client goes away; schemathesis would wait forever.
    {"include-path-regex": "/debug$", "enabled": False},
]


REJECTED = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]


def contract_fuzz(
    url: str, token: str, config_id: str, *, examples: int, seconds: float | None = None
) -> list[FuzzReport]:
    """Run schemathesis (all phases, all checks) against `url`; one report per operation."""
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import events, from_schema

    config: dict[str, Any] = {
        "workers": 1,
        "request-timeout": 10,
        "generation": {"max-examples": examples, "database": "none"},
        # 413 (too large, too many events) refuses a body as firmly as 400 does.
        "checks": {"enabled": True, "negative_data_rejection": {"expected-statuses": REJECTED}},
        "auth": {"openapi": {"bearer": {"bearer": token}}},
        "parameters": {
            "query.configId": config_id,
            "path.connection_id": config_id,
            "path.datastream_id": config_id,
        },
        "operations": CONTRACT_EXCEPTIONS,
        "suppress-health-check": ["all"],
    }
    if seconds is not None:
        config["max-time"] = max(1, round(seconds))
    schema = schemathesis.openapi.from_url(
        f"{url}/openapi.json", config=SchemathesisConfig.from_dict(config)
    )
    reports: dict[str, FuzzReport] = {}
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            report = reports.setdefault(event.recorder.label, FuzzReport(event.recorder.label))
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    report.statuses[interaction.response.status_code] += 1
            for checks in event.recorder.checks.values():
                report.failures += [
                    _failure(check.failure_info.failure, check.failure_info.code_sample)
                    for check in checks
                    if check.failure_info is not None
                ]
        elif isinstance(event, events.NonFatalError):
            reports.setdefault(event.label, FuzzReport(event.label)).failures.append(
                f"error: {event.info.title}: {event.info.message}"
            )
        elif isinstance(event, events.FatalError):
            raise event.exception
    for report in reports.values():
        report.failures = sorted(set(report.failures))
    return sorted(reports.values(), key=lambda r: r.target)


def _failure(failure: Any, reproduce: str) -> str:
    return f"{failure.code} {failure.title}: {failure.message}\n    {reproduce}"


# --- hostile bodies to the edge ----------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (keys and indexes), the root first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


_HOLE = "@@wrong-type@@"

WRONG_TYPES: st.SearchStrategy[bytes] = st.one_of(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(),
        st.text(max_size=30),
        st.just("\x00"),
        st.lists(SOME_JSON, max_size=3),
        st.dictionaries(st.text(max_size=5), SOME_JSON, max_size=3),
        st.integers(min_value=HUGE, max_value=2 * HUGE).map(lambda n: "x" * n),
        st.integers(min_value=10_000, max_value=100_000).map(lambda n: [0] * n),
    ).map(codec.dumps),
    # What the codec would never write: integers past 64 bits, out-of-range and non-JSON numbers.
    st.integers(min_value=2**64).map(lambda n: str(n).encode()),
    st.sampled_from([b"1e999", b"-1e999", b"NaN", b"Infinity", b"-0", b"0x10", b"01", b"1."]),
)
"""Replacement values, as JSON text (sometimes text that is not quite JSON)."""


def _wrong_type_at_every_level(sample: dict[str, Any]) -> st.SearchStrategy[bytes]:
    def body(path: tuple[Any, ...], new: bytes) -> bytes:
        return codec.dumps(_replaced(sample, path, _HOLE)).replace(f'"{_HOLE}"'.encode(), new)

    return st.builds(body, st.sampled_from(_paths(sample)), WRONG_TYPES)


def _deep(sample: dict[str, Any]) -> st.SearchStrategy[bytes]:
    xdm = codec.dumps(sample["events"][0]["xdm"])

    def body(depth: int, kind: str, where: str) -> bytes:
        opener, closer = (b"[", b"]") if kind == "array" else (b'{"a":', b"}")
        nested = opener * depth + b'"x"' + closer * depth  # deeper than the codec would write
        if where == "root":
            return b'{"events":[{"xdm":' + xdm + b'}],"deep":' + nested + b"}"
        if where == "xdm":
            return b'{"events":[{"xdm":' + xdm[:-1] + b',"deep":' + nested + b"}}]}"
        return b'{"events":[{"xdm":' + nested + b"}]}"

    return st.builds(
        body,
        st.integers(min_value=33, max_value=5000),
        st.sampled_from(["object", "array"]),
        st.sampled_from(["root", "xdm", "raw"]),
    )


def _truncated(sample: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(min_value=0, max_value=len(sample) - 1).map(lambda n: sample[:n])


def _spliced(sample: bytes) -> st.SearchStrategy[bytes]:
    junk = st.sampled_from(
        [b"\x00", b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\\u0000", b"\\ud800", b'"', b"\\"]
    )
    return st.builds(
        lambda at, bad: sample[:at] + bad + sample[at:],
        st.integers(min_value=0, max_value=len(sample)),
        junk,
    )


def _many_events(sample: dict[str, Any]) -> st.SearchStrategy[bytes]:
    event = sample["events"][0]
    return st.integers(min_value=1001, max_value=20_000).map(
        lambda n: codec.dumps({"events": [event] * n})
    )


def _huge(sample: dict[str, Any]) -> st.SearchStrategy[bytes]:
    def body(size: int, where: str) -> bytes:
        xdm = dict(sample["events"][0]["xdm"])
        if where == "string":
            xdm["eventType"] = "x" * size
        elif where == "array":
            xdm["productListItems"] = [{"SKU": "s"}] * (size // 12)
        else:
            xdm.update({f"k{i}": i for i in range(size // 12)})
        return codec.dumps({"events": [{"xdm": xdm}]})

    return st.builds(
        body,
        st.integers(min_value=100_000, max_value=1_300_000),
        st.sampled_from(["string", "array", "keys"]),
    )


def hostile_bodies(sample: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """Bodies an attacker might POST to the edge, built around a real alloy request `sample`.

    Random bytes, truncated JSON, wrong types at every level of the sample, NUL and invalid
    UTF-8 spliced in anywhere, huge strings, arrays and objects, nesting from 33 to 5000 levels,
    and more events than a request may hold.
    """
    raw = codec.dumps(sample)
    return st.one_of(
        st.binary(max_size=4096),
        _truncated(raw),
        _wrong_type_at_every_level(sample),
        _spliced(raw),
        _deep(sample),
        _many_events(sample),
        _huge(sample),
    )


CONTENT_TYPES = st.sampled_from(
    [None, "text/plain", "application/json", "text/plain;charset=UTF-8", "application/x-garbage"]
)


def edge_fuzz(
    url: str,
    config_id: str,
    sample: dict[str, Any],
    *,
    examples: int,
    seconds: float | None = None,
    on_server_error: Callable[[bytes, int], None] | None = None,
) -> FuzzReport:
    """POST `examples` hostile bodies to `/ee/v1/interact` (repeatedly until `seconds` pass)."""
    target = f"{url}/ee/v1/interact?configId={config_id}"
    report = FuzzReport("POST /ee/v1/interact (hostile bodies)")
    deadline = None if seconds is None else time.monotonic() + seconds
    with httpx.Client(timeout=30) as http:

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(body=hostile_bodies(sample), content_type=CONTENT_TYPES)
        def attack(body: bytes, content_type: str | None) -> None:
            headers = {"content-type": content_type} if content_type else {}
            status = http.post(target, content=body, headers=headers).status_code
            report.statuses[status] += 1
            if status >= 500 and on_server_error is not None:
                on_server_error(body, status)

        attack()
        while deadline is not None and time.monotonic() < deadline:
            attack()
    return report


def alloy_sample() -> dict[str, Any]:
    """A real `@adobe/alloy` interact body (a page view)."""
    path = reference_dir() / "edge-captures" / "alloy-request-sample.json"
    sample: dict[str, Any] = codec.loads(path.read_bytes())
    return sample


def a_valid_event_lands(
    url: str, token: str, config_id: str, sample: dict[str, Any], *, wait_s: float = 60.0
) -> bool:
    """Send one valid page view and poll the query API until it is there (or `wait_s` pass)."""
    marker = ids.new_uuid()
    sample["events"][0]["xdm"]["web"]["webPageDetails"]["name"] = marker
    sent = httpx.post(
        f"{url}/ee/v1/interact?configId={config_id}",
        content=codec.dumps(sample),
        headers={"content-type": "text/plain"},
        timeout=10,
    )
    if sent.status_code != 200:
        return False
    sql = f"SELECT count(*) FROM demo_events WHERE web.webPageDetails.name = '{marker}'"
    auth = {"authorization": f"Bearer {token}"}
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        answer = httpx.post(f"{url}/api/v1/query", json={"sql": sql}, headers=auth, timeout=10)
        if answer.status_code == 200 and answer.json()["rows"] == [[1]]:
            return True
        time.sleep(0.25)
    return False
