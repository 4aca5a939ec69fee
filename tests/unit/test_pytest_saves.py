"""A lane saves its pytest cells at most every SAVE_EVERY_S, not after each test (issue 17).

Saving the whole lane result after each of thousands of tests is quadratic in
the tests; the lane now saves when a second has passed, and always at the end.
"""

from __future__ import annotations

from archmatrix.suite.engine.main import SAVE_EVERY_S, Throttled


def test_throttled_runs_first_then_once_per_interval() -> None:
    now = [100.0]
    calls: list[float] = []
    save = Throttled(lambda: calls.append(now[0]), SAVE_EVERY_S, clock=lambda: now[0])
    for _ in range(2_000):  # 2,000 tests in 1.9 s: two saves, not 2,000
        save()
        now[0] += 0.00095
    assert len(calls) == 2 and calls[0] == 100.0 and SAVE_EVERY_S <= calls[1] - 100.0 < SAVE_EVERY_S + 0.001
    assert SAVE_EVERY_S <= 1.0  # a lane killed outright loses at most a second of cells
