"""The performance probes (issue 8): sizing, knee, recommendation from injected timings;
probes never fail a lane; ``checks.exclude`` / ``--no-probes`` leave them out.

The real pool and matmul runs here use tiny budgets (well under a second).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from archmatrix import cli
from archmatrix.config import PROBE_PATTERN, ConfigError, parse, without_probes
from archmatrix.suite.checks import perf
from archmatrix.suite.engine.supervise import demote, run_checks
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.registry import Check, CheckContext, builtin_checks, select
from archmatrix.suite.result import CheckResult

# ---------------------------------------------------------------- sizing


def test_matmul_size_takes_the_budget() -> None:
    # 2n³ flops at 60 GFLOP/s in 1/3 s: n = (60e9 / 3 / 2) ** (1/3) ≈ 2154 → 2160 (a multiple of 16)
    n = perf.matmul_size(60e9, 1 / 3)
    assert n == 2160
    assert 2 * n**3 / 60e9 == pytest.approx(1 / 3, rel=0.02)


def test_matmul_size_is_clamped_and_rounded() -> None:
    assert perf.matmul_size(0.35e9, 1 / 3) == 384  # the no-AVX lane under QEMU measured 0.35 GFLOP/s
    assert perf.matmul_size(1e3, 1.0) == perf.MATMUL_N_LIMITS[0]
    assert perf.matmul_size(1e15, 1.0) == perf.MATMUL_N_LIMITS[1]
    assert perf.matmul_size(0.0, 1.0) == perf.MATMUL_N_LIMITS[0]
    assert all(perf.matmul_size(r, 0.3) % 16 == 0 for r in (1e8, 3e9, 7e10))


def test_pool_sizes_go_to_twice_the_cpus() -> None:
    assert perf.pool_sizes(2) == [1, 2, 3, 4]
    assert perf.pool_sizes(8) == list(range(1, 17))
    assert perf.pool_sizes(0) == [1, 2]


def test_pool_sizes_on_big_machines_are_spread() -> None:
    sizes = perf.pool_sizes(64)
    assert sizes[:2] == [1, 2] and sizes[-1] == 128 and 64 in sizes
    assert len(sizes) <= perf.MAX_POOL_SIZES + 2 and sizes == sorted(set(sizes))
    assert perf.pool_sizes(12)[:2] == [1, 2] and 12 in perf.pool_sizes(12)
    # the knee logic works on uneven steps: gains are per added worker
    throughput = [min(p, 64) * 10.0 for p in sizes]
    assert perf.scaling_knee(sizes, throughput) == 64


def test_pool_work_fits_the_budget() -> None:
    # 2 CPUs: sizes 1..4 cost 1 + 1 + 1.5 + 2 = 5.5 tasks' time per wave round
    iterations = perf.pool_unit_iterations(20e6, 2, budget_s=1.5, waves=3)
    task_s = iterations / 20e6
    assert 3 * 5.5 * task_s == pytest.approx(1.5, rel=1e-3)
    # an emulated lane 10× slower gets 10× less work, so the same wall time
    assert perf.pool_unit_iterations(2e6, 2, 1.5, 3) == pytest.approx(iterations / 10, rel=1e-3)
    assert perf.pool_unit_iterations(1.0, 2, 1.5) == 1000  # never a degenerate task


def test_calibrate_doubles_until_the_target() -> None:
    seen: list[int] = []

    def work(size: int) -> float:  # 1 µs per iteration
        seen.append(size)
        return size * 1e-6

    size, seconds = perf.calibrate(work, 10_000, target_s=0.05)
    assert seen == [10_000, 20_000, 40_000, 80_000]
    assert (size, seconds) == (80_000, pytest.approx(0.08))


# ---------------------------------------------------------------- knee and recommendation

TWO_CORES = [1, 2, 3, 4]


def test_knee_of_a_clean_two_core_curve() -> None:
    throughput = [10.0, 19.8, 20.1, 19.9]
    assert perf.scaling_knee(TWO_CORES, throughput) == 2
    assert perf.recommended_workers(TWO_CORES, throughput, knee=2) == 2


def test_knee_of_the_m1_curve_counts_the_efficiency_cores() -> None:
    # the study's M1: 4 performance cores, then 4 efficiency cores at a third of the speed, then flat
    sizes = list(range(1, 17))
    throughput = [1, 2, 3, 4, 4.33, 4.66, 5.0, 5.33, 5.3, 5.35, 5.28, 5.31, 5.33, 5.29, 5.3, 5.32]
    knee = perf.scaling_knee(sizes, throughput)
    assert knee == 8
    assert perf.recommended_workers(sizes, throughput, knee) == 8


def test_knee_steps_over_a_noisy_dip() -> None:
    # size 2 was disturbed; 3 and 4 show the CPUs were really there
    throughput = [10.0, 14.0, 29.5, 30.0, 29.0, 30.2]
    assert perf.scaling_knee([1, 2, 3, 4, 5, 6], throughput) == 3


def test_knee_of_a_flat_curve_is_one_worker() -> None:
    # a single usable CPU (or a host fully busy with another lane)
    assert perf.scaling_knee(TWO_CORES, [10.0, 10.2, 9.9, 10.1]) == 1
    assert perf.recommended_workers(TWO_CORES, [10.0, 10.2, 9.9, 10.1], knee=1) == 1


def test_knee_of_a_curve_still_growing_is_the_largest_size() -> None:
    assert perf.scaling_knee(TWO_CORES, [10.0, 20.0, 30.0, 40.0]) == 4


def test_recommendation_takes_the_fewest_workers_near_the_best() -> None:
    # the knee is 3 (it still gained 15 % of a worker), but 2 workers are within 5 % of it
    throughput = [10.0, 19.8, 20.3, 20.0]
    knee = perf.scaling_knee(TWO_CORES, throughput, min_gain=0.04)
    assert knee == 3
    assert perf.recommended_workers(TWO_CORES, throughput, knee) == 2


def test_knee_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError):
        perf.scaling_knee([1, 2], [1.0])
    with pytest.raises(ValueError):
        perf.scaling_knee([], [])


def test_summarise_scaling_from_injected_waves() -> None:
    # 2 CPUs, 1e6 iterations a task taking 0.1 s of CPU; two waves per size
    waves = []
    for size, wall in ((1, 0.1), (2, 0.1), (3, 0.15), (4, 0.2)):
        waves += [perf.Wave(size, wall, [0.1] * size)] * 2
    result = perf.summarise_scaling(waves, 1_000_000, cpus=2)
    assert result.sizes == [1, 2, 3, 4]
    assert result.throughput == pytest.approx([10.0, 20.0, 20.0, 20.0])
    assert (result.knee, result.recommended) == (2, 2)
    assert result.cpu_share == pytest.approx(1.0)
    assert result.per_cpu_rate == pytest.approx(10.0)


def test_summarise_scaling_sees_a_busy_host() -> None:
    # another lane takes half of every CPU: tasks need twice their CPU time in wall time
    waves = [perf.Wave(1, 0.2, [0.1]), perf.Wave(2, 0.2, [0.1, 0.1]),
             perf.Wave(3, 0.3, [0.1] * 3), perf.Wave(4, 0.4, [0.1] * 4)]
    result = perf.summarise_scaling(waves, 1_000_000, cpus=2)
    assert result.cpu_share == pytest.approx(0.5)
    # the per-CPU rate is measured in CPU time: the neighbour does not change it
    assert result.per_cpu_rate == pytest.approx(10.0)


# ---------------------------------------------------------------- real, tiny runs


def test_pool_scan_really_runs_every_size() -> None:
    waves = perf.run_pool_scan(2000, cpus=1, waves=2, limit_s=60)
    assert [w.size for w in waves] == [1, 1, 2, 2]
    assert all(len(w.cpu_s) == w.size and w.wall_s > 0 for w in waves)


def test_pool_scan_is_bounded() -> None:
    with pytest.raises(perf.ProbeTimeout):
        perf.run_pool_scan(50_000_000, cpus=1, waves=1, limit_s=0.3)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork context is Linux's")
def test_pool_uses_fork_on_linux() -> None:
    # qemu-user follows fork but not exec: spawned workers would escape the emulator
    assert perf.pool_context().get_start_method() == "fork"


def test_pool_probe_records_its_curve() -> None:
    ctx = CheckContext(options={"perf.pool_budget_s": 0.1})
    perf.pool_scaling(ctx)
    m = ctx.metrics
    cpus = perf.usable_cpus()
    assert m["pool_sizes"] == [float(p) for p in perf.pool_sizes(cpus)]
    assert len(m["throughput_mcos_s"]) == len(perf.pool_sizes(cpus))  # type: ignore[arg-type]
    assert 1 <= int(m["recommended_workers"]) <= int(m["knee"]) <= 2 * cpus  # type: ignore[arg-type]
    assert m["calibration.cpu_s"] >= perf.CALIBRATION_S  # type: ignore[operator]
    assert float(m["per_cpu_mcos_s"]) > 0  # type: ignore[arg-type]


def test_matmul_probe_records_gflops_per_dtype() -> None:
    pytest.importorskip("numpy")
    ctx = CheckContext(options={"perf.matmul_budget_s": 0.05})
    perf.matmul(ctx)
    m = ctx.metrics
    assert isinstance(m["n"], int) and m["n"] % 16 == 0
    for dtype in ("float64", "float32"):
        assert float(m[f"{dtype}.gflops"]) > 0  # type: ignore[arg-type]
        assert float(m[f"{dtype}.seconds"]) > 0  # type: ignore[arg-type]
    assert m["calibration.n"][0] == 128  # type: ignore[index]


def test_matmul_speed_is_the_best_repetition() -> None:
    # the first product at a new size is slow (buffers, page faults): not the BLAS's speed
    t = perf.MatmulTiming(n=1000, cpu_s=[0.08, 0.04, 0.05], wall_s=[0.1, 0.08, 0.06])
    assert t.gflops == pytest.approx(50.0)  # 2e9 flops in 0.04 s
    assert t.gflops_wall == pytest.approx(2e9 / 0.06 / 1e9)
    assert perf.MatmulTiming(10, [0.0], [0.0]).gflops == 0.0
    assert perf.MatmulTiming(10, [], []).gflops == 0.0


# ---------------------------------------------------------------- probes only inform


def test_probes_are_registered_last_and_informational() -> None:
    checks = builtin_checks()
    probes = [c for c in checks if c.id.startswith("perf.")]
    assert [c.id for c in probes] == ["perf.matmul", "perf.pool_scaling"]
    assert all(c.informational for c in probes)
    assert [c.id for c in checks[-2:]] == ["perf.matmul", "perf.pool_scaling"]
    assert not any(c.informational for c in checks if not c.id.startswith("perf."))


@pytest.mark.parametrize("outcome", [Outcome.TIMEOUT, Outcome.ERROR, Outcome.SEGFAULT])
def test_a_failed_probe_is_reported_but_skipped(outcome: Outcome) -> None:
    result = demote(CheckResult("perf.matmul", outcome, 3.0, message="no result within 180 s"))
    assert result.outcome is Outcome.SKIPPED
    assert result.message == f"probe did not complete ({outcome.value}): no result within 180 s"
    assert result.evidence["probe_outcome"] == outcome.value


def test_a_passing_probe_is_left_alone() -> None:
    result = demote(CheckResult("perf.matmul", Outcome.PASS, metrics={"n": 64}))
    assert result.outcome is Outcome.PASS and "probe_outcome" not in result.evidence


def _raises(ctx: CheckContext) -> None:
    raise RuntimeError("the pool broke")


def test_supervisor_demotes_only_informational_checks() -> None:
    checks = [Check("perf.broken", _raises, informational=True), Check("linalg.broken", _raises)]
    results = {r.id: r for r in run_checks(checks, default_timeout=30)}
    assert results["perf.broken"].outcome is Outcome.SKIPPED
    assert "the pool broke" in results["perf.broken"].message
    assert results["linalg.broken"].outcome is Outcome.ERROR


def _hangs(ctx: CheckContext) -> None:
    import time

    time.sleep(60)


def test_a_hanging_probe_ends_at_its_timeout_as_skipped() -> None:
    (result,) = run_checks([Check("perf.hang", _hangs, informational=True)], default_timeout=0.5)
    assert result.outcome is Outcome.SKIPPED
    assert result.evidence["probe_outcome"] == "timeout"
    assert result.duration_s < 10


# ---------------------------------------------------------------- switching probes off


def test_select_with_exclude() -> None:
    checks = builtin_checks()
    kept = select(checks, ["*"], ["perf.*"])
    assert kept and not any(c.id.startswith("perf.") for c in kept)
    assert len(kept) == len(checks) - 2
    assert [c.id for c in select(checks, ["perf.*", "import.numpy"], ["perf.pool*"])] == [
        "import.numpy", "perf.matmul"]
    assert select(checks, None) == checks  # no exclude: as before
    assert select(checks, None, []) == checks


CONFIG = """\
lock:
  python: "3.11"
  packages: {numpy: "2.4.6"}
