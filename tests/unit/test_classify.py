"""The classifier against recorded transcripts of real failures (issue 2, DESIGN.md taxonomy).

Each case asserts the exact outcome and that the verdict's ``reason`` is the
line of evidence that decided it, so a regression that picks the right
outcome for the wrong reason is caught too. ``golden/transcripts/*.txt`` are
verbatim excerpts of public bug reports (their headers say where from).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from archmatrix.suite.classify import Verdict, classify, clean_evidence, signal_of
from archmatrix.suite.outcomes import Outcome

TRANSCRIPTS = Path(__file__).parent / "golden" / "transcripts"

SIGILL = int(signal.SIGILL)
SIGSEGV = int(signal.SIGSEGV)
SIGABRT = int(signal.SIGABRT)
SIGBUS = int(signal.SIGBUS)

OMP_15 = (
    "OMP: Error #15: Initializing libiomp5.dylib, but found libomp.dylib already initialized.\n"
    "OMP: Hint This means that multiple copies of the OpenMP runtime have been linked into the "
    "program. That is dangerous, since it can degrade performance or cause incorrect results. "
    "The best thing to do is to ensure that only a single OpenMP runtime is linked into the "
    "process, e.g. by avoiding static linking of the OpenMP runtime in any library. As an unsafe, "
    "unsupported, undocumented workaround you can set the environment variable "
    "KMP_DUPLICATE_LIB_OK=TRUE to allow the program to continue to execute, but that may cause "
    "crashes or silently produce incorrect results. For more information, please see "
    "http://www.intel.com/software/products/support/."
)
DLOPEN_WRONG_ARCH = (
    "ImportError: dlopen(/Users/me/venv/lib/python3.9/site-packages/numpy/core/"
    "_multiarray_umath.cpython-39-darwin.so, 0x0002): tried: '/Users/me/venv/lib/python3.9/"
    "site-packages/numpy/core/_multiarray_umath.cpython-39-darwin.so' (mach-o file, but is an "
    "incompatible architecture (have 'x86_64', need 'arm64'))"
)
ACCELERATE = (
    "ImportError: dlopen(/Users/me/venv/lib/python3.11/site-packages/numpy/_core/"
    "_multiarray_umath.cpython-311-darwin.so, 0x0002): Symbol not found: _cblas_caxpy$NEWLAPACK$ILP64\n"
    "  Referenced from: <5E2C3A8B-1F0D-3E5A-9D40-0A4C0C56F2B1> /Users/me/venv/lib/python3.11/"
    "site-packages/numpy/_core/_multiarray_umath.cpython-311-darwin.so\n"
    "  Expected in:     <A8E4B6A2-6B8E-3C5B-8C34-3C2B5A7E9F10> "
    "/System/Library/Frameworks/Accelerate.framework/Versions/A/Accelerate"
)
JAXLIB = (
    "This version of jaxlib was built using AVX instructions, which your CPU and/or operating "
    "system do not support. You may be able work around this issue by building jaxlib from source."
)
QEMU_NOISE = "qemu-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.vmx [bit 5]"


@dataclass(frozen=True)
class Case:
    name: str
    outcome: Outcome
    reason: str  # the verdict's reason must contain this (the evidence line)
    returncode: int | None = None
    output: str = ""
    exc_type: str | None = None
    exc_message: str = ""
    timed_out: bool = False


CASES = [
    # --- SIGILL: the shell's words, qemu's words, zsh's words, and the bare signal
    Case(
        "sigill-132",
        Outcome.ILLEGAL_INSTRUCTION,
        "Illegal instruction (core dumped)",
        returncode=132,
        output="Illegal instruction (core dumped)\n",
    ),
    Case(
        "sigill-minus4",
        Outcome.ILLEGAL_INSTRUCTION,
        "Illegal instruction (core dumped)",
        returncode=-4,
        output="Illegal instruction (core dumped)\n",
    ),
    Case(
        "sigill-text-only",
        Outcome.ILLEGAL_INSTRUCTION,
        "Illegal instruction (core dumped)",
        returncode=None,
        output="Illegal instruction (core dumped)\n",
    ),
    Case("sigill-no-text", Outcome.ILLEGAL_INSTRUCTION, "killed by SIGILL", returncode=-4),
    Case(
        "qemu-sigill",
        Outcome.ILLEGAL_INSTRUCTION,
        "qemu: uncaught target signal 4 (Illegal instruction) - core dumped",
        returncode=-4,
        output="qemu: uncaught target signal 4 (Illegal instruction) - core dumped\n",
    ),
    Case(
        "qemu-sigill-text-only",
        Outcome.ILLEGAL_INSTRUCTION,
        "uncaught target signal 4",
        output="qemu: uncaught target signal 4 (Illegal instruction) - core dumped\n",
    ),
    Case(
        "zsh-sigill",
        Outcome.ILLEGAL_INSTRUCTION,
        "zsh: illegal hardware instruction  python",
        returncode=132,
        output="zsh: illegal hardware instruction  python\n",
    ),
    Case(
        "zsh-sigill-text-only",
        Outcome.ILLEGAL_INSTRUCTION,
        "zsh: illegal hardware instruction",
        output="zsh: illegal hardware instruction  python\n",
    ),
    Case(
        "jaxlib-avx-refusal",
        Outcome.ILLEGAL_INSTRUCTION,
        "built using AVX instructions",
        exc_type="RuntimeError",
        exc_message=JAXLIB,
    ),
    # --- SIGABRT: two OpenMP runtimes
    Case(
        "omp15-minus6",
        Outcome.ABORT,
        "OMP: Error #15: Initializing libiomp5.dylib",
        returncode=-6,
        output=OMP_15,
    ),
    Case(
        "omp15-134",
        Outcome.ABORT,
        "OMP: Error #15: Initializing libiomp5.dylib",
        returncode=134,
        output=OMP_15,
    ),
    Case("omp15-text-only", Outcome.ABORT, "OMP: Error #15", output=OMP_15),
    Case("sigabrt-no-text", Outcome.ABORT, "killed by SIGABRT", returncode=-6),
    # --- wrong architecture
    Case(
        "dlopen-incompatible-arch",
        Outcome.WRONG_ARCH,
        "incompatible architecture (have 'x86_64', need 'arm64')",
        returncode=1,
        exc_type="ImportError",
        exc_message=DLOPEN_WRONG_ARCH,
    ),
    Case(
        "wrong-elf-class",
        Outcome.WRONG_ARCH,
        "ImportError: libta_lib.so.0: wrong ELF class: ELFCLASS32",
        returncode=1,
        output="ImportError: libta_lib.so.0: wrong ELF class: ELFCLASS32\n",
    ),
    Case(
        "wrong-elf-class-as-exception",
        Outcome.WRONG_ARCH,
        "libta_lib.so.0: wrong ELF class: ELFCLASS32",
        exc_type="ImportError",
        exc_message="libta_lib.so.0: wrong ELF class: ELFCLASS32",
    ),
    Case(
        "bad-cpu-type",
        Outcome.WRONG_ARCH,
        "Bad CPU type in executable",
        returncode=126,
        output="zsh: Bad CPU type in executable: /usr/local/bin/python3.11\n",
    ),
    Case(
        "exec-format-error",
        Outcome.WRONG_ARCH,
        "Exec format error",
        returncode=1,
        exc_type="OSError",
        exc_message="[Errno 8] Exec format error: '/opt/venv/bin/python'",
    ),
    # --- BLAS / LAPACK / OpenMP / Fortran runtime did not load
    Case(
        "scipy-openblas-missing",
        Outcome.BLAS_LOAD,
        "libscipy_openblas64_.so: cannot open shared object file: No such file or directory",
        returncode=1,
        exc_type="ImportError",
        exc_message="libscipy_openblas64_.so: cannot open shared object file: No such file or directory",
    ),
    Case(
        "accelerate-symbol",
        Outcome.BLAS_LOAD,
        "Symbol not found: _cblas_caxpy$NEWLAPACK$ILP64",
        returncode=1,
        exc_type="ImportError",
        exc_message=ACCELERATE,
    ),
    Case(
        "accelerate-symbol-then-abort",
        Outcome.BLAS_LOAD,
        "Symbol not found: _cblas_caxpy$NEWLAPACK$ILP64",
        returncode=-6,
        output=ACCELERATE,
    ),
    Case(
        "gotoblas-init",
        Outcome.BLAS_LOAD,
        "GotoBLAS : Architecture Initialization failed. No initialization function found.",
        returncode=1,
        output="GotoBLAS : Architecture Initialization failed. No initialization function found.\n",
    ),
    Case(
        "libgfortran-missing",
        Outcome.BLAS_LOAD,
        "libgfortran.so.5: cannot open shared object file",
        exc_type="ImportError",
        exc_message="libgfortran.so.5: cannot open shared object file: No such file or directory",
    ),
    Case(
        "libomp-not-loaded",
        Outcome.BLAS_LOAD,
        "Library not loaded: /opt/homebrew/opt/libomp/lib/libomp.dylib",
        returncode=1,
        exc_type="ImportError",
        exc_message="dlopen(/x/sklearn/_loss.cpython-311-darwin.so, 0x0002): "
        "Library not loaded: /opt/homebrew/opt/libomp/lib/libomp.dylib",
    ),
    # --- SIGSEGV / SIGBUS
    Case("sigsegv-minus11", Outcome.SEGFAULT, "killed by SIGSEGV", returncode=-11),
    Case(
        "sigsegv-139",
        Outcome.SEGFAULT,
        "Segmentation fault (core dumped)",
        returncode=139,
        output="Segmentation fault (core dumped)\n",
    ),
    Case("sigbus-minus7", Outcome.SEGFAULT, "killed by SIGBUS", returncode=-SIGBUS),
    Case(
        "faulthandler-segfault",
        Outcome.SEGFAULT,
        "Fatal Python error: Segmentation fault",
        output="Fatal Python error: Segmentation fault\n\n"
        "Current thread 0x00007f3a (most recent call first):\n"
        '  File "/suite/checks_blas.py", line 42 in check_gemm\n',
    ),
    Case(
        "faulthandler-segfault-signal",
        Outcome.SEGFAULT,
        "Fatal Python error: Segmentation fault",
        returncode=-11,
        output="Fatal Python error: Segmentation fault\n\nCurrent thread 0x00007f3a:\n",
    ),
    Case(
        "qemu-sigsegv",
        Outcome.SEGFAULT,
        "uncaught target signal 11",
        output="qemu: uncaught target signal 11 (Segmentation fault) - core dumped\n",
    ),
    # --- everything else
    Case("timeout", Outcome.TIMEOUT, "time limit", timed_out=True),
    Case(
        "timeout-beats-evidence",
        Outcome.TIMEOUT,
        "time limit",
        returncode=-9,
        timed_out=True,
        output="Illegal instruction\n",
    ),
    Case(
        "module-not-found",
        Outcome.IMPORT_ERROR,
        "ModuleNotFoundError: No module named 'sklearn'",
        returncode=1,
        exc_type="ModuleNotFoundError",
        exc_message="No module named 'sklearn'",
    ),
    Case(
        "other-library-missing",
        Outcome.IMPORT_ERROR,
        "ImportError: libta_lib.so.0: cannot open shared object",
        exc_type="ImportError",
        exc_message="libta_lib.so.0: cannot open shared object file: No such file or directory",
    ),
    Case(
        "value-error",
        Outcome.ERROR,
        "ValueError: array must not contain infs or NaNs",
        returncode=0,
        exc_type="ValueError",
        exc_message="array must not contain infs or NaNs",
    ),
    Case(
        "pip-no-matching-distribution",
        Outcome.NO_WHEEL,
        "ERROR: No matching distribution found for numpy==2.4.6",
        returncode=1,
        output="ERROR: No matching distribution found for numpy==2.4.6\n",
    ),
    Case(
        "nonzero-exit-last-line",
        Outcome.ERROR,
        "exited with status 3: something broke",
        returncode=3,
        output="starting\nsomething broke\n\n",
    ),
    Case("other-signal", Outcome.ERROR, "killed by signal 9", returncode=-9),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_classify(case: Case) -> None:
    verdict = classify(
        returncode=case.returncode,
        output=case.output,
        exc_type=case.exc_type,
        exc_message=case.exc_message,
        timed_out=case.timed_out,
    )
    assert verdict.outcome is case.outcome, verdict
    assert case.reason in verdict.reason, verdict
    assert "\n" not in verdict.reason  # one line of evidence, never a paragraph


def test_exit_zero_without_exception_is_pass() -> None:
    assert classify(returncode=0) == Verdict(Outcome.PASS, "")
    assert classify() == Verdict(Outcome.PASS, "")
    assert classify(returncode=0, output="some progress output\n").outcome is Outcome.PASS


def test_evidence_line_is_the_matching_line_not_the_first() -> None:
    output = "Running check linalg.solve\nloading numpy\nIllegal instruction (core dumped)\nbye\n"
    verdict = classify(returncode=132, output=output)
    assert verdict.reason == "Illegal instruction (core dumped)"


def test_wrong_arch_wins_over_the_blas_library_it_names() -> None:
    # dyld names the BLAS library it tried, but the library is for another CPU
    text = (
        "ImportError: dlopen(/x/_multiarray_umath.cpython-311-darwin.so, 0x0002): Library not loaded: "
        "@rpath/libopenblas.0.dylib (mach-o file, but is an incompatible architecture "
        "(have 'x86_64', need 'arm64e'))"
    )
    assert classify(returncode=1, exc_type="ImportError", exc_message=text).outcome is Outcome.WRONG_ARCH


def test_ordinary_exception_mentioning_aborted_is_an_error_not_abort() -> None:
    verdict = classify(
        returncode=0,
        exc_type="ConnectionError",
        exc_message=(
            "('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))"
        ),
    )
    assert verdict.outcome is Outcome.ERROR


# ---------------------------------------------------------------- transcripts


def _read_transcript(path: Path) -> tuple[dict[str, str], str]:
    header, _, body = path.read_text(encoding="utf-8").partition("\n---\n")
    meta = {}
    for line in header.splitlines():
        key, _, value = line.removeprefix("# ").partition(": ")
        meta[key] = value
    return meta, body


TRANSCRIPT_FILES = sorted(TRANSCRIPTS.glob("*.txt"))


def test_transcripts_are_present() -> None:
    assert len(TRANSCRIPT_FILES) >= 10
    for path in TRANSCRIPT_FILES:
        meta, body = _read_transcript(path)
        assert meta.get("source", "").startswith("https://"), path
        assert body.strip(), path


@pytest.mark.parametrize("path", TRANSCRIPT_FILES, ids=[p.stem for p in TRANSCRIPT_FILES])
def test_recorded_transcript(path: Path) -> None:
    meta, body = _read_transcript(path)
    rc = meta.get("returncode")
    verdict = classify(returncode=int(rc) if rc else None, output=body)
    assert verdict.outcome is Outcome(meta["outcome"]), (path.name, verdict)
    assert meta["reason"] in verdict.reason, (path.name, verdict)


@pytest.mark.parametrize("path", TRANSCRIPT_FILES, ids=[p.stem for p in TRANSCRIPT_FILES])
def test_recorded_transcript_survives_qemu_noise(path: Path) -> None:
    """qemu's feature warnings interleaved with the evidence change nothing."""
    meta, body = _read_transcript(path)
    noisy = "".join(f"{QEMU_NOISE}\n{line}\n" for line in body.splitlines())
    rc = meta.get("returncode")
    verdict = classify(returncode=int(rc) if rc else None, output=noisy)
    assert verdict.outcome is Outcome(meta["outcome"])
    assert "TCG" not in verdict.reason


