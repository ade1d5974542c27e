"""The writer's record of custom attributes: counted per organization's namespace, recorded
best effort."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from koppla.platform.catalog.models import Dataset
from koppla.platform.datasets.attribute_log import AttributeLog
from koppla.platform.schemas.observed import ObservedAttributes

ACME = Dataset(
    id="d1",
    name="orders",
    schema_id="s",
    created_ms=0,
    description="",
    profile_enabled=False,
    org_id="ACME4711@AdobeOrg",
    sandbox="prod",
)


def order(**attributes: object) -> dict[str, object]:
    return {"commerce": {"order": {"_acme": attributes, "_other": {"no": 1}}}}


def test_a_tally_counts_the_organizations_own_namespace_and_is_recorded(tmp_path: Path) -> None:
    log = AttributeLog(tmp_path / "attributes.sqlite")
    tally = log.tally(ACME)
    tally.add(order(giftWrap=True))
    tally.add(order(giftWrap=False, note="x"))
    assert log.record(ACME.id, tally)
    log.close()
    observed = ObservedAttributes(tmp_path / "attributes.sqlite")
    found = sorted((s.level, s.name, s.kind, s.count) for s in observed.seen(ACME.id))
    observed.close()
    assert found == [("order", "giftWrap", "boolean", 2), ("order", "note", "string", 1)]


def test_a_failure_to_record_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "attributes.sqlite").mkdir()  # a directory where the file should be
    log = AttributeLog(tmp_path / "attributes.sqlite")
    tally = log.tally(ACME)
    tally.add(order(giftWrap=True))
    with caplog.at_level(logging.ERROR):
        assert not log.record(ACME.id, tally)
    assert "dataset d1 were not recorded" in caplog.text
    log.close()
