"""A lane's environment laid out as ``pip install`` lays it out in a venv: a venv-shaped prefix.

``pip install --target`` only fills a site-packages: the files a wheel installs
elsewhere (``.data/data`` → the prefix's ``lib/``, ``share/``…; ``.data/scripts``
and entry points → ``bin/``; ``.data/headers`` → ``include/``) never arrive, so
a lane would test another environment than the user's (intel-openmp's
``lib/libiomp5.so``). Here every wheel is installed with pypa's ``installer``
into the scheme of a venv of the lane's platform — the paths pip uses in a venv
on Linux — and the prefix gets a ``pyvenv.cfg`` and ``bin/python*``, so inside
the lane ``sys.prefix`` is the prefix and ``sys.prefix + "/lib/libfoo.so"`` exists.

The prefix's path inside the lane is fixed when it is staged (scripts' shebangs
name the lane's interpreter): a host lane's prefix is used where it is published;
a container's is copied to :data:`CONTAINER_PREFIX`.
"""

from __future__ import annotations

import email.parser
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.sources import WheelFile
from installer.utils import get_launcher_kind

from ..command import CommandError, run
from .result import StagingError
from .tags import python_tuple

# Where a container lane's prefix lives (the lane image COPYs it there).
CONTAINER_PREFIX = "/opt/archmatrix/venv"
INSTALLER_NAME = b"archmatrix\n"  # dist-info/INSTALLER, as pip writes "pip"


@dataclass(frozen=True)
class PrefixSpec:
    """Which interpreter runs the prefix, and where the prefix is inside the lane.

    ``lane_path`` None: the prefix is used where it is published (host and qemu
    lanes); ``base_python`` is then an interpreter on this host that
    ``python -m venv`` makes it from. Otherwise ``base_python`` is the
    interpreter's path inside the lane (``/usr/bin/python3.11`` in a Debian
    image) and the venv files are written here, for another filesystem.
    """

    python: str  # the lock's major.minor
    base_python: str
    lane_path: str | None = None

    def facts(self) -> list[str]:
        """What of the spec decides the staged files (for content-addressed names)."""
        return [self.python, self.base_python, self.lane_path or ""]

    def interpreter(self, published: Path) -> str:
        """The lane's interpreter as scripts' shebangs name it (``published``: where it is on this host)."""
        prefix = self.lane_path or str(published)
        return f"{prefix}/bin/python"


def site_packages(root: Path, python: str) -> Path:
    """purelib and platlib of a Linux venv: ``lib/pythonX.Y/site-packages``."""
    major, minor = python_tuple(python)
    return root / "lib" / f"python{major}.{minor}" / "site-packages"


def venv_scheme(root: Path, python: str, dist_name: str) -> dict[str, str]:
    """The install scheme pip uses in a venv at ``root`` for the distribution ``dist_name``."""
    major, minor = python_tuple(python)
    lib = str(site_packages(root, python))
    return {
        "purelib": lib,
        "platlib": lib,
        # pip's headers in a venv: <venv>/include/site/pythonX.Y/<project>/
        "headers": str(root / "include" / "site" / f"python{major}.{minor}" / dist_name),
        "scripts": str(root / "bin"),
        "data": str(root),
    }


def make_venv_files(root: Path, spec: PrefixSpec) -> None:
    """``pyvenv.cfg`` and ``bin/python*``: the interpreter started from ``bin/`` has ``sys.prefix`` root."""
    if spec.lane_path is None:
        # the host's own venv module knows its interpreter (a venv's python, a framework build…);
        # the venv finds its prefix from its own location, so building it here and renaming is fine
        try:
            run([spec.base_python, "-m", "venv", "--without-pip", str(root)])
        except CommandError as exc:
            raise StagingError(f"{spec.base_python} -m venv failed: {exc}\n{exc.tail()}") from exc
        return
    # another filesystem (a container image): written, not run — the build has no RUN step
    major, minor = python_tuple(spec.python)
    home = os.path.dirname(spec.base_python)
    (root / "pyvenv.cfg").write_text(
        f"home = {home}\ninclude-system-site-packages = false\nversion = {major}.{minor}\n"
        f"executable = {spec.base_python}\n"
    )
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("python", "python3", f"python{major}.{minor}"):
        (bin_dir / name).symlink_to(spec.base_python)
    site_packages(root, spec.python).mkdir(parents=True, exist_ok=True)


def install_wheels(wheels: Sequence[Path], root: Path, spec: PrefixSpec, published: Path) -> None:
    """Install ``wheels`` into the venv-shaped prefix at ``root`` (to be published at ``published``)."""
    interpreter = spec.interpreter(published)
    for wheel in wheels:
        try:
            with WheelFile.open(wheel) as source:
                destination = SchemeDictionaryDestination(
                    venv_scheme(root, spec.python, _project_name(source)),
                    interpreter=interpreter,
                    script_kind=get_launcher_kind(),  # posix: lanes are Linux
                    overwrite_existing=True,  # as pip: a later wheel's file replaces an earlier one's
                    # no bytecode: like a lane with PYTHONDONTWRITEBYTECODE, and reproducible
                )
                install(source, destination, {"INSTALLER": INSTALLER_NAME})
        except (OSError, InstallerError, KeyError, zipfile.BadZipFile) as exc:
            raise StagingError(f"could not install {wheel.name}: {type(exc).__name__}: {exc}") from exc


def _project_name(source: WheelFile) -> str:
    """The project's name as its METADATA spells it (pip names the headers directory so)."""
    metadata = source.read_dist_info("METADATA")
    name = email.parser.HeaderParser().parsestr(metadata).get("Name")
    return str(name).strip() if name else source.distribution
