"""Classify what happened to a check into the outcome taxonomy.

:func:`classify` is a pure function of (exit status or signal, the text the
process printed, exception type and message), so it is unit-tested against
recorded transcripts of real failures (tests/unit/test_classify.py).

Stdlib only: this module runs inside lanes (the suite's supervisor classifies
each check child) and on the host (a lane process that died as a whole).
"""

from __future__ import annotations

import re
import signal as _signal
from dataclasses import dataclass

from .outcomes import Outcome

SIGILL = int(_signal.SIGILL)
SIGSEGV = int(_signal.SIGSEGV)
SIGBUS = int(getattr(_signal, "SIGBUS", 7))
SIGABRT = int(_signal.SIGABRT)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE | re.MULTILINE)


# A binary built for another architecture (macOS dyld, Linux ld.so, the kernel).
WRONG_ARCH = _rx(
    r"incompatible architecture \(have '?[\w-]+'?, need '?[\w-]+'?\)",
    r"mach-o file, but is an incompatible architecture",
    r"wrong ELF class",
    r"Exec format error",
    r"Bad CPU type in executable",
    r"cannot execute binary file",
    r"ELF load command address/offset not (?:properly )?aligned",
    r"invalid ELF header",
    # ldso.explain's sentence: glibc calls an existing file for another
    # machine "No such file or directory"; the lane read its ELF header
    r"is an ELF file for [\w ]+, but this process is",
    # lane.wrongarch's sentence: a binary behind a package's own import error
    r"in an? [\w-]+ process \(a binary for another architecture\)",
)

# Names of BLAS / LAPACK / OpenMP / Fortran runtime libraries and frameworks.
_BLAS_LIB = (
    r"(?:lib)?(?:scipy_)?openblas\w*|(?:lib)?blas\w*|(?:lib)?lapack\w*|(?:lib)?cblas\w*"
    r"|libmkl\w*|mkl_rt|libgfortran\w*|libquadmath\w*|libgomp\w*|libiomp\w*|libomp\w*"
    r"|Accelerate(?:\.framework)?|vecLib|libflexiblas\w*|libatlas\w*|libsatlas\w*"
)
BLAS_LOAD = _rx(
    rf"(?:{_BLAS_LIB})[\w.\-]*: cannot open shared object file",
    rf"Library not loaded: \S*(?:{_BLAS_LIB})",
    r"Symbol not found: _?\w*(?:blas|lapack|NEWLAPACK|ILP64)\w*",
    r"Symbol not found:.*\n?.*Accelerate\.framework",
    r"GotoBLAS\s*:\s*Architecture Initialization failed",
    r"OpenBLAS (?:error|Warning).*(?:memory|initiali[sz])",
    rf"undefined symbol: \w*(?:{_BLAS_LIB}|dgemm_|sgemm_|cblas_\w+|LAPACKE_\w+|gomp_\w+|omp_\w+)",
    r"(?:numpy|scipy)\S* (?:is not|was not) (?:built|linked) with (?:a )?(?:BLAS|LAPACK)",
    r"no BLAS library is loaded",
)

ILLEGAL_TEXT = _rx(
    r"Illegal instruction",
    r"illegal hardware instruction",
    r"uncaught target signal 4\b",
    r"SIGILL",
    # A package's own refusal to run on a CPU without the instructions it
    # was built for (jaxlib, tensorflow, numpy's baseline check).
    r"built (?:using|to use) (?:AVX|FMA|SSE4|the following CPU instructions)",
    r"CPU (?:and/or operating system )?do(?:es)? not support (?:AVX|FMA)",
    r"does not support (?:the )?(?:AVX|AVX2|AVX512\w*|FMA\d?) instructions?",
    r"(?:requires|needs) a CPU with (?:AVX|AVX2|AVX512\w*|FMA\d?)",
    r"the machine does not support \w+ baseline features",
    r"supported by your CPU but .* compiled to use",
)

SEGFAULT_TEXT = _rx(
    r"Segmentation fault",
    r"uncaught target signal 11\b",
    r"uncaught target signal 7\b",
    r"Bus error",
    r"Fatal Python error: Segmentation fault",
)

ABORT_TEXT = _rx(
    r"OMP: Error #\d+",
    r"uncaught target signal 6\b",
    r"Abort trap",
    # the shell's own words, not any message that says "aborted"
    # ("Connection aborted." from requests is an error, not SIGABRT)
    r"(?-i:^Aborted(?: \(core dumped\))?$)",
    r"Fatal Python error: Aborted",
)

NO_WHEEL = _rx(
    r"No matching distribution found for",
    r"Could not find a version that satisfies the requirement",
    r"no binary wheel",
)

IMPORT_EXCEPTIONS = {"ImportError", "ModuleNotFoundError"}
# A failed assertion in a check (a bare ``assert``, ``numpy.testing.assert_allclose``,
# ``pytest.approx``) says the numbers are wrong, not that the check broke
# (docs/suite.md: a failed numeric assertion is numeric-mismatch).
ASSERTION_EXCEPTIONS = {"AssertionError"}

# qemu prints these for CPU models it cannot fully emulate; they are noise,
# not evidence (docs/lanes.md).
NOISE = re.compile(r"^.*TCG doesn't support requested feature.*$\n?", re.MULTILINE)


