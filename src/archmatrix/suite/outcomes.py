"""The outcome taxonomy (docs/suite.md): what happened to one check in one lane.

Stdlib only: this module runs inside lanes.
"""

from __future__ import annotations

import enum


class Outcome(str, enum.Enum):
    PASS = "pass"
    ILLEGAL_INSTRUCTION = "illegal-instruction"
    SEGFAULT = "segfault"
    ABORT = "abort"
    BLAS_LOAD = "blas-load"
    WRONG_ARCH = "wrong-arch"
    NO_WHEEL = "no-wheel"
    IMPORT_ERROR = "import-error"
    NUMERIC_MISMATCH = "numeric-mismatch"
    TIMEOUT = "timeout"
    ERROR = "error"
    SKIPPED = "skipped"
    INFRA_ERROR = "infra-error"

    def __str__(self) -> str:
        return self.value

    @property
    def failed(self) -> bool:
        """True for every outcome that means the check did not work here."""
        return self not in (Outcome.PASS, Outcome.SKIPPED)

    @property
    def glyph(self) -> str:
        return _GLYPHS[self]


# A cell derived from the wheels without running (a prediction) shows this glyph, whatever its outcome,
# and the word "(predicted)": never ✔ or ✘, which mean observed.
PREDICTED_GLYPH = "◇"

_GLYPHS = {
    Outcome.PASS: "✔",
    Outcome.ILLEGAL_INSTRUCTION: "✘",
    Outcome.SEGFAULT: "✘",
    Outcome.ABORT: "✘",
    Outcome.BLAS_LOAD: "✘",
    Outcome.WRONG_ARCH: "✘",
    Outcome.NO_WHEEL: "∅",
    Outcome.IMPORT_ERROR: "✘",
    Outcome.NUMERIC_MISMATCH: "≠",
    Outcome.TIMEOUT: "⧗",
    Outcome.ERROR: "✘",
    Outcome.SKIPPED: "–",
    Outcome.INFRA_ERROR: "⚠",
}
