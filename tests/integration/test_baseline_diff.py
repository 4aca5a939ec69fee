"""``report --baseline`` over two real matrices (issue 21): what a pull request adds, and only that.

The baseline is the default lock in ``host`` and ``linux-x86_64-noavx``; the
"pull request" adds the fault corpus's AVX2 extension (a C extension running
AVX2 with no CPU check) with its check module, as a user brings their own
package (``--wheel``, ``--checks-module``). The diff must list exactly the
new ``illegal-instruction`` cell of the no-AVX lane as a new failure (the new
check rows as new checks), and ``--fail-on new`` must exit 0 when only old
failures remain and 1 when a new one appears.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import corpus
import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require

from archmatrix.diff import Change, compare
from archmatrix.hostfacts import detect
from archmatrix.results import load_matrix
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import LaneStatus

pytestmark = pytest.mark.integration

LANES = ("host", "linux-x86_64-noavx")
SELECT = ["import.numpy", "linalg.solve"]  # and, with the extension, "avx2_checks.*"
CLI_TIMEOUT = 3600  # a cold machine stages the lock for both lanes first
NOAVX = "linux-x86_64-noavx"
AVX2_CHECK = "avx2_checks.add_epi32"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(archmatrix_argv(*args), env=python_env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, check=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> tuple[Path, Path]:
    """(baseline results, results with the AVX2 extension)."""
    facts = detect()
    require(facts.machine == "x86_64", "the noavx lane and the AVX2 extension need an x86-64 host")
    require(" avx2" in Path("/proc/cpuinfo").read_text(),
            "this host's CPU has no AVX2: the AVX2 extension could not pass natively")
    require(corpus.compiler("x86_64") is not None,
            f"no C compiler for the AVX2 extension: {corpus.INSTALL_HINT}")
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    require(f"{sys.version_info.major}.{sys.version_info.minor}" == shipped["lock"]["python"],
            f"the lock is for Python {shipped['lock']['python']}; the extension is built for this one")
    tmp = tmp_path_factory.mktemp("baseline")
    lanes = [lane for lane in shipped["lanes"] if lane["id"] in LANES]
    configs = {}
    for name, select in (("base", SELECT), ("new", [*SELECT, "avx2_checks.*"])):
        checks = dict(shipped.get("checks", {}), select=select)
        configs[name] = tmp / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump({"lock": shipped["lock"], "checks": checks, "lanes": lanes},
                                                sort_keys=False))
    wheels = tmp / "wheels"
    corpus.build_avx2_wheel(wheels, "x86_64")
    common = ["--workdir", str(workdir), "--no-probes"]
    base = cli("matrix", "--config", str(configs["base"]), *common, "--results", str(tmp / "base"))
    for lane in load_matrix(tmp / "base").lanes:
        require(lane.status != LaneStatus.SKIPPED, f"lane {lane.lane} cannot run here: {lane.reason}")
    assert base.returncode == 0, base.stdout[-3000:] + base.stderr[-3000:]
    new = cli("matrix", "--config", str(configs["new"]), *common, "--results", str(tmp / "new"),
              "--wheel", str(wheels),
              "--checks-module", str(corpus.AVX2 / "avx2_checks.py"))
    assert new.returncode == 1, new.stdout[-3000:] + new.stderr[-3000:]
    return tmp / "base", tmp / "new"


def test_the_diff_lists_exactly_the_new_illegal_instruction(runs: tuple[Path, Path]) -> None:
    base, new = runs
    diff = compare(load_matrix(new), load_matrix(base))
    assert [(c.lane, c.check, c.before, c.after) for c in diff.cells] == [
        (NOAVX, AVX2_CHECK, None, Outcome.ILLEGAL_INSTRUCTION)]
    assert diff.cells[0].change is Change.NEW_FAILURE
    assert sorted(diff.new_checks) == [AVX2_CHECK, "wheel.avx2ext"]
    assert (diff.lanes, diff.new_lanes, diff.removed_lanes, diff.removed_checks) == ([], [], [], [])
    report = cli("report", str(new), "--baseline", str(base))
    assert report.returncode == 1, report.stderr
    lines = report.stdout.splitlines()
    assert lines[0] == "since the baseline: 1 new failure, 0 fixed, 0 changed root cause, 2 new checks"
    assert lines[1].startswith(f"  new failure: {NOAVX} / {AVX2_CHECK}: absent → illegal-instruction")
    assert [line for line in lines if "new failure:" in line] == [lines[1]]


def test_fail_on_new(runs: tuple[Path, Path]) -> None:
    base, new = runs
    # a new failure: 1
    assert cli("report", str(new), "--baseline", str(base), "--fail-on", "new").returncode == 1
    # the same failure already in the baseline: only old failures remain, 0 (1 without --fail-on new)
    old = cli("report", str(new), "--baseline", str(new / "matrix.json"), "--fail-on", "new")
    assert old.returncode == 0, old.stdout[-2000:] + old.stderr[-2000:]
    assert old.stdout.startswith("no change since the baseline\n")
    assert cli("report", str(new), "--baseline", str(new / "matrix.json")).returncode == 1
    # the extension fixed (the baseline run): nothing new fails
    fixed = cli("report", str(base), "--baseline", str(new / "matrix.json"), "--fail-on", "new")
    assert fixed.returncode == 0, fixed.stderr
    assert "removed check: avx2_checks.add_epi32" in fixed.stdout
