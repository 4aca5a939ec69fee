"""Findings from injected facts: what ``archmatrix doctor`` and the lanes' warnings say (issue 2)."""

from __future__ import annotations

from typing import Any

import pytest

from archmatrix.findings import OPENMP_LINK, Finding, diagnose, lane_warnings
from archmatrix.suite.result import LaneWarning

LOCK = {"numpy": "2.4.6", "scipy": "1.17.1", "scikit-learn": "1.9.1"}


def openblas(arch: str = "Haswell") -> dict[str, Any]:
    return {
        "user_api": "blas",
        "internal_api": "openblas",
        "prefix": "libscipy_openblas",
        "version": "0.3.30",
        "architecture": arch,
        "threading_layer": "pthreads",
        "num_threads": 8,
        "filepath": "/venv/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_-ff651d7f.so",
    }


def openmp(prefix: str, filepath: str) -> dict[str, Any]:
    return {
        "user_api": "openmp",
        "internal_api": "openmp",
        "prefix": prefix,
        "version": None,
        "num_threads": 8,
        "filepath": filepath,
    }


def clean_facts(**changes: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "os": "Linux",
        "machine": "x86_64",
        "translated": None,
        "emulation": {"emulator": None, "cpu_model": None},
        "emulation_evidence": [],
        "numpy_build": {
            "build_machine": {"cpu": "x86_64", "family": "x86_64", "system": "linux"},
            "host_machine": {"cpu": "x86_64", "family": "x86_64", "system": "linux"},
            "cross_compiled": False,
            "blas": {"name": "scipy-openblas", "version": "0.3.30"},
        },
        "libraries": [openblas(), openmp("libgomp", "/venv/scikit_learn.libs/libgomp-a34b3233.so.1.0.0")],
        "packages": {"numpy": "2.4.6", "scipy": "1.17.1", "scikit-learn": "1.9.1", "joblib": "1.6.0"},
        "errors": {},
    }
    facts.update(changes)
    return facts


def ids(findings: list[Finding]) -> list[str]:
    return [f.id for f in findings]


def one(findings: list[Finding], finding_id: str) -> Finding:
    matches = [f for f in findings if f.id == finding_id]
    assert len(matches) == 1, ids(findings)
    return matches[0]


def test_clean_facts_have_no_findings() -> None:
    assert diagnose(clean_facts(), LOCK) == []
    assert diagnose(clean_facts()) == []
    assert lane_warnings(clean_facts(), LOCK) == []


def test_translated_x86_64_interpreter_on_an_arm64_mac() -> None:
    facts = clean_facts(
        os="Darwin",
        machine="x86_64",
        translated=True,
        numpy_build={"host_machine": {"cpu": "x86_64"}, "blas": {"name": "scipy-openblas"}},
    )
    findings = diagnose(facts, LOCK)
    assert ids(findings) == ["translated", "x86_64-python-on-arm64-mac"]
    translated = one(findings, "translated")
    assert "Rosetta 2" in translated.message
    assert "arm64" in translated.hint
    wrong_python = one(findings, "x86_64-python-on-arm64-mac")
    assert wrong_python.severity == "problem"
    assert "x86_64 wheels" in wrong_python.message
    assert "install an arm64 Python" in wrong_python.hint
    assert "recreate the environment" in wrong_python.hint


def test_translated_arm64_process_is_only_translated() -> None:
    # translated but arm64 is not a real combination; only the Rosetta finding may fire
    assert ids(
        diagnose(
            clean_facts(machine="arm64", translated=True, numpy_build={"host_machine": {"cpu": "aarch64"}})
        )
    ) == ["translated"]


@pytest.mark.parametrize(
    ("machine", "built_for", "expected"),
    [
        ("x86_64", "aarch64", True),
        ("arm64", "x86_64", True),
        ("aarch64", "arm64", False),  # the same machine spelt two ways
        ("AMD64", "x86_64", False),
        ("x86_64", "", False),  # unknown: say nothing
    ],
)
def test_numpy_built_for_another_machine(machine: str, built_for: str, expected: bool) -> None:
    facts = clean_facts(
        machine=machine, numpy_build={"host_machine": {"cpu": built_for}, "blas": {"name": "scipy-openblas"}}
    )
    findings = diagnose(facts)
    assert ("numpy-foreign-build" in ids(findings)) is expected
    if expected:
        finding = one(findings, "numpy-foreign-build")
        assert finding.severity == "problem"
        assert "pip install --force-reinstall" in finding.hint