# ---------------------------------------------------------------- clean_evidence / signal_of


def test_clean_evidence_drops_qemu_tcg_noise_lines_only() -> None:
    text = (
        f"{QEMU_NOISE}\n"
        "qemu-x86_64: warning: TCG doesn't support requested feature: CPUID.07H:EBX.hle [bit 4]\n"
        "Illegal instruction (core dumped)\n"
        f"{QEMU_NOISE}\n"
        "done\n"
    )
    cleaned = clean_evidence(text)
    assert cleaned == "Illegal instruction (core dumped)\ndone\n"


def test_noise_alone_is_not_evidence() -> None:
    assert classify(returncode=0, output=QEMU_NOISE + "\n").outcome is Outcome.PASS
    verdict = classify(returncode=2, output=f"real last line\n{QEMU_NOISE}\n")
    assert verdict == Verdict(Outcome.ERROR, "exited with status 2: real last line")


def test_clean_evidence_keeps_the_head_and_the_tail() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    cleaned = clean_evidence(text, limit=50)
    assert cleaned.startswith("line 0\n…")  # whole lines of the first quarter
    assert len(cleaned) == 51
    assert cleaned.endswith("line 999\n")
    # no line longer than a quarter of the limit: the head is empty, the tail the whole limit
    assert clean_evidence("x" * 100, limit=40) == "…" + "x" * 40


