"""Pure parts of archmatrix.staging: tag lists, cache lookup, keys, pip failure kinds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.tags import Tag

from archmatrix.staging.lock import stage_site_packages, staged_requirements, staging_key, unmet_requirements
from archmatrix.staging.pip import classify_pip_failure
from archmatrix.staging.result import MARKER, MissingWheel, StagingError, StagingResult, read_marker
from archmatrix.staging.result import write_marker as _write_marker
from archmatrix.staging.tags import find_wheel, marker_environment, platform_tags, supported_tags, target_name


@dataclass(frozen=True)
class Lock:
    python: str
    packages: Mapping[str, str] = field(default_factory=dict)


BOOKWORM = (2, 36)


def test_aarch64_bookworm_tags_cover_2_36_down_to_manylinux2014() -> None:
    tags = platform_tags("aarch64", BOOKWORM)
    assert tags[0] == "manylinux_2_36_aarch64"
    assert tags[-1] == "manylinux2014_aarch64"
    assert "manylinux_2_28_aarch64" in tags  # where new numpy/scipy aarch64 wheels live
    assert "manylinux_2_17_aarch64" in tags
    assert "manylinux_2_16_aarch64" not in tags  # no aarch64 manylinux below glibc 2.17
    assert not any("x86_64" in t for t in tags)
    assert len(tags) == (36 - 17 + 1) + 1  # one per glibc minor, plus the 2014 alias


def test_tags_are_newest_first_with_aliases_after_their_pep600_tag() -> None:
    tags = platform_tags("x86_64", BOOKWORM)
    minors = [int(t.split("_")[2]) for t in tags if t.startswith("manylinux_2_")]
    assert minors == sorted(minors, reverse=True)
    assert minors[0] == 36 and minors[-1] == 5
    for alias, pep600 in [
        ("manylinux2014_x86_64", "manylinux_2_17_x86_64"),
        ("manylinux2010_x86_64", "manylinux_2_12_x86_64"),
        ("manylinux1_x86_64", "manylinux_2_5_x86_64"),
    ]:
        assert tags.index(alias) == tags.index(pep600) + 1


def test_older_glibc_accepts_fewer_tags() -> None:
    tags = platform_tags("aarch64", (2, 28))
    assert tags[0] == "manylinux_2_28_aarch64"
    assert "manylinux_2_31_aarch64" not in tags


@pytest.mark.parametrize(("arch", "glibc"), [("riscv64", BOOKWORM), ("aarch64", (2, 16)), ("x86_64", (3, 0))])
def test_impossible_targets_are_refused(arch: str, glibc: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        platform_tags(arch, glibc)


def test_supported_tags_prefer_exact_abi_and_end_with_pure_python() -> None:
    tags = supported_tags("3.11", "aarch64", BOOKWORM)
    assert tags[0] == Tag("cp311", "cp311", "manylinux_2_36_aarch64")
    assert Tag("cp311", "abi3", "manylinux2014_aarch64") in tags
    assert Tag("py3", "none", "any") in tags
    assert Tag("cp312", "cp312", "manylinux_2_36_aarch64") not in tags
    assert not any(t.platform.endswith("x86_64") for t in tags)


def test_target_name_names_glibc_ceiling_and_interpreter() -> None:
    assert target_name("3.11", "aarch64", BOOKWORM) == "manylinux_2_36_aarch64 cp311"


def _touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_bytes(b"")


def test_find_wheel_picks_this_platform_from_a_shared_cache(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "numpy-2.4.6-cp311-cp311-manylinux_2_28_aarch64.whl",
        "numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "numpy-2.4.6-cp312-cp312-manylinux_2_28_aarch64.whl",
    )
    aarch64 = supported_tags("3.11", "aarch64", BOOKWORM)
    x86_64 = supported_tags("3.11", "x86_64", BOOKWORM)
    found_arm = find_wheel(tmp_path, "numpy", "2.4.6", aarch64)
    found_x86 = find_wheel(tmp_path, "NumPy", "2.4.6", x86_64)
    assert found_arm is not None and found_arm.name.endswith("cp311-manylinux_2_28_aarch64.whl")
    assert found_x86 is not None and "x86_64" in found_x86.name
    assert find_wheel(tmp_path, "numpy", "2.4.6", supported_tags("3.11", "aarch64", (2, 27))) is None


def test_find_wheel_prefers_the_better_ranked_build(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "scikit_learn-1.9.1-cp311-cp311-manylinux2014_aarch64.whl",
        "scikit_learn-1.9.1-cp311-cp311-manylinux_2_28_aarch64.whl",
        "scikit_learn-1.9.1.tar.gz",
        "not-a-wheel.whl",
    )
    found = find_wheel(tmp_path, "scikit-learn", "1.9.1", supported_tags("3.11", "aarch64", BOOKWORM))
    assert found is not None and found.name.endswith("manylinux_2_28_aarch64.whl")


def test_find_wheel_accepts_pure_python_wheels(tmp_path: Path) -> None:
    _touch(tmp_path, "joblib-1.6.0-py3-none-any.whl")
    tags = supported_tags("3.11", "aarch64", BOOKWORM)
    assert find_wheel(tmp_path, "joblib", "1.6.0", tags) == tmp_path / "joblib-1.6.0-py3-none-any.whl"
    assert find_wheel(tmp_path, "joblib", "1.5.0", tags) is None
    assert find_wheel(tmp_path / "absent", "joblib", "1.6.0", tags) is None


def test_staging_key_changes_with_every_input() -> None:
    lock = Lock("3.11", {"numpy": "2.4.6", "scipy": "1.17.1"})
    key = staging_key(lock, "aarch64", BOOKWORM)
    assert key == staging_key(Lock("3.11", {"scipy": "1.17.1", "numpy": "2.4.6"}), "aarch64", BOOKWORM)
    assert key == staging_key(Lock("3.11", {"NumPy": "2.4.6", "scipy": "1.17.1"}), "aarch64", BOOKWORM)
    others = {
        staging_key(Lock("3.12", lock.packages), "aarch64", BOOKWORM),
        staging_key(Lock("3.11", {"numpy": "2.4.5", "scipy": "1.17.1"}), "aarch64", BOOKWORM),
        staging_key(Lock("3.11", {"numpy": "2.4.6"}), "aarch64", BOOKWORM),
        staging_key(lock, "x86_64", BOOKWORM),
        staging_key(lock, "aarch64", (2, 28)),
    }
    assert key not in others
    assert len(others) == 5


NO_WHEEL_OUTPUT = """\
ERROR: Could not find a version that satisfies the requirement numpy==2.4.6 (from versions: 2.2.5, 2.2.6)
ERROR: No matching distribution found for numpy==2.4.6
"""

OFFLINE_OUTPUT = (
    "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) "
    "after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection."
    "HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno -3] "
    "Temporary failure in name resolution')': /simple/numpy/\n"
    "ERROR: Could not find a version that satisfies the requirement numpy==2.4.6 "
    "(from versions: none)\n"
    "ERROR: No matching distribution found for numpy==2.4.6\n"
)


def test_pip_failures_are_told_apart() -> None:
    assert classify_pip_failure(NO_WHEEL_OUTPUT) == "no-wheel"
    # Offline pip also says "No matching distribution": that is not a missing wheel.
    assert classify_pip_failure(OFFLINE_OUTPUT) == "infra"
    assert classify_pip_failure("ERROR: [Errno 28] No space left on device") == "infra"


def test_complete_marker_round_trips_and_short_circuits_staging(tmp_path: Path) -> None:
    lock = Lock("3.11", {"numpy": "2.4.6", "oldpkg": "0.1"})
    key = staging_key(lock, "aarch64", BOOKWORM)
    dest = tmp_path / key
    dest.mkdir()
    recorded = StagingResult(
        site_packages=dest,
        installed={"numpy": "2.4.6"},
        missing=[MissingWheel("oldpkg", "0.1", "manylinux_2_36_aarch64 cp311", "no versions")],
        wheels=["numpy-2.4.6-cp311-cp311-manylinux_2_28_aarch64.whl"],
        key=key,
    )
    _write_marker(dest, recorded)
    read = read_marker(dest)
    assert read is not None and read.from_cache
    assert read.missing == recorded.missing and read.installed == recorded.installed
    # Nothing to download or install: an empty wheel cache proves pip never ran.
    result = stage_site_packages(lock, "aarch64", BOOKWORM, dest, wheel_cache=tmp_path / "cache")
    assert result.from_cache and result.missing[0].name == "oldpkg"
    assert not (tmp_path / "cache").exists()


def test_marker_of_other_inputs_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "staged"
    dest.mkdir()
    _write_marker(dest, StagingResult(site_packages=dest, key="0123456789abcdef"))
    with pytest.raises(StagingError, match="other inputs"):
        stage_site_packages(Lock("3.11"), "aarch64", BOOKWORM, dest, wheel_cache=tmp_path / "c")


def test_truncated_marker_is_not_complete(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text('{"schema": 1, "inst')
    assert read_marker(tmp_path) is None


ARM = {
    "platform_machine": "aarch64",
    "python_version": "3.11",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_full_version": "3.11.0",
    "implementation_version": "3.11.0",
    "os_name": "posix",
    "extra": "",
}


def test_marker_environment_describes_the_target_not_the_host() -> None:
    assert marker_environment("3.11", "aarch64") == ARM


def test_a_dependency_missing_from_the_lock_is_reported() -> None:
    # joblib 1.6.0 really requires cloudpickle, which older joblib vendored.
    requires = {
        "joblib 1.6.0": ["cloudpickle>=3.0", "pytest; extra == 'test'"],
        "scipy 1.17.1": ["numpy<2.7,>=1.26.4"],
        "fancy 1.0": ["winonly; sys_platform == 'win32'", "armonly; platform_machine == 'aarch64'"],
    }
    locked = {"joblib": "1.6.0", "scipy": "1.17.1", "NumPy": "2.4.6", "fancy": "1.0"}
    problems = unmet_requirements(requires, locked, ARM)
    assert problems == [
        'fancy 1.0 requires armonly; platform_machine == "aarch64", which the lock does not pin',
        "joblib 1.6.0 requires cloudpickle>=3.0, which the lock does not pin",
    ]
    x86 = {**ARM, "platform_machine": "x86_64"}
    assert len(unmet_requirements(requires, locked, x86)) == 1


def test_a_pin_outside_a_dependency_range_is_reported() -> None:
    requires = {"scipy 1.17.1": ["numpy<2.7,>=1.26.4"]}
    assert unmet_requirements(requires, {"numpy": "2.7.0", "scipy": "1.17.1"}, ARM) == [
        "scipy 1.17.1 requires numpy<2.7,>=1.26.4, the lock pins numpy==2.7.0"
    ]
    assert unmet_requirements(requires, {"numpy": "2.4.6", "scipy": "1.17.1"}, ARM) == []


def test_requirements_are_read_from_staged_metadata(tmp_path: Path) -> None:
    info = tmp_path / "joblib-1.6.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.4\nName: joblib\nVersion: 1.6.0\n"
        "Requires-Dist: cloudpickle>=3.0\nRequires-Dist: pytest; extra == 'test'\n\nlong description\n"
    )
    assert staged_requirements(tmp_path) == {"joblib 1.6.0": ["cloudpickle>=3.0", "pytest; extra == 'test'"]}
