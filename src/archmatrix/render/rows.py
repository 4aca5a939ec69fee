"""Which check rows the terminal, markdown and HTML matrices show: one place, shared by the three.

A project's own pytest suite gives a check per test (``pytest::<nodeid>``): thousands of rows, nearly
all of them passing everywhere. So the tests are folded: one ``pytest`` row whose cell in each lane
counts that lane's tests by outcome (``412 pass · 2 illegal-instruction · 3 skipped``), glyphed and
coloured by the worst of them, and a row for each test that is not ``pass`` in some lane that ran the
suite. Every other check keeps its row.

Rows where some lane failed are not held to the row cap (``max_rows``), which bounds the others
(skipped, not run, passing): they are kept up to a bound on the table's cells (``max_cells``, tens
of thousands of failing tests over a few lanes; it exists for hostile result files), and the table
says how many rows it left out. JUnit and ``matrix.json`` carry every test of every lane: they do
not come through here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..suite.outcomes import Outcome
from ..suite.result import CheckResult, LaneResult

PYTEST_PREFIX = "pytest::"
SUMMARY_ID = "pytest"  # the label of the row that counts a lane's tests
SEPARATOR = " · "

Cells = tuple[CheckResult | None, ...]


@dataclass(frozen=True)
class Row:
    id: str
    cells: Cells  # one per lane (column), None where the lane did not run the check
    summary: bool = False  # the pytest row: its cells count tests; shown in every view

    @property
    def failed(self) -> bool:
        return any(c is not None and c.outcome.failed for c in self.cells)

    @property
    def notable(self) -> bool:
        """Some lane did not pass it (or did not run it)."""
        return any(c is None or c.outcome is not Outcome.PASS for c in self.cells)


def severity(outcome: Outcome) -> tuple[int, int]:
    """Sort key, worst first: failures (in the taxonomy's order, infra-error last), skipped, pass."""
    rank = 0 if outcome.failed else 1 if outcome is Outcome.SKIPPED else 2
    return rank, list(Outcome).index(outcome)


def counts_text(counts: Counter[Outcome]) -> str:
    """``412 pass · 2 illegal-instruction · 3 skipped``: pass first, then failures, skipped last."""
    order = sorted(counts, key=lambda o: (o is not Outcome.PASS, severity(o)))
    return SEPARATOR.join(f"{counts[o]} {o.value}" for o in order)


def summary_cell(checks: Iterable[CheckResult]) -> CheckResult | None:
    """A lane's pytest cell: its outcome the worst of the lane's tests, its message their counts;
    None when the lane has no test."""
    counts = Counter(c.outcome for c in checks if c.id.startswith(PYTEST_PREFIX))
    if not counts:
        return None
    worst = min(counts, key=severity)
    return CheckResult(SUMMARY_ID, worst, message=counts_text(counts))


def select_rows(lanes: Sequence[LaneResult], check_ids: Sequence[str], max_rows: int,
                max_cells: int) -> tuple[list[Row], int, int]:
    """The rows to show for ``lanes`` (the columns), in ``check_ids`` order; how many were left
    out, and how many of those failed.

    The ``pytest`` row stands where the first test would; a test gets a row when a lane that ran
    tests did not pass it (a lane with no test at all, one that broke before pytest, is told by
    the ``pytest`` row alone). Beyond ``max_rows``, the ``pytest`` row and the failing rows are
    kept (up to ``max_cells`` cells), then rows some lane did not pass, then the others, each in
    their order.
    """
    by_id = [{c.id: c for c in reversed(ln.checks)} for ln in lanes]  # first of a duplicated id wins
    ran_tests = [any(cid.startswith(PYTEST_PREFIX) for cid in checks) for checks in by_id]
    rows: list[Row] = []
    summary_done = False
    for cid in check_ids:
        cells = tuple(checks.get(cid) for checks in by_id)
        if cid.startswith(PYTEST_PREFIX):
            if not summary_done:
                summary = tuple(summary_cell(checks.values()) for checks in by_id)
                rows.append(Row(SUMMARY_ID, summary, summary=True))
                summary_done = True
            if not any(ran and (c is None or c.outcome is not Outcome.PASS)
                       for c, ran in zip(cells, ran_tests, strict=True)):
                continue
        rows.append(Row(cid, cells))
    if len(rows) <= max_rows:
        return rows, 0, 0
    failing = [i for i, row in enumerate(rows) if row.summary or row.failed]
    keep = set(failing[:max(max_rows, max_cells // max(1, len(lanes)))])
    room = max(0, max_rows - len(keep))
    notable = [i for i, row in enumerate(rows) if i not in keep and row.notable and not row.failed]
    rest = [i for i, row in enumerate(rows) if i not in keep and not row.notable]
    keep.update((notable + rest)[:room])
    return [row for i, row in enumerate(rows) if i in keep], len(rows) - len(keep), len(failing) - len(
        [i for i in failing if i in keep])
