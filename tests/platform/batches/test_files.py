"""A batch's input files: safe names, whole uploads only, atomic replacement."""

from __future__ import annotations

from pathlib import Path

import pytest

from koppla.core.errors import Conflict, InvalidInput
from koppla.core.layout import Layout
from koppla.platform.batches.files import BatchFiles, FileTooLarge, InputFile, check_file_name


@pytest.mark.parametrize(
    "name", ["a.json", "orders-0001.parquet", "2025/03/orders_1.json", "date=2025-03-01/x.json"]
)
def test_safe_names_are_taken(name: str) -> None:
    assert check_file_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../a.json",
        "a/../b",
        "./a",
        ".hidden",
        "a//b",
        "/abs",
        "a/",
        "-a",
        "a\\b",
        "a b",
        "é.json",
        "x" * 1025,
        "/".join("a" * 9),
    ],
)
def test_unsafe_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_file_name(name)
    assert refused.value.field == "filePath"


def test_an_upload_is_listed_only_once_placed_and_replaces_its_name(tmp_path: Path) -> None:
    files = BatchFiles(Layout(tmp_path))
    first = files.upload("b1", "dir/a.json", max_bytes=100)
    first.write(b"0123456789")
    assert files.inputs("b1") == []  # still arriving
    first.sync()
    assert first.place() == 10
    assert files.inputs("b1") == [InputFile("dir/a.json", 10)]
    second = files.upload("b1", "dir/a.json", max_bytes=100)
    second.write(b"abc")
    second.sync()
    second.place()
    assert files.path("b1", "dir/a.json").read_bytes() == b"abc"
    assert files.inputs("b1") == [InputFile("dir/a.json", 3)]
    assert [p.name for p in (files.directory("b1") / "input").iterdir()] == ["dir"]


def test_a_refused_or_failed_upload_leaves_nothing(tmp_path: Path) -> None:
    files = BatchFiles(Layout(tmp_path))
    upload = files.upload("b1", "a.json", max_bytes=8)
    upload.write(b"12345")
    with pytest.raises(FileTooLarge):
        upload.write(b"6789")
    upload.discard()
    assert list((files.directory("b1") / "input").iterdir()) == []


def test_a_name_that_clashes_with_a_folder_is_a_conflict(tmp_path: Path) -> None:
    files = BatchFiles(Layout(tmp_path))
    for name in ("a/b.json", "a"):
        upload = files.upload("b1", name, max_bytes=8)
        upload.write(b"{}")
        upload.sync()
        if name == "a":
            with pytest.raises(Conflict):
                upload.place()
            upload.discard()
        else:
            upload.place()
    assert files.inputs("b1") == [InputFile("a/b.json", 2)]


def test_removing_inputs_keeps_the_rest_of_the_batch(tmp_path: Path) -> None:
    files = BatchFiles(Layout(tmp_path))
    upload = files.upload("b1", "a.json", max_bytes=8)
    upload.sync()
    upload.place()
    (files.directory("b1") / "manifest.json").write_text("[]")
    files.remove_inputs("b1")
    assert files.inputs("b1") == []
    assert (files.directory("b1") / "manifest.json").exists()
    files.remove("b1")
    assert not files.directory("b1").exists()
