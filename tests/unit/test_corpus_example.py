"""docs/corpus.md's fault-corpus block is the markdown rendering of the committed corpus runs.

docs/example/corpus-matrix.json and corpus-no-openblas-matrix.json are
written by tests/integration/test_fault_corpus.py (ARCHMATRIX_WRITE_EXAMPLE=1)
from a run that matched its expected tables. docs/corpus.md shows them (the
check rows some lane did not pass) between
``<!-- corpus-matrix:start -->`` and ``<!-- corpus-matrix:end -->``;
``ARCHMATRIX_UPDATE_README=1 pytest tests/unit/test_corpus_example.py``
rewrites that block after a new example run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from archmatrix.matrix import read_matrix
from archmatrix.render import markdown
from archmatrix.suite.outcomes import Outcome

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "docs" / "corpus.md"
EXAMPLE = ROOT / "docs" / "example"
START, END = "<!-- corpus-matrix:start -->", "<!-- corpus-matrix:end -->"
# numpy's import error is repeated in full for every fact the lane could not
# collect; the table and the other warnings say it already (the JSON has them).
FACTS_ERRORS = re.compile(r"^- [\w.-]+: warning: could not collect .*\n", re.MULTILINE)


def corpus_block() -> str:
    main = markdown.render(read_matrix(EXAMPLE / "corpus-matrix.json"),
                           title="the fault corpus (faults 1, 3–8)", rows="notable")
    numpy = markdown.render(read_matrix(EXAMPLE / "corpus-no-openblas-matrix.json"),
                            title="numpy without its OpenBLAS (fault 2)", rows="notable")
    numpy = FACTS_ERRORS.sub("", numpy)
    return f"{main}\n{numpy}"


def readme_block(text: str) -> tuple[int, int]:
    begin = text.index(START) + len(START) + 1
    return begin, text.index(END)


def test_readme_shows_the_committed_corpus_runs() -> None:
    text = README.read_text(encoding="utf-8")
    begin, end = readme_block(text)
    block = corpus_block()
    if os.environ.get("ARCHMATRIX_UPDATE_README") == "1":
        README.write_text(text[:begin] + block + text[end:], encoding="utf-8")
        text = README.read_text(encoding="utf-8")
        begin, end = readme_block(text)
    assert text[begin:end] == block, "stale: run ARCHMATRIX_UPDATE_README=1 pytest " + __file__


def test_the_example_shows_every_failure_class() -> None:
    """A committed example that lost a fault (or gained a machine path) is caught here too."""
    seen: set[str] = set()
    for name in ("corpus-matrix.json", "corpus-no-openblas-matrix.json"):
        text = (EXAMPLE / name).read_text(encoding="utf-8")
        assert "/home/" not in text and "/root/" not in text and "pytest-of-" not in text, name
        for lane in read_matrix(EXAMPLE / name).lanes:
            seen |= {c.outcome.value for c in lane.checks}
    wanted = {Outcome.ILLEGAL_INSTRUCTION, Outcome.BLAS_LOAD, Outcome.WRONG_ARCH, Outcome.SEGFAULT,
              Outcome.TIMEOUT, Outcome.NUMERIC_MISMATCH, Outcome.ABORT, Outcome.NO_WHEEL, Outcome.PASS}
    assert {o.value for o in wanted} <= seen
    warnings = {w.id for lane in read_matrix(EXAMPLE / "corpus-matrix.json").lanes for w in lane.warnings}
    assert "several-openmp" in warnings