def test_clean_evidence_keeps_faulthandlers_innermost_frames_of_a_deep_stack() -> None:
    frames = "".join(f'  File "/venv/lib/site-packages/pkg/mod{i}.py", line {i} in f{i}\n' for i in range(80))
    text = ("Fatal Python error: Segmentation fault\n\nCurrent thread 0x7f (most recent call first):\n"
            '  File "/suite/checks_user.py", line 9 in check_segfault\n' + frames)
    cleaned = clean_evidence(text, limit=2000)
    assert "check_segfault" in cleaned and "Fatal Python error: Segmentation fault" in cleaned
    assert cleaned.endswith("in f79\n")
    assert clean_evidence("short\n", limit=50) == "short\n"


@pytest.mark.parametrize(
    ("returncode", "expected"),
    [
        (None, None),
        (0, None),
        (1, None),
        (2, None),
        (126, None),
        (128, None),
        (-SIGILL, SIGILL),
        (-SIGSEGV, SIGSEGV),
        (-SIGABRT, SIGABRT),
        (-9, 9),  # Python reports any signal as -N
        (128 + SIGILL, SIGILL),  # shells and docker report 128+N
        (128 + SIGSEGV, SIGSEGV),
        (128 + SIGABRT, SIGABRT),
        (128 + SIGBUS, SIGBUS),
        (137, None),  # 128+9 only counts for the crash signals: a program may exit 137 itself
        (130, None),
    ],
)
def test_signal_of(returncode: int | None, expected: int | None) -> None:
    assert signal_of(returncode) == expected
