"""The host lane through the real CLI: a real venv with the lock, the real suite."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, archmatrix_argv, python_env

from archmatrix.suite.result import load

HostRun = tuple[subprocess.CompletedProcess[str], Path]


@pytest.fixture(scope="module")
def host_run(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> HostRun:
    results = tmp_path_factory.mktemp("results")
    proc = subprocess.run(
        archmatrix_argv("lane", "host", "--config", str(ROOT / "ci" / "matrix.yaml"),
                        "--results", str(results), "--workdir", str(workdir)),
        env=python_env(), cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    return proc, results


def test_host_lane_passes_every_check_and_prints_its_table(host_run: HostRun) -> None:
    proc, results = host_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    lane = load(results / "host.json")
    assert lane.status == "ran"
    failed = {c.id: (c.outcome.value, c.message) for c in lane.checks if c.outcome.value != "pass"}
    assert failed == {}
    ids = {c.id for c in lane.checks}
    # the suite's families are all there: wheels, imports, BLAS, linear algebra, scikit-learn
    for expected in ("wheel.numpy", "import.numpy", "import.scipy", "import.sklearn", "blas.loaded",
                     "linalg.solve", "linalg.svd", "sklearn.linear_regression", "sklearn.kmeans"):
        assert expected in ids
    # the table names the lane and shows outcome words, not glyphs alone
    assert "host" in proc.stdout and "✔ pass" in proc.stdout
    # every report format was written
    for name in ("matrix.json", "matrix.md", "matrix.html", "junit.xml"):
        assert (results / name).stat().st_size > 0


def test_host_lane_records_the_facts_the_design_asks_for(host_run: HostRun) -> None:
    _, results = host_run
    facts = load(results / "host.json").facts
    assert facts["packages"]["numpy"] == "2.4.6"
    assert facts["python"]["executable"].endswith("python")
    assert ".archmatrix" in facts["python"]["prefix"]  # ran in the lane's venv, not the host's
    assert facts["cpu"]["source"] == "numpy CPUID" and facts["cpu"]["present"]
    blas = [lib for lib in facts["libraries"] if lib["user_api"] == "blas"]
    assert blas and all(lib["internal_api"] == "openblas" and lib["architecture"] for lib in blas)
    assert facts["numpy_build"]["host_machine"]["cpu"] == facts["machine"]
    assert facts["translated"] is None  # not macOS
    lr = next(c for c in load(results / "host.json").checks if c.id == "sklearn.linear_regression")
    # [coef..., intercept]: the minimum-norm answer of the rank-deficient problem
    assert lr.metrics["rank_deficient.model"] == pytest.approx([1.0, 1.0, 0.0], abs=1e-9)
    assert lr.metrics["rank_deficient.rank"] == 1


def test_doctor_json_loads_and_describes_this_interpreter() -> None:
    proc = subprocess.run(archmatrix_argv("doctor", "--json"), env=python_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["facts"]["python"]["version"].startswith("3.")
    assert isinstance(data["findings"], list)
    human = subprocess.run(archmatrix_argv("doctor"), env=python_env(), cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert human.returncode == 0 and "CPU features" in human.stdout


def test_report_names_a_corrupt_file_and_still_prints_the_matrix(
    host_run: HostRun, tmp_path: Path
) -> None:
    _, results = host_run
    artifacts = tmp_path / "artifacts"
    (artifacts / "lane-host").mkdir(parents=True)
    (artifacts / "lane-host" / "host.json").write_text((results / "host.json").read_text())
    good = (results / "host.json").read_text()
    (artifacts / "broken.json").write_text(good[: len(good) // 2])
    proc = subprocess.run(archmatrix_argv("report", str(artifacts)), env=python_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4
    assert "broken.json" in proc.stderr and "truncated" in proc.stderr
    assert "✔ pass" in proc.stdout  # the good lane is still reported
    assert (artifacts / "matrix.json").exists()
