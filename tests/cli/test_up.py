"""`koppla up` records where it listens (see tests/cli/test_debug.py for a real server), and
will not start a second server over a home whose server runs."""

from __future__ import annotations

import os
from pathlib import Path

from koppla.cli.up import unreachable_orgs
from koppla.core import clock
from koppla.core.layout import Layout
from koppla.platform.catalog.store import Catalog
from koppla.web import listening
from koppla.web.listening import Listening
from tests.cli.conftest import Koppla


def test_a_second_server_for_a_home_is_refused_in_one_line(koppla: Koppla, home: Path) -> None:
    first = Listening("https://127.0.0.1:8443", os.getpid(), True, clock.now_ms())
    listening.write(home, first)
    result = koppla("up", "--port", "9999")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: a Koppla server is already running for home {home} at "
        f"https://127.0.0.1:8443 (pid {os.getpid()}); stop it first, or use another --home\n"
    )
    assert listening.read(home) == first  # its record is left alone


def test_organizations_no_token_reaches_are_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    catalog = Catalog(Layout(home).catalog)
    other = "ABCDEFGHIJKL123456789012@AdobeOrg"
    catalog.create_dataset("shop_events", schema_id="s", org_id=other)
    catalog.create_dataset("demo_like", schema_id="s")
    catalog.add_token("ops")
    assert unreachable_orgs(home, catalog) == [other]
    catalog.add_token("shop", org_id=other)
    assert unreachable_orgs(home, catalog) == []
    catalog.close()


def test_a_role_of_a_deployment_needs_the_shared_log_and_catalog(koppla: Koppla) -> None:
    result = koppla("up", "--role", "pipeline")
    assert result.exit_code == 1
    assert "--role pipeline needs spool_url and catalog_url" in result.stderr


def test_an_unknown_role_is_refused(koppla: Koppla) -> None:
    result = koppla("up", "--role", "everything")
    assert result.exit_code == 2
    assert result.stderr == "error: --role: 'everything' is not one of all, edge, pipeline, api\n"
