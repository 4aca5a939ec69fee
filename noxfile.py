# /// script
# dependencies = ["nox>=2025.2.9", "pyyaml>=6"]
# [tool.nox]
# script-download-python = "never"
# ///
"""archmatrix's nox sessions.

    nox -s matrix                      every lane this host can run (ci/matrix.yaml)
    nox -s matrix -- path/to/other.yaml
    nox -s matrix -- --no-probes       without the performance probes (quicker)
    nox -s "lane(linux-arm64-docker)"  one lane (CI fans lanes out with this)
    nox -s report -- DIR               the matrix from downloaded lane results
    nox -s doctor                      this interpreter's facts and problems
    nox -s tests                       unit + integration tests
    nox -s badges [-- --results DIR]   SVG badges + shields.io endpoint JSON into DIR/badges
    nox -s lint                        ruff, mypy, actionlint on .github/workflows

The script block above makes nox install pyyaml next to itself when it is
missing: the lane sessions are read from ci/matrix.yaml.
"""

from __future__ import annotations

from pathlib import Path

import nox
import yaml

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent
DEFAULT_CONFIG = ROOT / "ci" / "matrix.yaml"


def _lane_ids() -> list[str]:
    # Only the ids: full validation (with located errors) is archmatrix's job
    # when the session runs, not the noxfile's at import time.
    try:
        data = yaml.safe_load(DEFAULT_CONFIG.read_text())
        ids = [str(lane["id"]) for lane in data["lanes"]]
        # lock.python as a list: one lane per version, "<lane>@<version>" (archmatrix.pyversions)
        pythons = data["lock"].get("python")
        if isinstance(pythons, list) and len(pythons) > 1:
            return [f"{lane_id}@{version}" for lane_id in ids for version in pythons]
        return ids
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return ["host"]


def _config_args(session: nox.Session) -> list[str]:
    # a path is the config; options (--no-probes) go to archmatrix as they are
    paths = [arg for arg in session.posargs if not arg.startswith("-")]
    options = [arg for arg in session.posargs if arg.startswith("-")]
    return (["--config", paths[0]] if paths else []) + options


@nox.session
def matrix(session: nox.Session) -> None:
    """Run every lane this host can run; print the table; write results/."""
    session.install("-e", ".[plots]")  # the HTML report's pool-scaling plot
    session.run("archmatrix", "matrix", *_config_args(session), external=False)


@nox.session
@nox.parametrize("lane_id", _lane_ids(), ids=_lane_ids())
def lane(session: nox.Session, lane_id: str) -> None:
    """Run one lane (fails when this host cannot run it)."""
    session.install("-e", ".")
    session.run("archmatrix", "lane", lane_id, *_config_args(session))


@nox.session
def report(session: nox.Session) -> None:
    """Build the matrix from a directory of lane results (default: results/)."""
    session.install("-e", ".[plots]")
    session.run("archmatrix", "report", *(session.posargs or ["results"]))


@nox.session
def doctor(session: nox.Session) -> None:
    """This interpreter's facts in human form (pass --json for JSON)."""
    session.install("-e", ".")
    session.run("archmatrix", "doctor", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests, then integration tests (real venvs, qemu-user, Docker), against the installed package."""
    # Not editable: the tests import archmatrix as a wheel installs it (no
    # pythonpath = src), so package data left out of the wheel fails them.
    # The dependencies are installed once (the venv is reused); the package
    # itself is rebuilt every time, or uv would reuse a wheel of older code.
    session.install(".[test,plots]")  # plots: the report's plot path is tested too
    session.install("--no-deps", "--force-reinstall", ".")
    session.run("pytest", "tests/unit", *session.posargs)
    session.run("pytest", "tests/integration", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy, and actionlint on the workflows."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("mypy")
    # shellcheck (from the lint extra, so every machine checks run: scripts
    # alike) is found on the session's PATH; pyflakes is off: ruff covers Python.
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    session.run("actionlint", "-pyflakes=", *workflows)


@nox.session
def badges(session: nox.Session) -> None:
    """Badges from results/ (or -- --results DIR [--out DIR]): DIR/badges/*.svg and *.json."""
    session.install("-e", ".")
    session.run("archmatrix", "badges", *session.posargs)
