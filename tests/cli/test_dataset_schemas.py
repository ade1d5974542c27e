"""`koppla dataset create --schema`: a dataset on a tenant schema of its organization."""

from __future__ import annotations

from pathlib import Path

from koppla.core.layout import Layout
from koppla.platform.schemas.registry import home_registry
from koppla.platform.schemas.rules import schema_check
from koppla.xdm.experience_event import SCHEMA_ID
from tests.cli.conftest import Koppla

ORG = "KOPPLADEMO00000000000000@AdobeOrg"
OTHER = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


def tenant_schema(home: Path) -> str:
    registry = home_registry(Layout(home))
    try:
        made = registry.store.create_schema(
            ORG,
            "prod",
            title="Orders",
            description="",
            base=SCHEMA_ID,
            field_groups=[],
            check=schema_check(registry.builtins),
        )
    finally:
        registry.close()
    return made.id


def test_a_dataset_is_created_on_a_tenant_schema_of_its_organization_only(
    koppla: Koppla, home: Path
) -> None:
    assert koppla("dataset", "list").exit_code == 0  # makes the home
    schema_id = tenant_schema(home)
    made = koppla("dataset", "create", "custom_orders", "--schema", schema_id)
    assert made.exit_code == 0, made.output
    line = next(x for x in koppla("dataset", "list").stdout.splitlines() if "custom_orders" in x)
    assert schema_id in line
    refused = koppla("dataset", "create", "theirs", "--schema", schema_id, "--org", OTHER)
    assert refused.exit_code == 2 and "unknown schema" in refused.stderr
    assert "theirs" not in koppla("dataset", "list").stdout
