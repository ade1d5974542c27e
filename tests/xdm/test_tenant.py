from koppla.xdm.tenant import TENANT_ID, namespace, tenant_id


def test_the_demo_organization_has_a_short_tenant_id() -> None:
    assert tenant_id("KOPPLADEMO00000000000000@AdobeOrg") == "kopplademo"


def test_every_organization_gets_a_valid_tenant_id() -> None:
    for org in ("0123456789ABCDEF01234567@AdobeOrg", "@AdobeOrg", "ÄÖÜ@AdobeOrg", "a1b2c3@x"):
        assert TENANT_ID.fullmatch(tenant_id(org)), org


def test_digits_inside_are_kept() -> None:
    assert tenant_id("A1B2C3000@AdobeOrg") == "a1b2c"
    assert namespace("acme") == "_acme"


def test_a_tenant_id_never_names_a_system_column() -> None:
    assert tenant_id("UNKNOWN00000000000000000@AdobeOrg") == "unknownorg"
    assert tenant_id("KOPPLA000000000000000000@AdobeOrg") == "kopplaorg"
