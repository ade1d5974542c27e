import pytest

from koppla.core.errors import InvalidInput
from koppla.platform.spool.stream_address import (
    StreamAddress,
    partition_names,
    resolve_partitions,
)


def test_a_spool_url_gives_host_port_vhost_and_credentials() -> None:
    address = StreamAddress.parse("rabbitmq-stream://kop%40pla:s%2Fecret@rabbit.internal:5553/prod")
    assert address == StreamAddress("rabbit.internal", 5553, "prod", "kop@pla", "s/ecret")


def test_the_defaults_are_port_5552_and_the_root_vhost() -> None:
    address = StreamAddress.parse("rabbitmq-stream://guest:guest@127.0.0.1/")
    assert (address.port, address.vhost) == (5552, "/")
    assert StreamAddress.parse("rabbitmq-stream://u:p@h:5552/%2F").vhost == "/"


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:5672/", "rabbitmq-stream:///x"])
def test_another_url_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        StreamAddress.parse(url)
    assert refused.value.field == "spool_url"


def test_partitions_are_named_after_the_prefix_or_given() -> None:
    assert partition_names(3) == ["koppla-spool-0", "koppla-spool-1", "koppla-spool-2"]
    assert resolve_partitions(2, "t") == ["t-0", "t-1"]
    assert resolve_partitions(["a", "b"]) == ["a", "b"]
    with pytest.raises(InvalidInput):
        resolve_partitions(["a", "a"])
    with pytest.raises(InvalidInput):
        resolve_partitions(0)
