"""staging.store.publish_dir: the one way a content-addressed directory appears."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from archmatrix.staging.store import publish_dir


def writer(text: str, calls: list[str] | None = None) -> Callable[[Path], None]:
    def build(tmp: Path) -> None:
        if calls is not None:
            calls.append(text)
        (tmp / "sub").mkdir(mode=0o700)
        (tmp / "sub" / "tool").write_text("#!/bin/sh\n")
        (tmp / "sub" / "tool").chmod(0o700)
        (tmp / "data").write_text(text)
        (tmp / "data").chmod(0o600)
        (tmp / "DONE").write_text("ok\n")
    return build


def test_published_once_readable_by_everyone_and_no_temporary_left(tmp_path: Path) -> None:
    dest, calls = tmp_path / "cache" / "abc", list[str]()
    assert publish_dir(dest, writer("one", calls), marker="DONE") is True
    assert publish_dir(dest, writer("two", calls), marker="DONE") is False  # reused, not rebuilt
    assert calls == ["one"] and (dest / "data").read_text() == "one"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "sub").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "data").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "sub" / "tool").stat().st_mode) == 0o755
    assert os.listdir(dest.parent) == ["abc"]


def test_a_concurrent_identical_publisher_wins_and_ours_is_discarded(tmp_path: Path) -> None:
    dest = tmp_path / "abc"

    def racing(tmp: Path) -> None:
        writer("ours")(tmp)
        writer("theirs")(dest.parent / "theirs")  # the other run publishes while we build
        os.rename(dest.parent / "theirs", dest)

    (tmp_path / "theirs").mkdir()
    assert publish_dir(dest, racing, marker="DONE") is False
    assert (dest / "data").read_text() == "theirs"
    assert os.listdir(tmp_path) == ["abc"]


def test_an_unmarked_destination_is_replaced(tmp_path: Path) -> None:
    dest = tmp_path / "abc"
    (dest / "half").mkdir(parents=True)  # an older, non-atomic staging cut short
    assert publish_dir(dest, writer("new"), marker="DONE") is True
    assert sorted(os.listdir(dest)) == ["DONE", "data", "sub"]


def test_a_failed_or_unmarked_build_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "abc"

    def broken(tmp: Path) -> None:
        (tmp / "data").write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        publish_dir(dest, broken, marker="DONE")
    with pytest.raises(RuntimeError, match="did not write its marker DONE"):
        publish_dir(dest, lambda tmp: None, marker="DONE")
    assert os.listdir(tmp_path) == []
