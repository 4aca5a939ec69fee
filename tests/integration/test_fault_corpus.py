"""The fault corpus through the real lanes: every failure class is caught, cell by cell.

The corpus (tests/integration/corpus.py, sources in tests/fixtures/) is
built here and put through ``host``, ``linux-amd64-docker``,
``linux-arm64-docker`` and ``linux-x86_64-noavx`` the way a user brings their
own package: ``archmatrix matrix --wheel DIR --checks-module FILE…`` on top
of the default lock. Two runs:

- **corpus**: one environment holding every fault that stays inside its own
  check (AVX2, wrong architecture, segfault, hang, wrong BLAS numbers, two
  OpenMP runtimes, a locked version without an aarch64 wheel), with every
  built-in check next to them;
- **numpy without OpenBLAS**: a fault that breaks the whole environment (every
  check that imports numpy), so it gets its own environment and a short
  selection.

Each run's every cell (check × lane) is compared with the explicit tables
below; any check not in a table must be a built-in one that passes in every
lane, so a fault cannot leak into cells it should not touch.

``ARCHMATRIX_WRITE_EXAMPLE=1`` also writes the runs' merged matrices (machine
paths removed) to docs/example/corpus-*.json, which the README shows
(tests/unit/test_corpus_example.py keeps the two in step).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import corpus
import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require

from archmatrix.hostfacts import HostFacts, detect
from archmatrix.suite.result import LaneResult, load

pytestmark = pytest.mark.integration

LANES = ("host", "linux-amd64-docker", "linux-arm64-docker", "linux-x86_64-noavx")
HANG_TIMEOUT = 10  # seconds: checks.timeouts for hang_checks.deadlock
CLI_TIMEOUT = 3600  # a new machine builds both base images first
EXAMPLE = ROOT / "docs" / "example"
BUILTIN_GROUPS = ("import", "blas", "linalg", "sklearn")
P = "pass"

# --- the expected tables -------------------------------------------------------------------
# Columns: host, linux-amd64-docker, linux-arm64-docker, linux-x86_64-noavx (LANES).

CORPUS_EXPECTED: dict[str, tuple[str, str, str, str]] = {
    # the lock (ci/matrix.yaml) and pyahocorasick 2.0.0, which has no cp311 aarch64 wheel
    "wheel.cloudpickle": (P, P, P, P),
    "wheel.joblib": (P, P, P, P),
    "wheel.narwhals": (P, P, P, P),
    "wheel.numpy": (P, P, P, P),
    "wheel.scikit-learn": (P, P, P, P),
    "wheel.scipy": (P, P, P, P),
    "wheel.threadpoolctl": (P, P, P, P),
    "wheel.pyahocorasick": (P, P, "no-wheel", P),  # (8) no wheel for one platform
    # the corpus's own wheels (--wheel): one per platform each, wrongarch one for all
    "wheel.avx2ext": (P, P, P, P),
    "wheel.segv": (P, P, P, P),
    "wheel.wrongarch": (P, P, P, P),  # py3-none-any: pip installs it everywhere, that is the trap
    "wheel.wrongblas": (P, P, P, P),
    "wheel.ompdup": (P, P, P, P),
    # the built-in suite, unchanged by the corpus sitting next to it
    "import.numpy": (P, P, P, P),
    "import.scipy": (P, P, P, P),
    "import.sklearn": (P, P, P, P),
    "blas.loaded": (P, P, P, P),
    "linalg.matmul": (P, P, P, P),  # its dgemm goes through the (disarmed) interposer, exactly
    "linalg.solve": (P, P, P, P),
    "linalg.inv": (P, P, P, P),
    "linalg.det": (P, P, P, P),
    "linalg.lstsq": (P, P, P, P),
    "linalg.cholesky": (P, P, P, P),
    "linalg.eigh": (P, P, P, P),
    "linalg.svd": (P, P, P, P),
    "linalg.scipy_solve": (P, P, P, P),
    "sklearn.linear_regression": (P, P, P, P),
    "sklearn.ridge": (P, P, P, P),
    "sklearn.logistic_regression": (P, P, P, P),
    "sklearn.pca": (P, P, P, P),
    "sklearn.kmeans": (P, P, P, P),  # OpenMP (libgomp) next to a second runtime: fine
    "sklearn.hist_gradient_boosting": (P, P, P, P),
    "sklearn.random_forest": (P, P, P, P),
    "sklearn.pairwise_distances": (P, P, P, P),
    # the corpus's checks (--checks-module)
    "avx2_checks.add_epi32": (P, P, P, "illegal-instruction"),  # (1); plain C in the aarch64 wheel
    "wrongarch_checks.answer": (P, P, "wrong-arch", P),  # (3)
    "segv_checks.first": ("segfault",) * 4,  # (4)
    "hang_checks.deadlock": ("timeout",) * 4,  # (5)
    "wrongblas_checks.matmul": ("numeric-mismatch",) * 4,  # (6)
    "ompdup_checks.second_runtime": ("abort",) * 4,  # (7), with the lane warning below
}
# (7) the second OpenMP runtime is in every process of the corpus environment
CORPUS_WARNINGS = {
    "host": {"several-openmp"},
    "linux-amd64-docker": {"several-openmp"},
    "linux-arm64-docker": {"several-openmp", "emulated", "lock-mismatch"},  # pyahocorasick missing
    "linux-x86_64-noavx": {"several-openmp", "emulated"},
}

B = "blas-load"
NO_OPENBLAS_EXPECTED: dict[str, tuple[str, str, str, str]] = {
    "wheel.cloudpickle": (P, P, P, P),
    "wheel.joblib": (P, P, P, P),
    "wheel.narwhals": (P, P, P, P),
    "wheel.numpy": (P, P, P, P),  # the local wheel 2.4.6+noopenblas, in place of the lock's
    "wheel.scikit-learn": (P, P, P, P),
    "wheel.scipy": (P, P, P, P),
    "wheel.threadpoolctl": (P, P, P, P),
    # (2): everything that imports numpy, in every lane
    "import.numpy": (B, B, B, B),
    "import.scipy": (B, B, B, B),
    "import.sklearn": (B, B, B, B),
    "blas.loaded": (B, B, B, B),
    "linalg.matmul": (B, B, B, B),
    "linalg.solve": (B, B, B, B),
    "sklearn.linear_regression": (B, B, B, B),
}
NO_OPENBLAS_SELECT = ["import.*", "blas.*", "linalg.matmul", "linalg.solve", "sklearn.linear_regression"]


# --- running ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    proc: subprocess.CompletedProcess[str]
    results: Path
    seconds: float

    def lane(self, lane_id: str) -> LaneResult:
        return load(self.results / f"{lane_id}.json")

    def cells(self) -> dict[str, dict[str, str]]:
        """check id → lane → outcome, over the four lanes."""
        table: dict[str, dict[str, str]] = {}
        for lane_id in LANES:
            for check in self.lane(lane_id).checks:
                table.setdefault(check.id, {})[lane_id] = check.outcome.value
        return table


@pytest.fixture(scope="module")
def host() -> HostFacts:
    facts = detect()
    require(f"{sys.version_info.major}.{sys.version_info.minor}" == corpus.PYTHON == _lock()["python"],
            f"the lock is for Python {_lock()['python']}; the corpus's extensions are built for this one")
    require(facts.docker.reachable, f"docker daemon not reachable ({facts.docker.error}): "
                                    "ci/setup-linux-host.sh")
    server = facts.docker.server_arch or facts.machine
    require(server == "aarch64" or "aarch64" in facts.binfmt or facts.docker.desktop,
            f"no qemu-aarch64 binfmt handler on this {server} host: ci/setup-linux-host.sh")
    require(facts.machine == "x86_64", "the noavx lane and the AVX2 extension need an x86-64 host")
    require(" avx2" in Path("/proc/cpuinfo").read_text(),
            "this host's CPU has no AVX2: the AVX2 extension could not pass natively")
    return facts


def _lock() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())["lock"])


def write_config(path: Path, *, select: list[str], extra_packages: Mapping[str, str] | None = None,
                 wheels: list[str] | None = None, timeouts: Mapping[str, float] | None = None) -> Path:
    """ci/matrix.yaml's lock and four lanes, with a check selection (no perf probes: they only inform)."""
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    lock = dict(shipped["lock"], packages={**shipped["lock"]["packages"], **(extra_packages or {})})
    if wheels:
        lock["wheels"] = wheels
    checks = dict(shipped.get("checks", {}), select=select, timeouts=dict(timeouts or {}))
    lanes = [lane for lane in shipped["lanes"] if lane["id"] in LANES]
    assert sorted(lane["id"] for lane in lanes) == sorted(LANES), "ci/matrix.yaml lost a lane"
    path.write_text(yaml.safe_dump({"lock": lock, "checks": checks, "lanes": lanes}, sort_keys=False))
    return path


