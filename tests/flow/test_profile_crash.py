"""SIGKILL while profiles are being built: after a restart every profile is whole, nothing twice.

Shoppers' events (a sign-in linking an ECID to an email, orders under the email) go in through
streaming ingestion in rounds; the whole process group is killed each round, at different
moments (once with the profile stage held behind, so the kill finds unread commits). After the
last restart the profiles must count every shopper once, every order once, every identity once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID
from koppla.platform.profiles.runner import POLICY_CURSOR
from koppla.platform.profiles.store import ProfileStore
from tests.server import Koppla, free_port

pytestmark = pytest.mark.slow

SHOPPERS = 30
ORDERS_PER_ROUND = 2
ROUNDS = 3


@pytest.fixture
def koppla(tmp_path: Path) -> Iterator[Koppla]:
    server = Koppla(tmp_path / "home", free_port())
    yield server
    server.stop()


def _message(entity: dict[str, Any]) -> dict[str, Any]:
    return {"header": {"datasetId": "demo_events"}, "body": {"xdmEntity": entity}}


def _round(shopper: int, round_: int) -> list[dict[str, Any]]:
    email = f"shopper{shopper}@example.com"
    sign_in = {
        "_id": f"in-{shopper}-{round_}",
        "eventType": "userAccount.login",
        "timestamp": f"2026-12-0{round_ + 1}T10:00:00.000Z",
        "identityMap": {
            "ECID": [{"id": f"{shopper:038d}", "primary": True}],
            "Email": [{"id": email}],
        },
    }
    orders = [
        {
            "_id": f"order-{shopper}-{round_}-{n}",
            "eventType": "commerce.backofficeOrderPlaced",
            "timestamp": f"2026-12-0{round_ + 1}T11:00:0{n}.000Z",
            "identityMap": {"Email": [{"id": email, "primary": True}]},
            "commerce": {"order": {"purchaseID": f"{shopper}-{round_}-{n}", "priceTotal": 10.0}},
        }
        for n in range(ORDERS_PER_ROUND)
    ]
    return [_message(e) for e in (sign_in, *orders)]


def _send(koppla: Koppla, token: str, round_: int) -> None:
    messages = [m for s in range(1, SHOPPERS + 1) for m in _round(s, round_)]
    response = httpx.post(
        f"{koppla.url}/collection/batch/{DEMO_DATASTREAM_ID}",
        json={"messages": messages},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 207, response.text


def _waiting(koppla: Koppla) -> int:
    """Dataset commits the profile stage had not read, per `koppla status` on the home."""
    out = subprocess.run(
        [sys.executable, "-m", "koppla", "status", "--json", "--home", str(koppla.home)],
        check=True,
        capture_output=True,
    )
    return sum(codec.loads(out.stdout)["profiles"]["commitsWaiting"].values())


def _first_look_done(koppla: Koppla) -> bool:
    """True once the profile stage has made its first pass (it records the merge policy)."""
    path = koppla.home / "profiles" / "profiles.sqlite"
    if not path.exists():
        return False
    store = ProfileStore(f"sqlite:///{path}")
    try:
        return POLICY_CURSOR in store.cursors()
    finally:
        store.close()


def _stored(koppla: Koppla, token: str) -> int:
    response = httpx.post(
        f"{koppla.url}/api/v1/query",
        headers={"authorization": f"Bearer {token}"},
        json={"sql": "SELECT count(*) FROM demo_events"},
        timeout=30,
    )
    return int(response.json()["rows"][0][0]) if response.status_code == 200 else 0


def _wait(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _totals(koppla: Koppla, token: str) -> list[Any]:
    response = httpx.post(
        f"{koppla.url}/api/v1/query",
        headers={"authorization": f"Bearer {token}"},
        json={
            "sql": "SELECT count(*), sum(orders), sum(lifetime_value), "
            "(SELECT count(*) FROM identities) FROM profiles"
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    row: list[Any] = response.json()["rows"][0]
    return row


def test_sigkill_while_profiles_are_built_loses_and_doubles_nothing(
    koppla: Koppla, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOPPLA_PROFILE_POLL_MS", "60000")  # the stage sleeps after its first look
    koppla.start()
    token = koppla.token()
    _wait(lambda: _first_look_done(koppla))
    _send(koppla, token, 0)
    _wait(lambda: _stored(koppla, token) == SHOPPERS * (1 + ORDERS_PER_ROUND))
    koppla.kill()
    assert _waiting(koppla) > 0, "the profile stage had read everything before the kill"
    monkeypatch.delenv("KOPPLA_PROFILE_POLL_MS")
    for round_ in range(1, ROUNDS):
        koppla.start()
        _send(koppla, token, round_)
        time.sleep(0.15 * round_)  # kill at another moment of the stages' work each round
        koppla.kill()
    koppla.start()

    expected = [SHOPPERS, SHOPPERS * ROUNDS * ORDERS_PER_ROUND, None, 2 * SHOPPERS]
    expected[2] = 10.0 * expected[1]
    deadline = time.monotonic() + 60
    totals: list[Any] = []
    while time.monotonic() < deadline:
        totals = _totals(koppla, token)
        if totals == expected:
            break
        time.sleep(0.3)
    assert totals == expected
    out = subprocess.run(
        [sys.executable, "-m", "koppla", "status", "--json", "--home", str(koppla.home)],
        check=True,
        capture_output=True,
    )
    assert codec.loads(out.stdout)["profiles"]["lastPassAgeS"] < 30
