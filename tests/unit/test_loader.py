"""An x86-64 .so that ld.so calls "missing" on aarch64 is ``wrong-arch`` (suite/lane/ldso.py + classify).

glibc's loader reports a shared object for another machine with the words of
a missing file; only the lane, which can read the file, can tell the two
apart. These tests write tiny ELF headers (no real binaries needed) and
inject the machine, so they run anywhere.
"""

from __future__ import annotations

from pathlib import Path

from archmatrix.suite.classify import classify, clean_evidence
from archmatrix.suite.engine.supervise import ChildReport, judge
from archmatrix.suite.lane import ldso as loader
from archmatrix.suite.outcomes import Outcome

# What ld.so said in the linux-arm64-docker lane, and in public reports
# (e.g. https://github.com/precimed/mixer/issues/61): the same words as for a missing file.
LD_SO = "{path}: cannot open shared object file: No such file or directory"


def elf_header(machine: int, *, little: bool = True) -> bytes:
    """The first 20 bytes of a 64-bit ELF shared object for ``machine`` (e_machine)."""
    order = "little" if little else "big"
    ident = b"\x7fELF" + bytes([2, 1 if little else 2, 1, 0]) + bytes(8)
    return ident + (3).to_bytes(2, order) + machine.to_bytes(2, order)


def write_so(tmp_path: Path, machine: int) -> Path:
    path = tmp_path / "site" / "pkg" / "_native.abi3.so"
    path.parent.mkdir(parents=True)
    path.write_bytes(elf_header(machine) + bytes(100))
    return path


def test_elf_machine_reads_the_header() -> None:
    assert loader.elf_machine(elf_header(62)) == "x86_64"
    assert loader.elf_machine(elf_header(183)) == "aarch64"
    assert loader.elf_machine(elf_header(22, little=False)) == "s390x"
    assert loader.elf_machine(elf_header(9999)) == "e_machine 9999"
    assert loader.elf_machine(b"#!/bin/sh\n" + bytes(20)) is None
    assert loader.elf_machine(b"\x7fELF") is None  # cut short


def test_an_existing_x86_64_file_on_aarch64_is_explained(tmp_path: Path) -> None:
    path = write_so(tmp_path, 62)
    message = f"ImportError: {LD_SO.format(path=path)}"
    sentence = loader.explain(message, machine="aarch64")
    assert sentence == (f"{path} is an ELF file for x86_64, but this process is aarch64 "
                        "(ld.so calls it missing)")
    verdict = classify(output=f"{message}\n{sentence}", exc_type="ImportError", exc_message=message)
    assert verdict.outcome is Outcome.WRONG_ARCH
    assert verdict.reason == sentence


def test_platform_names_are_normalised(tmp_path: Path) -> None:
    path = write_so(tmp_path, 183)
    assert loader.explain(LD_SO.format(path=path), machine="arm64") == ""  # macOS/Docker's name
    assert "but this process is x86_64" in loader.explain(LD_SO.format(path=path), machine="AMD64")


def test_a_file_that_is_really_missing_or_fits_stays_as_it_was(tmp_path: Path) -> None:
    missing = tmp_path / "gone.so"
    assert loader.explain(LD_SO.format(path=missing), machine="aarch64") == ""
    fits = write_so(tmp_path, 183)
    assert loader.explain(LD_SO.format(path=fits), machine="aarch64") == ""
    # a bare soname (a dependency ld.so searched for) names no file to read
    assert loader.explain(LD_SO.format(path="libscipy_openblas64_-32a4b2a6.so"), machine="aarch64") == ""
    # without the lane's sentence, the words alone are no proof of another architecture
    alone = classify(exc_type="OSError", exc_message=LD_SO.format(path=missing))
    assert alone.outcome is Outcome.ERROR


def test_the_supervisor_judges_a_child_that_hit_a_foreign_binary(tmp_path: Path) -> None:
    """judge() runs in the lane: it reads the file and the check becomes wrong-arch."""
    import platform

    this = loader._norm(platform.machine())
    other = 183 if this == "x86_64" else 62
    path = write_so(tmp_path, other)
    report = ChildReport(
        payload={"status": "exception", "exc_type": "ImportError", "exc_message": LD_SO.format(path=path),
                 "traceback": "Traceback …"},
        returncode=0, stdout="", stderr="", timed_out=False, duration_s=0.1,
    )
    result = judge("wrongarch_checks.answer", report)
    assert result.outcome is Outcome.WRONG_ARCH, result.message
    assert result.message.startswith(f"{path} is an ELF file for {loader.ELF_MACHINES[other]}")
    assert result.evidence["loader"] == result.message
    assert result.evidence["exception"]["message"] == LD_SO.format(path=path)


def test_faulthandlers_module_list_does_not_push_the_cause_out_of_the_evidence() -> None:
    """A SIGABRT after "OMP: Error #15" with 158 extension modules loaded (a real lane's stderr shape)."""
    modules = ", ".join(f"sklearn.module_{i}" for i in range(158))
    stderr = (
        "OMP: Error #15: Initializing libomp.so.5, but found libomp.so.5 already initialized.\n"
        "OMP: Hint This means that multiple copies of the OpenMP runtime have been linked into the program.\n"
        "Fatal Python error: Aborted\n\nCurrent thread 0x00007f (most recent call first):\n"
        '  File "ompdup_checks.py", line 22 in check_second_runtime\n\n'
        f"Extension modules: numpy._core._multiarray_umath, {modules} (total: 159)\n"
    )
    tail = clean_evidence(stderr, limit=2000)
    assert tail.startswith("OMP: Error #15")
    kept = "sklearn.module_155, sklearn.module_156, sklearn.module_157"
    assert f"Extension modules: …, {kept} (total: 159)" in tail
    verdict = classify(returncode=-6, output=tail)
    assert verdict.outcome is Outcome.ABORT
    assert verdict.reason.startswith("OMP: Error #15: Initializing libomp.so.5")
    short = "Extension modules: numpy._core._multiarray_umath, segv (total: 2)"
    assert clean_evidence(short) == short