def run_matrix(config: Path, results: Path, workdir: Path, *extra: str,
               env: Mapping[str, str] | None = None) -> Run:
    started = time.monotonic()
    # The abort of (7) needs KMP_DUPLICATE_LIB_OK unset, whatever this shell has.
    environment = {k: v for k, v in {**python_env(), **(env or {})}.items() if k != "KMP_DUPLICATE_LIB_OK"}
    proc = subprocess.run(
        archmatrix_argv("matrix", "--config", str(config), "--results", str(results), "--workdir",
                        str(workdir), *extra),
        env=environment, cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    run = Run(proc, results, time.monotonic() - started)
    print(f"{config.name}: {run.seconds:.0f} s\n{proc.stderr[-3000:]}")
    return run


@pytest.fixture(scope="module")
def kmp_files() -> Iterator[None]:
    """LLVM's OpenMP registers each process in /dev/shm and unregisters at exit; a check child
    that ends with os._exit (every one does) or abort() leaves its file: remove ours."""
    shm = Path("/dev/shm")
    before = set(shm.glob("__KMP_REGISTERED_LIB_*")) if shm.is_dir() else set()
    yield
    for path in set(shm.glob("__KMP_REGISTERED_LIB_*")) - before if shm.is_dir() else ():
        pid = path.name.split("_")[4]
        if not Path(f"/proc/{pid}").exists():
            path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def corpus_run(host: HostFacts, tmp_path_factory: pytest.TempPathFactory, workdir: Path,
               kmp_files: None) -> Run:
    tmp = tmp_path_factory.mktemp("corpus")
    wheels = corpus.build_corpus(tmp / "wheels", workdir / "corpus")
    name, version = corpus.NO_WHEEL_ON_AARCH64
    config = write_config(
        tmp / "corpus.yaml", extra_packages={name: version},
        select=[f"{group}.*" for group in BUILTIN_GROUPS] + [f"{m.stem}.*" for m in corpus.CHECK_MODULES],
        timeouts={"hang_checks.deadlock": HANG_TIMEOUT},
    )
    # bring your own package, one-off: the wheels and check modules are not in the config
    extra = ["--wheel", str(wheels)]
    for module in corpus.CHECK_MODULES:
        extra += ["--checks-module", str(module.relative_to(ROOT))]  # relative to the cwd, as typed
    run = run_matrix(config, tmp / "results", workdir, *extra,
                     env={"ARCHMATRIX_CORPUS_PIDFILE": str(tmp / "hang-pids")})
    _maybe_write_example(run, "corpus-matrix.json", tmp, CORPUS_EXPECTED)
    return run


@pytest.fixture(scope="module")
def no_openblas_run(host: HostFacts, tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> Run:
    tmp = tmp_path_factory.mktemp("no-openblas")
    version = _lock()["packages"]["numpy"]
    for arch in corpus.ARCHES:
        corpus.numpy_without_openblas(tmp / "wheels", version, arch, workdir / "wheels")
    # lock.wheels in the config this time (relative to it): the local numpy takes the lock's place
    config = write_config(tmp / "no-openblas.yaml", select=NO_OPENBLAS_SELECT, wheels=["wheels"])
    run = run_matrix(config, tmp / "results", workdir)
    _maybe_write_example(run, "corpus-no-openblas-matrix.json", tmp, NO_OPENBLAS_EXPECTED)
    return run


# --- the tables ------------------------------------------------------------------------------


def assert_table(run: Run, expected: Mapping[str, tuple[str, str, str, str]]) -> None:
    cells = run.cells()
    want = {check: dict(zip(LANES, row, strict=True)) for check, row in expected.items()}
    got = {check: cells.get(check, {}) for check in expected}
    assert got == want, _diff(got, want)
    # anything else must be a built-in check that passes everywhere: no fault leaks
    others = {check: row for check, row in cells.items() if check not in expected}
    leaked = {check: row for check, row in others.items()
              if check.split(".")[0] not in BUILTIN_GROUPS or set(row.values()) != {P}
              or set(row) != set(LANES)}
    assert leaked == {}, leaked


def _diff(got: Mapping[str, Mapping[str, str]], want: Mapping[str, Mapping[str, str]]) -> str:
    lines = [f"{check} {lane}: got {got[check].get(lane)!r}, want {outcome!r}"
             for check, row in want.items() for lane, outcome in row.items()
             if got[check].get(lane) != outcome]
    return "\n".join(lines)


def test_corpus_every_cell(corpus_run: Run) -> None:
    assert corpus_run.proc.returncode == 1, corpus_run.proc.stderr[-4000:]  # failed checks, not infra
    for lane_id in LANES:
        assert corpus_run.lane(lane_id).status == "ran", (lane_id, corpus_run.lane(lane_id).reason)
    assert_table(corpus_run, CORPUS_EXPECTED)


def test_corpus_lane_warnings(corpus_run: Run) -> None:
    for lane_id, expected in CORPUS_WARNINGS.items():
        lane = corpus_run.lane(lane_id)
        assert {w.id for w in lane.warnings} == expected, (lane_id, lane.warnings)
        omp = next(w for w in lane.warnings if w.id == "several-openmp")
        assert "libgomp" in omp.message and "libomp" in omp.message, omp.message
        # threadpoolctl saw both runtimes: scikit-learn's libgomp and the corpus's libomp
        prefixes = {lib.get("prefix") for lib in lane.facts["libraries"] if lib.get("user_api") == "openmp"}
        assert prefixes == {"libgomp", "libomp"}, (lane_id, prefixes)
    mismatch = next(w for w in corpus_run.lane("linux-arm64-docker").warnings if w.id == "lock-mismatch")
    assert corpus.NO_WHEEL_ON_AARCH64[0] in mismatch.message


def _check(run: Run, lane_id: str, check_id: str) -> Any:
    check = run.lane(lane_id).check(check_id)
    assert check is not None, (lane_id, check_id)
    return check


def test_corpus_faults_are_caught_for_the_right_reason(corpus_run: Run) -> None:
    """Each failing cell carries the evidence that decided it, not merely the right word."""
    avx2 = _check(corpus_run, "linux-x86_64-noavx", "avx2_checks.add_epi32")
    assert avx2.evidence["signal"] == "SIGILL"
    assert "Illegal instruction" in avx2.message
    assert "uncaught target signal 4 (Illegal instruction)" in avx2.evidence["stderr_tail"]  # qemu's words

    wrong = _check(corpus_run, "linux-arm64-docker", "wrongarch_checks.answer")
    assert re.search(r"wrongarch/_native\.abi3\.so is an ELF file for x86_64, but this process is "
                     r"aarch64", wrong.message), wrong.message
    # what ld.so itself said: the same words as for a missing file
    said = wrong.evidence["exception"]["message"]
    assert "cannot open shared object file: No such file or directory" in said, said

    pyaho = _check(corpus_run, "linux-arm64-docker", "wheel.pyahocorasick")
    assert "pyahocorasick==2.0.0" in pyaho.message and "aarch64" in pyaho.message

    for lane_id in LANES:
        segv = _check(corpus_run, lane_id, "segv_checks.first")
        assert segv.evidence["signal"] == "SIGSEGV", lane_id
        assert "check_first" in segv.evidence["stderr_tail"]  # faulthandler names the check's frame

        hang = _check(corpus_run, lane_id, "hang_checks.deadlock")
        assert hang.message == f"no result within {HANG_TIMEOUT} s", lane_id
        assert HANG_TIMEOUT <= hang.duration_s < HANG_TIMEOUT + 30, (lane_id, hang.duration_s)

        blas = _check(corpus_run, lane_id, "wrongblas_checks.matmul")
        # forwarded exactly while disarmed (so numpy really called the interposer), wrong once armed
        assert blas.metrics["forwarded.max_abs_err"] == 0.0, lane_id
        assert re.match(r"c\[\d+\] = \S+, expected \S+ \(rtol=1e-09", blas.message), blas.message
        assert 1e-7 < blas.metrics["c.max_abs_err"] < 1e-3, (lane_id, blas.metrics["c.max_abs_err"])

        omp = _check(corpus_run, lane_id, "ompdup_checks.second_runtime")
        assert omp.evidence["signal"] == "SIGABRT", lane_id
        assert omp.message.startswith("OMP: Error #15: Initializing libomp.so.5, but found libomp.so.5 "
                                      "already initialized"), (lane_id, omp.message)


def test_a_hang_leaves_no_process_or_container_behind(corpus_run: Run, host: HostFacts) -> None:
    import docker

    # host and noavx lanes run on this host: the check and its worker were killed
    pidfile = corpus_run.results.parent / "hang-pids"
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 4, pids  # (check, worker) × (host, noavx); containers do not see the file
    assert [pid for pid in pids if _alive(pid)] == []
    # nothing of this run is still running (every host-side suite process names its results dir)
    assert _processes_mentioning(str(corpus_run.results)) == []
    # the container lanes' containers are gone with everything that ran in them
    client = docker.from_env()
    for lane_id in ("linux-amd64-docker", "linux-arm64-docker"):
        tag = corpus_run.lane(lane_id).facts["runner"]["image"]
        client.images.get(tag)  # the filter below only means something if the image exists
        assert client.containers.list(all=True, filters={"ancestor": tag}) == [], tag


def test_bring_your_own_package_reaches_every_lane(corpus_run: Run) -> None:
    """--wheel and --checks-module (host paths, relative to the cwd) work in the container lanes too."""
    for lane_id in LANES:
        lane = corpus_run.lane(lane_id)
        assert lane.facts["packages"]["avx2ext"] == "1.0", lane_id
        if lane_id != "linux-x86_64-noavx":
            assert _check(corpus_run, lane_id, "avx2_checks.add_epi32").metrics == {"sum": 72}, lane_id
    # an x86-64 container imported the user's extension through the user's check module
    assert _check(corpus_run, "linux-amd64-docker", "wrongarch_checks.answer").metrics == {"answer": 42}
    # the wheel rows name the file that was installed, chosen per platform
    for lane_id, arch in (("linux-arm64-docker", "aarch64"), ("linux-amd64-docker", "x86_64")):
        assert _check(corpus_run, lane_id, "wheel.segv").message == f"segv-1.0-cp311-abi3-linux_{arch}.whl"
    assert "avx2_checks.add_epi32" in corpus_run.proc.stdout  # the terminal table shows the user's rows


# --- numpy without its OpenBLAS ----------------------------------------------------------------


def test_numpy_without_openblas_every_cell(no_openblas_run: Run) -> None:
    assert no_openblas_run.proc.returncode == 1, no_openblas_run.proc.stderr[-4000:]
    assert_table(no_openblas_run, NO_OPENBLAS_EXPECTED)
    for lane_id in LANES:
        lane = no_openblas_run.lane(lane_id)
        assert lane.facts["packages"]["numpy"] == "2.4.6+noopenblas", lane_id
        assert _check(no_openblas_run, lane_id, "wheel.numpy").message.startswith("numpy-2.4.6+noopenblas-")
        for check_id, row in NO_OPENBLAS_EXPECTED.items():
            if row[0] == B:
                message = _check(no_openblas_run, lane_id, check_id).message
                assert re.search(r"libscipy_openblas64_-\w+\.so: cannot open shared object file", message), (
                    lane_id, check_id, message)


# --- helpers -----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie waiting for init has already stopped running


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and _alive(int(proc.name)):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def _maybe_write_example(run: Run, name: str, tmp: Path,
                         expected: Mapping[str, tuple[str, str, str, str]]) -> None:
    """With ARCHMATRIX_WRITE_EXAMPLE=1, commit-ready: the merged matrix without this machine's paths."""
    if os.environ.get("ARCHMATRIX_WRITE_EXAMPLE") != "1":
        return
    assert_table(run, expected)  # only a run that shows what the tests expect becomes the example
    text = (run.results / "matrix.json").read_text()
    for path, replacement in ((str(tmp), "/tmp/corpus"), (f"{ROOT}/", ""), (str(ROOT), "."),
                              (str(Path.home()), "~")):
        text = text.replace(json.dumps(path)[1:-1], replacement)
    (EXAMPLE / name).write_text(text)
