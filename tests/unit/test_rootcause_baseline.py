"""A CPU below a package's stated baseline is its own finding (the outcome stays illegal-instruction)."""

from __future__ import annotations

from pathlib import Path

from archmatrix import rootcause
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus


def lane(model: str) -> LaneResult:
    return LaneResult(lane="v1", runner="qemu", status=LaneStatus.RAN,
                      facts={"emulation": {"emulator": "qemu-x86_64", "cpu_model": model}},
                      checks=[CheckResult("import.numpy", Outcome.ILLEGAL_INSTRUCTION,
                                          message="killed by SIGILL"),
                              CheckResult("import.scipy", Outcome.PASS)])


def test_a_cpu_below_numpys_baseline_says_so(tmp_path: Path) -> None:
    (tmp_path / "numpy").mkdir()
    seen: list[Path] = []

    def baseline_of(package: Path) -> str:
        seen.append(package)
        return "x86-64-v2"

    found = rootcause.below_baseline(lane("qemu64"), [tmp_path], baseline_of)
    numpy = found.checks[0]
    assert numpy.outcome is Outcome.ILLEGAL_INSTRUCTION
    assert numpy.message.startswith("this CPU is below numpy's baseline x86-64-v2 (it lacks x86-64-v2)")
    assert numpy.message.endswith("killed by SIGILL")  # the symptom stays
    assert seen == [tmp_path / "numpy"]
    assert found.checks[1].message == ""  # a passing cell is left alone


def test_a_cpu_that_has_the_baseline_gets_no_such_finding(tmp_path: Path) -> None:
    (tmp_path / "numpy").mkdir()
    found = rootcause.below_baseline(lane("Westmere"), [tmp_path], lambda _p: "x86-64-v2")
    assert found.checks[0].message == "killed by SIGILL"
    # and no stated baseline, no finding (never a guess)
    found = rootcause.below_baseline(lane("qemu64"), [tmp_path], lambda _p: "")
    assert found.checks[0].message == "killed by SIGILL"


def test_numpys_own_binaries_state_their_baseline() -> None:
    import numpy

    level = rootcause.stated_baseline(Path(numpy.__file__).parent)
    major, minor = (int(x) for x in numpy.__version__.split(".")[:2])
    if (major, minor) >= (2, 4):
        assert level == "x86-64-v2"
