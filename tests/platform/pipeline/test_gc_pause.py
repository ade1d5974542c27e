"""The cyclic collector is held off for a block and comes back as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from koppla.platform.pipeline.gc_pause import paused_gc


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    gc.enable()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_it_comes_back_on_after_an_exception() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("a step failed")
    assert gc.isenabled()


def test_a_nested_pause_leaves_it_off_for_the_outer_block() -> None:
    gc.enable()
    with paused_gc():
        with paused_gc():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_someone_else_disabled_stays_disabled() -> None:
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()
