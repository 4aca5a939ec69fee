"""One package-name rule (PEP 503) and one "path or module?" rule, on both sides of the lane boundary."""

from __future__ import annotations

import os

import pytest
from packaging.utils import canonicalize_name

from archmatrix.findings import diagnose, lock_differences
from archmatrix.suite.lane.facts import canonical_name, installed_packages
from archmatrix.suite.registry import is_module_path
from archmatrix.suite.result import LaneResult, LaneStatus
from archmatrix.summary import lock_text

NAMES = [
    "numpy", "NumPy", "scikit-learn", "scikit_learn", "Scikit.Learn", "typing_extensions",
    "typing-extensions", "Typing.Extensions", "zope.interface", "ruamel.yaml.clib", "backports.zoneinfo",
    "jaraco.text", "pyOpenSSL", "Flask-SQLAlchemy", "a__b", "a-_.-b", "a..b", "A_B.C-D", "x", "X1", "py3",
    "nvidia-cublas-cu12", "ÄBC_def", "_private", "trailing_", "--",
]


@pytest.mark.parametrize("name", NAMES)
def test_the_suites_name_rule_is_packagings(name: str) -> None:
    assert canonical_name(name) == canonicalize_name(name)


def test_the_suite_records_installed_packages_by_their_canonical_name() -> None:
    packages = installed_packages()
    assert packages
    assert all(canonicalize_name(name) == name for name in packages)


def _lane(packages: dict[str, str]) -> LaneResult:
    return LaneResult(lane="host", runner="venv", status=LaneStatus.RAN, facts={"packages": packages})


@pytest.mark.parametrize(("lock", "installed"), [
    ({"typing_extensions": "4.12.2"}, {"typing-extensions": "4.12.2"}),  # the review's reproduction
    ({"Typing.Extensions": "4.12.2"}, {"typing-extensions": "4.12.2"}),
    ({"zope-interface": "7.0"}, {"zope.interface": "7.0"}),  # a lane that recorded the old, partial rule
    ({"scikit-learn": "1.5.2", "NumPy": "2.1.3"}, {"scikit-learn": "1.5.2", "numpy": "2.1.3"}),
])
def test_the_lock_row_and_the_warnings_agree_that_the_lock_matches(
    lock: dict[str, str], installed: dict[str, str]
) -> None:
    assert lock_text(_lane(installed), lock) == "matches"
    assert [f for f in diagnose({"packages": installed}, lock) if f.id == "lock-mismatch"] == []


@pytest.mark.parametrize(("lock", "installed", "row"), [
    ({"typing_extensions": "4.12.2"}, {"typing-extensions": "4.11.0"}, "DIFFERS: typing_extensions 4.11.0"),
    ({"typing_extensions": "4.12.2"}, {"numpy": "2.1.3"}, "DIFFERS: typing_extensions missing"),
])
def test_the_lock_row_and_the_warnings_agree_that_the_lock_differs(
    lock: dict[str, str], installed: dict[str, str], row: str
) -> None:
    assert lock_text(_lane(installed), lock) == row
    (finding,) = [f for f in diagnose({"packages": installed}, lock) if f.id == "lock-mismatch"]
    assert "typing_extensions" in finding.message


def test_lock_differences() -> None:
    assert lock_differences({"A_b": "1", "c": "2", "d": "3"}, {"a-b": "1", "C": "3"}) == [
        ("c", "3", "2"), ("d", None, "3")]


@pytest.mark.parametrize(("entry", "is_path"), [
    ("mychecks", False),
    ("my_pkg.checks", False),
    ("checks.py", True),
    ("tests/checks", True),
    ("./checks.py", True),
    ("/abs/checks.py", True),
    ("sub" + os.sep + "checks", True),
])
def test_is_module_path(entry: str, is_path: bool) -> None:
    assert is_module_path(entry) is is_path
