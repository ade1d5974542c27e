"""Table locations: a directory by default, an object store with the options delta-rs needs."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs

from koppla.platform.datasets.location import (
    TableLocation,
    arrow_filesystem,
    is_remote,
    local_path,
)


def test_no_url_means_the_datasets_directory_of_the_home(tmp_path: Path) -> None:
    location = TableLocation.parse("", {}, tmp_path / "datasets")
    assert not location.remote
    assert location.table("ds1") == str(tmp_path / "datasets" / "ds1")
    assert location.quarantine() == str(tmp_path / "datasets" / "_quarantine")
    assert location.storage_options() is None


def test_a_path_or_file_url_is_a_shared_directory() -> None:
    assert TableLocation.parse("/mnt/nfs/koppla", {}, Path("/x")).table("d") == "/mnt/nfs/koppla/d"
    assert TableLocation.parse("file:///mnt/nfs/k", {}, Path("/x")).root == "/mnt/nfs/k"


def test_an_s3_url_gets_conditional_puts_unless_the_options_choose_another_way() -> None:
    location = TableLocation.parse("s3://bucket/koppla/", {"AWS_REGION": "eu-north-1"}, Path("/"))
    assert location.remote
    assert location.table("ds1") == "s3://bucket/koppla/ds1"
    assert location.storage_options() == {"AWS_REGION": "eu-north-1", "conditional_put": "etag"}

    locked = {"AWS_S3_LOCKING_PROVIDER": "dynamodb", "DELTA_DYNAMO_TABLE_NAME": "delta_log"}
    assert TableLocation.parse("s3://bucket/k", locked, Path("/")).options == locked


def test_paths_and_uris_are_told_apart() -> None:
    assert not is_remote(Path("/data")) and not is_remote("/data") and not is_remote("file:///d")
    assert is_remote("s3://bucket/t") and is_remote("gs://bucket/t")
    assert local_path("file:///data/t") == Path("/data/t")
    assert local_path("s3://bucket/t") is None


def test_arrow_reads_the_table_through_its_own_file_systems(tmp_path: Path) -> None:
    local = arrow_filesystem(tmp_path, None)
    assert isinstance(local, pafs.SubTreeFileSystem) and local.base_path == f"{tmp_path}/"

    options = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    remote = arrow_filesystem("s3://bucket/koppla/ds1", options)
    assert isinstance(remote, pafs.SubTreeFileSystem)
    assert remote.base_path == "bucket/koppla/ds1/"
    s3 = remote.base_fs
    assert isinstance(s3, pafs.S3FileSystem)
    assert s3.region == "us-east-1"
    assert arrow_filesystem("gs://bucket/t", {}) is None  # deltalake's own handler then