checks:
  exclude: ["perf.*"]
lanes:
  - {id: host, runner: venv}
"""


def test_config_exclude_reaches_the_suite_spec() -> None:
    cfg = parse(CONFIG, Path("m.yaml"))
    assert cfg.checks.exclude == ("perf.*",)
    assert cfg.checks.suite_spec()["exclude"] == ["perf.*"]
    assert parse(CONFIG.replace('  exclude: ["perf.*"]\n', "  timeout: 10\n"),
                 Path("m.yaml")).checks.suite_spec()["exclude"] == []


def test_config_exclude_must_be_a_list_of_strings() -> None:
    with pytest.raises(ConfigError, match=r"m.yaml:5:3: checks.exclude: expected a list"):
        parse(CONFIG.replace('["perf.*"]', '"perf.*"'), Path("m.yaml"))
    with pytest.raises(ConfigError, match=r"perhaps you meant 'exclude'"):
        parse(CONFIG.replace("exclude:", "exlude:"), Path("m.yaml"))


def test_without_probes_adds_the_pattern_once() -> None:
    cfg = parse(CONFIG.replace('  exclude: ["perf.*"]\n', "  timeout: 10\n"), Path("m.yaml"))
    quick = without_probes(cfg)
    assert quick.checks.exclude == (PROBE_PATTERN,)
    assert without_probes(quick) == quick
    assert cfg.checks.exclude == ()  # frozen: the original is unchanged


def test_cli_has_no_probes() -> None:
    args = cli.parser().parse_args(["matrix", "--no-probes"])
    assert args.no_probes is True
    assert cli.parser().parse_args(["lane", "host"]).no_probes is False


def test_suite_lists_without_probes(capsys: pytest.CaptureFixture[str]) -> None:
    from archmatrix.suite.__main__ import main

    assert main(["--list", "--exclude", "perf.*"]) == 0
    listed = capsys.readouterr().out
    assert "linalg.solve" in listed and "perf." not in listed
    assert main(["--list", "--spec", '{"checks": ["perf.*"]}']) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("perf.matmul\t")


def test_nan_share_is_not_reported_as_busy() -> None:
    # no wave at or below the CPU count (cannot happen with size 1 first, but stay safe)
    result = perf.summarise_scaling([perf.Wave(3, 0.3, [0.1] * 3)], 1000, cpus=2)
    assert math.isnan(result.cpu_share)
