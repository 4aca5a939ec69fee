"""What a staging produced, and the marker file that records it in the staged directory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

MARKER = ".archmatrix-staged.json"


class StagingError(Exception):
    """Staging failed for a reason that is not a missing wheel (network, pip, disk)."""


@dataclass(frozen=True)
class MissingWheel:
    """A locked version with no wheel for the platform: the lane's ``no-wheel``."""

    name: str
    version: str
    platform: str  # e.g. "manylinux_2_36_aarch64 cp311"
    reason: str = ""  # what pip said, e.g. which versions it did find


@dataclass(frozen=True)
class StagingResult:
    site_packages: Path  # the staged site-packages (inside the staged prefix)
    installed: dict[str, str] = field(default_factory=dict)  # name -> version
    missing: list[MissingWheel] = field(default_factory=list)
    wheels: list[str] = field(default_factory=list)  # file names actually installed
    from_cache: bool = False
    key: str = ""  # staging_key of the inputs
    # Requirements of staged packages the lock does not satisfy (it is not
    # closed): installed with --no-deps, these would fail at import time.
    unmet: list[str] = field(default_factory=list)


def write_marker(directory: Path, result: StagingResult, published: Path | None = None) -> None:
    """Record ``result`` in ``directory`` (built in place of ``published``, where it will be renamed to)."""
    root = published or directory
    data = {
        "schema": 1,
        "key": result.key,
        "installed": result.installed,
        "wheels": result.wheels,
        "missing": [asdict(m) for m in result.missing],
        "unmet": result.unmet,
        # where the site-packages is inside the staged directory (a venv-shaped prefix)
        "site_packages": (str(result.site_packages.relative_to(root))
                          if result.site_packages.is_relative_to(root) else "."),
    }
    (directory / MARKER).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_marker(dest: Path) -> StagingResult | None:
    """The result recorded in a completely staged ``dest``, or None."""
    try:
        data = json.loads((dest / MARKER).read_text())
        return StagingResult(
            site_packages=dest / str(data.get("site_packages", ".")),
            installed=dict(data["installed"]),
            missing=[MissingWheel(**m) for m in data["missing"]],
            wheels=list(data["wheels"]),
            from_cache=True,
            key=str(data["key"]),
            unmet=list(data["unmet"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        # Absent, cut short or of another format: not a staging we can trust.
        return None

