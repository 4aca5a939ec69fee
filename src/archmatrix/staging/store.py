"""One way to publish a content-addressed directory: complete, readable by every lane, atomic.

Staged site-packages, local wheels, venvs and the suite are each built once
and shared: by lanes running in threads of one process, by concurrent
archmatrix runs on one workdir, and by containers that read them as another
user. :func:`publish_dir` is the only code that makes one appear.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

_READ = 0o444  # r for user, group, others
_ENTER = 0o111  # x for user, group, others: enter a directory, run an executable


def published(dest: Path, marker: str) -> bool:
    """Is ``dest`` a completely published directory (its ``marker`` file is there)?"""
    return (dest / marker).is_file()


def publish_dir(dest: Path, build: Callable[[Path], None], *, marker: str) -> bool:
    """Build ``dest`` with ``build(tmp)`` unless it is already published; True when this call published it.

    The rules:

    1. ``dest`` is published when ``dest / marker`` exists; it is then reused as is
       (the name is a content hash, so identical inputs mean identical contents).
    2. ``build`` fills a temporary sibling unique to this call (``.<name>.tmp-*``:
       same filesystem, so the rename is atomic; never shared with a concurrent
       builder) and must create ``marker`` (write it last when it carries data).
    3. The tree is made readable by other users (containers run as nobody):
       directories get r-x, files r, owner-executable files x, for everyone;
       group and others lose write. Symlinks are left alone.
    4. One ``rename`` publishes it. When that fails because ``dest`` is published
       by now, a concurrent identical publisher won: ours is discarded and theirs
       used. A ``dest`` without its marker (an older, non-atomic staging cut
       short) is never trusted: it is removed and the rename retried once.
    5. Whatever happens (an error in ``build``, Ctrl-C), the temporary directory
       is removed; nothing half-built is ever visible at ``dest``.
    """
    if published(dest, marker):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        build(tmp)
        if not published(tmp, marker):
            raise RuntimeError(f"staging {dest.name}: the build did not write its marker {marker}")
        make_readable(tmp)
        for attempt in (1, 2):
            try:
                os.rename(tmp, dest)
                return True
            except OSError:
                if published(dest, marker):
                    return False
                if attempt == 2 or not dest.exists():
                    raise
                shutil.rmtree(dest, ignore_errors=True)  # unmarked: not a publication to trust
        raise AssertionError("unreachable")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def make_readable(root: Path) -> None:
    """Every user may read ``root``'s tree and run its executables; only its owner writes."""
    _add_bits(root, _READ | _ENTER)
    for directory, dirs, files in os.walk(root):
        for name in dirs:
            _add_bits(Path(directory, name), _READ | _ENTER)
        for name in files:
            path = Path(directory, name)
            with contextlib.suppress(FileNotFoundError):
                mode = path.lstat().st_mode
                if stat.S_ISREG(mode):
                    _add_bits(path, _READ | (_ENTER if mode & stat.S_IXUSR else 0), mode)


def _add_bits(path: Path, bits: int, mode: int | None = None) -> None:
    """Add ``bits``; take away write for group and others (nobody else changes a published tree)."""
    mode = path.lstat().st_mode if mode is None else mode
    new = (stat.S_IMODE(mode) | bits) & ~(stat.S_IWGRP | stat.S_IWOTH)
    if not stat.S_ISLNK(mode) and new != stat.S_IMODE(mode):
        os.chmod(path, new)