def test_reference_blas_from_threadpoolctl() -> None:
    ref = {
        "user_api": "blas",
        "internal_api": "reference",
        "version": None,
        "filepath": "/usr/lib/libblas.so.3",
    }
    finding = one(diagnose(clean_facts(libraries=[ref])), "reference-blas")
    assert "reference (unoptimised) BLAS" in finding.message
    assert finding.hint


@pytest.mark.parametrize("name", ["blas", "cblas", "reference"])
def test_reference_blas_from_numpy_build_config(name: str) -> None:
    facts = clean_facts(numpy_build={"host_machine": {"cpu": "x86_64"}, "blas": {"name": name}})
    assert "reference-blas" in ids(diagnose(facts))


def test_reference_blas_from_numpy_build_without_threadpoolctl() -> None:
    facts = clean_facts(
        numpy_build={"host_machine": {"cpu": "x86_64"}, "blas": {"name": "cblas"}},
        errors={"libraries": "ModuleNotFoundError: No module named 'threadpoolctl'"},
    )
    del facts["libraries"]
    assert "reference-blas" in ids(diagnose(facts))


def test_two_openmp_runtimes() -> None:
    libraries = [
        openblas(),
        openmp("libgomp", "/venv/scikit_learn.libs/libgomp-a34b3233.so.1.0.0"),
        openmp("libiomp", "/venv/lib/libiomp5.so"),
    ]
    finding = one(diagnose(clean_facts(libraries=libraries)), "several-openmp")
    assert "libgomp" in finding.message and "libiomp" in finding.message
    assert OPENMP_LINK in finding.hint
    assert OPENMP_LINK.startswith("https://github.com/joblib/threadpoolctl/")
    assert finding.severity == "warning"  # the lane still counts


def test_one_openmp_runtime_is_fine() -> None:
    assert "several-openmp" not in ids(diagnose(clean_facts()))


def test_versions_differ_from_the_lock() -> None:
    packages = {"numpy": "2.4.5", "scikit-learn": "1.9.1"}  # numpy older, scipy missing
    finding = one(diagnose(clean_facts(packages=packages), LOCK), "lock-mismatch")
    assert "numpy 2.4.5 (lock: 2.4.6)" in finding.message
    assert "scipy missing (lock: 1.17.1)" in finding.message
    assert "scikit-learn" not in finding.message
    assert finding.hint


def test_lock_names_are_normalised() -> None:
    facts = clean_facts(packages={"scikit-learn": "1.9.1"})
    assert diagnose(facts, {"Scikit_Learn": "1.9.1"}) == []


def test_emulation_is_a_finding() -> None:
    emulated = one(
        diagnose(clean_facts(emulation={"emulator": "qemu-x86_64", "cpu_model": "Westmere"})), "emulated"
    )
    assert emulated.message == "this process is emulated by qemu-x86_64 with CPU model Westmere"
    evidence = ["/proc/cpuinfo lists AVX, AVX2 but CPUID does not report them"]
    suspected = one(diagnose(clean_facts(emulation_evidence=evidence)), "emulated")
    assert evidence[0] in suspected.message


def test_facts_that_could_not_be_collected_are_problems() -> None:
    findings = diagnose(clean_facts(errors={"cpu": "ImportError: numpy is broken"}))
    finding = one(findings, "facts-error:cpu")
    assert finding.severity == "problem"
    assert "ImportError: numpy is broken" in finding.message


def test_lane_warnings_carry_message_and_hint() -> None:
    warnings = lane_warnings(clean_facts(packages={"numpy": "2.4.5"}), {"numpy": "2.4.6"})
    assert warnings == [
        LaneWarning(
            "lock-mismatch",
            "installed versions differ from the lock: numpy 2.4.5 (lock: 2.4.6)",
            "rebuild the lane (delete .archmatrix/ to force it)",
        )
    ]