# faulthandler (Python ≥ 3.11) ends a crash report with every extension module
# loaded: one line of several kB once numpy, scipy and scikit-learn are in
# (158 modules), which would push the line that names the failure ("OMP: Error
# #15 …", printed just before abort()) out of the evidence tail. Kept: the
# count and the last few, the most recently imported (usually the culprit).
EXTENSION_MODULES = re.compile(r"^Extension modules: (.*) \(total: (\d+)\)$", re.MULTILINE)
KEEP_MODULES = 3


def _short_module_list(m: re.Match[str]) -> str:
    names = m.group(1).split(", ")
    shown = ", ".join(names[-KEEP_MODULES:])
    return f"Extension modules: {'…, ' if len(names) > KEEP_MODULES else ''}{shown} (total: {m.group(2)})"


def clean_evidence(text: str, limit: int = 4000) -> str:
    """Drop emulator noise; keep the head and the tail, which explain the failure.

    The tail holds the last words (qemu's "uncaught target signal", an
    exception); the head holds the first ones (the loader's error,
    "Fatal Python error: …" and, since faulthandler prints the most recent
    call first, the check's own frames). Deep stacks lose their middle.
    """
    text = NOISE.sub("", text)
    text = EXTENSION_MODULES.sub(_short_module_list, text)
    if len(text) > limit:
        # a quarter for the head, cut at a line's end
        head = text[: limit // 4]
        head = head[: head.rfind("\n") + 1]
        text = head + "…" + text[len(head) - limit :]
    return text


def signal_of(returncode: int | None) -> int | None:
    """The signal behind an exit status: -N (Python) or 128+N (shell, docker)."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if returncode > 128 and returncode - 128 in (SIGILL, SIGSEGV, SIGBUS, SIGABRT):
        return returncode - 128
    return None


def _first_line(pattern: re.Pattern[str], text: str) -> str:
    m = pattern.search(text)
    if not m:
        return ""
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    return text[start : end if end >= 0 else len(text)].strip()


def classify(
    *,
    returncode: int | None = None,
    output: str = "",
    exc_type: str | None = None,
    exc_message: str = "",
    timed_out: bool = False,
) -> Verdict:
    """Turn what happened into an :class:`Outcome` and a one-line reason.

    ``returncode`` is the process's exit status (negative for a signal, or
    128+N as shells and docker report it); ``None`` when the check reported
    back itself. ``output`` is whatever stdout/stderr text we have.
    ``exc_type``/``exc_message`` describe an exception the check raised.
    """
    text = clean_evidence("\n".join(t for t in (output, exc_message) if t), limit=20000)
    sig = signal_of(returncode)
    exc_text = f"{exc_type}: {exc_message}" if exc_type else ""

    if timed_out:
        return Verdict(Outcome.TIMEOUT, "no result within the time limit")
    for pattern, outcome in (
        (WRONG_ARCH, Outcome.WRONG_ARCH),
        (BLAS_LOAD, Outcome.BLAS_LOAD),
    ):
        line = _first_line(pattern, text)
        if line:
            return Verdict(outcome, line)
    if sig == SIGILL:
        return Verdict(Outcome.ILLEGAL_INSTRUCTION, _reason(ILLEGAL_TEXT, text, "killed by SIGILL"))
    if sig in (SIGSEGV, SIGBUS):
        name = "SIGSEGV" if sig == SIGSEGV else "SIGBUS"
        return Verdict(Outcome.SEGFAULT, _reason(SEGFAULT_TEXT, text, f"killed by {name}"))
    if sig == SIGABRT:
        return Verdict(Outcome.ABORT, _reason(ABORT_TEXT, text, "killed by SIGABRT"))
    for pattern, outcome in (
        (ILLEGAL_TEXT, Outcome.ILLEGAL_INSTRUCTION),
        (SEGFAULT_TEXT, Outcome.SEGFAULT),
        (ABORT_TEXT, Outcome.ABORT),
        (NO_WHEEL, Outcome.NO_WHEEL),
    ):
        line = _first_line(pattern, text)
        if line:
            return Verdict(outcome, line)
    if exc_type in IMPORT_EXCEPTIONS:
        return Verdict(Outcome.IMPORT_ERROR, exc_text)
    if exc_type in ASSERTION_EXCEPTIONS:
        # numpy.testing's message spans lines ("Not equal to tolerance …",
        # "Mismatched elements: …"): one line for the cell, whole in the evidence
        lines = [ln.strip() for ln in exc_message.splitlines() if ln.strip()]
        return Verdict(Outcome.NUMERIC_MISMATCH, "; ".join(lines)[:500] or "assertion failed")
    if exc_type:
        return Verdict(Outcome.ERROR, exc_text)
    if sig is not None:
        return Verdict(Outcome.ERROR, f"killed by signal {sig}")
    if returncode not in (None, 0):
        last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "")
        return Verdict(Outcome.ERROR, f"exited with status {returncode}" + (f": {last}" if last else ""))
    return Verdict(Outcome.PASS, "")


def _reason(pattern: re.Pattern[str], text: str, fallback: str) -> str:
    return _first_line(pattern, text) or fallback
