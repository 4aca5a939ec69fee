"""Python versions as a matrix axis: lane × version ids, their result files, a container's Python.

``lock.python`` may list several versions; each configured lane then runs
once per version as ``<lane>@<version>`` (``linux-arm64-docker@3.12``), its
result in ``results/<lane>-py<version>.json``. With one version nothing
changes: ids and file names stay the configured ones. Configured lane ids
cannot contain ``@``, so a versioned id never collides with a configured one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # model reads the ids from here: no import back at run time
    from .model import LaneConfig

SEPARATOR = "@"
FILE_SEPARATOR = "-py"  # a file name or Docker tag says host-py3.12: '@' is not welcome everywhere
VERSION = re.compile(r"3\.\d+")

# Debian releases and the one Python 3 each ships (with its glibc, which decides the
# manylinux wheels a container of it can use). Python 3.12 shipped in no Debian release
# (testing went from 3.11 to 3.13): a 3.12 container needs a configured base image.
DEBIAN_PYTHONS: dict[str, tuple[str, tuple[int, int]]] = {
    "3.11": ("bookworm", (2, 36)),
    "3.13": ("trixie", (2, 41)),
}
DEFAULT_PYTHON = "3.11"  # a lane built by hand, with no lock: bookworm's, as before versions were an axis
BASE_IMAGE_PLACEHOLDER = "{python}"  # in options.base_image: replaced by the lane's version


def versioned_id(lane_id: str, version: str) -> str:
    """``host@3.12``: the configured lane ``lane_id`` on Python ``version``."""
    return f"{lane_id}{SEPARATOR}{version}"


def split_lane_id(lane_id: str) -> tuple[str, str | None]:
    """(configured lane id, version) of a lane id; the version is None for an unversioned id."""
    base, sep, version = lane_id.rpartition(SEPARATOR)
    if sep and base and VERSION.fullmatch(version):
        return base, version
    return lane_id, None


def result_stem(lane_id: str) -> str:
    """The file stem of a lane's result (and badge, artifact, image tag): ``host-py3.12``, ``host``."""
    base, version = split_lane_id(lane_id)
    return base if version is None else f"{base}{FILE_SEPARATOR}{version}"


def result_file(directory: Path, lane_id: str) -> Path:
    """``<directory>/<lane>.json`` or ``<directory>/<lane>-py<version>.json``."""
    return directory / f"{result_stem(lane_id)}.json"


def version_key(version: str) -> tuple[int, ...]:
    """3.9 before 3.10."""
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def lane_order_key(lane_id: str) -> tuple[str, tuple[int, ...]]:
    """Sort key grouping lanes by configured lane, then by version in numeric order."""
    base, version = split_lane_id(lane_id)
    return base, version_key(version) if version else ()


def expand_lanes(lanes: Iterable[LaneConfig], pythons: Sequence[str]) -> tuple[LaneConfig, ...]:
    """Every lane with its target's Python set; with several versions, one lane per version
    (``<lane>@<version>``), grouped by lane then version in the order ``lock.python`` lists them."""
    def on(lane: LaneConfig, version: str) -> LaneConfig:
        if lane.target is None:
            return lane
        target = replace(lane.target, python=version)
        if target.base_image and target.platform:
            from .baseimage import DEFAULT_PACKAGES, base_image_tag  # only for Docker lanes

            # the base image a Docker lane builds is the Debian release of its Python (CI caches it by tag)
            release = debian_release(version)
            tag = base_image_tag(target.platform, release[0], DEFAULT_PACKAGES) if release else ""
            target = replace(target, base_image=tag)
        return replace(lane, target=target)

    if len(pythons) <= 1:
        return tuple(on(lane, pythons[0]) if pythons else lane for lane in lanes)
    return tuple(replace(on(lane, v), id=versioned_id(lane.id, v)) for lane in lanes for v in pythons)


# --- containers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerBase:
    """Where a Docker lane's Python comes from: a configured image, or a Debian release built here."""

    python: str
    image: str | None = None  # options.base_image, its {python} filled in
    suite: str | None = None  # the Debian release that ships ``python``
    glibc: tuple[int, int] = DEBIAN_PYTHONS[DEFAULT_PYTHON][1]


def debian_release(python: str) -> tuple[str, tuple[int, int]] | None:
    """(Debian suite, its glibc) of the release whose ``python3`` is ``python``; None when none is."""
    return DEBIAN_PYTHONS.get(python)


def docker_base(lane: LaneConfig) -> DockerBase | None:
    """The base a Docker lane's image is built on for its Python; None when there is none to build.

    A configured ``base_image`` wins (its ``{python}`` replaced by the lane's version); its glibc is
    taken to be bookworm's, as before versions were an axis.
    """
    python = lane.target.python if lane.target and lane.target.python else DEFAULT_PYTHON
    configured = lane.options.get("base_image")
    if configured:
        return DockerBase(python, image=str(configured).replace(BASE_IMAGE_PLACEHOLDER, python))
    release = debian_release(python)
    if release is None:
        return None
    return DockerBase(python, suite=release[0], glibc=release[1])


def no_debian_python(python: str) -> tuple[str, str]:
    """(reason, hint) for a Docker lane whose Python no Debian release ships."""
    shipped = ", ".join(f"{suite} {version}" for version, (suite, _g) in sorted(DEBIAN_PYTHONS.items()))
    return (f"no Debian release ships Python {python} ({shipped}): no base image to build for it",
            f"set lanes[].options.base_image to an image with /usr/bin/python{python} "
            f"({BASE_IMAGE_PLACEHOLDER} in it is replaced by the lane's version), or list only "
            f"{', '.join(sorted(DEBIAN_PYTHONS))} in lock.python")
