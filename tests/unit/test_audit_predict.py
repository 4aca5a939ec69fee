"""Lanes as the audit sees them, lane choice, the predicted-vs-actual view, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_fixtures import AVX2_HOST, build, targets

from archmatrix import cli
from archmatrix.audit.predict import (
    NO_AVX,
    NO_SVE,
    HostCpu,
    Prediction,
    detect_host_cpu,
    lane_target,
    lane_targets,
)
from archmatrix.audit.render import compare, render, render_compare
from archmatrix.audit.report import audit
from archmatrix.config import LaneConfig, parse
from archmatrix.matrix import build as build_matrix
from archmatrix.profiles import DEFAULT_PROFILES, CpuProfile
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus

ARM_HOST = HostCpu("linux", "aarch64", NO_SVE)


def test_default_lanes_on_an_x86_linux_host() -> None:
    t = targets(AVX2_HOST)
    assert (t["host"].os, t["host"].arch, t["host"].missing) == ("linux", "x86_64", AVX2_HOST.missing)
    assert t["linux-amd64-docker"].missing == AVX2_HOST.missing  # native container: this CPU
    # emulated on the default config's Apple silicon profile: no SVE (binfmt QEMU's default "max" has it)
    assert (t["linux-arm64-docker"].arch, t["linux-arm64-docker"].missing) == ("aarch64", NO_SVE)
    assert t["linux-arm64-docker"].cpu == "qemu cortex-a76 (apple-silicon)"
    noavx, apple = t["linux-x86_64-noavx"], t["macos-arm64"]
    assert (noavx.missing, noavx.cpu) == (NO_AVX, "qemu Westmere (rosetta2)")
    assert (apple.os, apple.arch, apple.missing) == ("macos", "aarch64", NO_SVE)
    rosetta = t["macos-x86_64-rosetta"]
    assert (rosetta.os, rosetta.arch, rosetta.missing) == ("macos", "x86_64", NO_AVX)


def test_default_lanes_on_an_arm64_host() -> None:
    t = targets(ARM_HOST)
    assert t["linux-arm64-docker"].missing == NO_SVE and t["linux-arm64-docker"].cpu == "this host's CPU"
    assert t["linux-amd64-docker"].missing == frozenset()  # emulated amd64: QEMU max


def test_cpu_profiles_are_configuration() -> None:
    graviton2 = LaneConfig("graviton2", "docker",
                           options={"platform": "linux/arm64", "cpu_profile": "neoverse-n1"},
                           cpu_profile=DEFAULT_PROFILES["neoverse-n1"])
    target = lane_target(graviton2, AVX2_HOST)
    assert target is not None and (target.arch, target.missing) == ("aarch64", NO_SVE)
    odd = LaneConfig("odd", "qemu", cpu_profile=CpuProfile("odd", "x86_64", "Zen9000"))
    target = lane_target(odd, AVX2_HOST)
    assert target is not None and target.missing == frozenset() and "unknown model" in target.cpu
    assert lane_target(LaneConfig("x", "teleport"), AVX2_HOST) is None


def test_lanes_from_a_config_file(tmp_path: Path) -> None:
    cfg = parse(
        "lock: {python: '3.11', packages: {numpy: '2.4.6'}}\n"
        "lanes:\n"
        "  - {id: host, runner: venv}\n"
        "  - {id: pi4, runner: docker, options: {platform: linux/arm64, cpu_profile: armv8.0}}\n",
        tmp_path / "matrix.yaml")
    ids = {t.id: t for t in lane_targets(cfg.lanes, host=AVX2_HOST)}
    assert set(ids) == {"host", "pi4"} and ids["pi4"].missing == NO_SVE


@pytest.mark.parametrize(("machine", "cpuinfo", "missing"), [
    ("x86_64", "processor : 0\nflags : fpu sse sse2 avx avx2 fma bmi1 bmi2 f16c\n", {"AVX-512", "AMX"}),
    ("x86_64", "flags : fpu sse sse2 sse4_2 popcnt\n", set(NO_AVX)),
    ("x86_64", "flags : avx avx2 fma bmi1 f16c avx512f\n", {"BMI", "AMX"}),  # BMI needs bmi1 and bmi2
    ("aarch64", "Features : fp asimd sve\n", {"SVE2"}),
    ("aarch64", "Features : fp asimd\n", {"SVE", "SVE2"}),
    ("x86_64", "", set()),  # nothing to go on: assume everything, never cry wolf
])
def test_host_cpu_from_cpuinfo(machine: str, cpuinfo: str, missing: set[str]) -> None:
    cpu = detect_host_cpu(system="Linux", machine=machine, cpuinfo=cpuinfo)
    assert (cpu.os, cpu.arch, cpu.missing) == ("linux", machine, frozenset(missing))


def test_apple_silicon_host_has_no_sve() -> None:
    assert detect_host_cpu(system="Darwin", machine="arm64") == HostCpu("macos", "aarch64", NO_SVE)


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audit-envs")
    out = {}
    for name, source, flags in (("avx2", "avx2_plain.c", ("-mavx2",)), ("dispatch", "avx2_dispatch.c", ()),
                                ("plain", "plain.c", ())):
        env = root / name
        env.mkdir()
        build(env, source, *flags, name=f"{name}.cpython-311-x86_64-linux-gnu.so")
        out[name] = env
    return out


def _lane(lane_id: str, status: str = LaneStatus.RAN, **outcomes: Outcome) -> LaneResult:
    checks = [CheckResult(check_id.replace("_", "."), outcome) for check_id, outcome in outcomes.items()]
    return LaneResult(lane_id, "test", status=status, checks=checks, reason="" if status == LaneStatus.RAN
                      else "docker daemon not reachable")


def test_predicted_vs_actual(envs: dict[str, Path]) -> None:
    report = audit([envs["avx2"]], list(targets().values()))
    matrix = build_matrix([
        _lane("host", import_numpy=Outcome.PASS, avx2_add=Outcome.PASS),
        _lane("linux-x86_64-noavx", import_numpy=Outcome.PASS, avx2_add=Outcome.ILLEGAL_INSTRUCTION,
              linalg_svd=Outcome.NUMERIC_MISMATCH),
        _lane("linux-amd64-docker", status=LaneStatus.SKIPPED),
    ])
    rows = {r.lane: r for r in compare(report, matrix)}
    noavx = rows["linux-x86_64-noavx"]
    assert (noavx.predicted, noavx.actual, noavx.agree) == (Prediction.ILLEGAL_INSTRUCTION,
                                                            "illegal-instruction", True)
    assert "avx2.add" in noavx.note and "outside the audit: numeric-mismatch" in noavx.note
    host = rows["host"]
    assert (host.predicted, host.actual, host.agree) == (Prediction.PASS, "pass", True)
    assert rows["linux-amd64-docker"].agree is None and "skipped" in rows["linux-amd64-docker"].actual
    text = render_compare(list(rows.values()))
    assert "✔ yes" in text and "✘ illegal-instruction" in text

    # a lane that passed where the audit predicted a crash: disagreement, shown as such
    wrong = build_matrix([_lane("linux-x86_64-noavx", avx2_add=Outcome.PASS)])
    [row] = [r for r in compare(report, wrong) if r.lane == "linux-x86_64-noavx"]
    assert row.agree is False and "✘ no" in render_compare([row])


def test_guarded_environment_agrees_with_a_passing_lane(envs: dict[str, Path]) -> None:
    report = audit([envs["dispatch"]], list(targets().values()))
    assert report.lane_prediction("linux-x86_64-noavx") is Prediction.GUARDED
    matrix = build_matrix([_lane("linux-x86_64-noavx", dispatch_sum=Outcome.PASS)])
    [row] = [r for r in compare(report, matrix) if r.lane == "linux-x86_64-noavx"]
    assert (row.actual, row.agree) == ("pass", True)


def test_render_lists_notable_binaries_and_reasons(envs: dict[str, Path]) -> None:
    report = audit([envs["avx2"], envs["plain"]], list(targets().values()))
    text = render(report)
    assert "avx2.so" in text and "AVX AVX2" in text  # the ABI suffix is shortened
    assert "plain.so" not in text and "1 more binaries" in text
    assert "linux-x86_64-noavx: avx2.so: illegal-instruction: AVX/AVX2 with no CPU dispatch" in text
    assert "plain.so" in render(report, everything=True)


# ------------------------------------------------------------------ CLI


@pytest.fixture
def in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ci/matrix.yaml here: the audit uses the default lanes."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_cli_exit_1_on_a_predicted_crash(envs: dict[str, Path], in_empty_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["audit", str(envs["avx2"]), "--lane", "linux-x86_64-noavx"]) == 1
    out = capsys.readouterr().out
    assert "✘ illegal-instruction" in out and "linux-x86_64-noavx" in out


def test_cli_exit_0_when_guarded_or_plain(envs: dict[str, Path], in_empty_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["audit", str(envs["dispatch"]), str(envs["plain"]), "--lane", "linux-x86_64-noavx"]) == 0
    assert "◐ guarded" in capsys.readouterr().out


def test_cli_json(envs: dict[str, Path], in_empty_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["audit", str(envs["avx2"]), "--json", "--lane", "linux-x86_64-noavx", "--lane", "host"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["schema"] == "archmatrix/audit" and data["schema_version"] == 1
    assert [ln["id"] for ln in data["lanes"]] == ["linux-x86_64-noavx", "host"]
    assert data["lanes"][0]["prediction"] == "illegal-instruction"
    [binary] = data["binaries"]
    assert binary["images"][0]["extensions"]["AVX2"] > 0 and binary["images"][0]["guarded"] is False
    assert binary["predictions"]["linux-x86_64-noavx"]["prediction"] == "illegal-instruction"


def test_cli_compare(envs: dict[str, Path], in_empty_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    matrix_file = in_empty_dir / "matrix.json"
    build_matrix([_lane("linux-x86_64-noavx", avx2_add=Outcome.ILLEGAL_INSTRUCTION)]).save(matrix_file)
    assert cli.main(["audit", str(envs["avx2"]), "--lane", "linux-x86_64-noavx",
                     "--compare", str(matrix_file)]) == 1
    out = capsys.readouterr().out
    assert "predicted" in out and "✔ yes" in out
    cli.main(["audit", str(envs["avx2"]), "--lane", "linux-x86_64-noavx", "--compare", str(matrix_file),
              "--json"])
    assert json.loads(capsys.readouterr().out)["compare"][0]["agree"] is True


@pytest.mark.parametrize(("argv", "message"), [
    (["audit", "no/such/site-packages"],
     "archmatrix: audit: no/such/site-packages: no such file or directory"),
    (["audit", ".", "--lane", "linux-x86_64-noavxx"],
     "unknown lane 'linux-x86_64-noavxx' (perhaps you meant 'linux-x86_64-noavx'?)"),
    (["audit", ".", "--compare", "missing.json"],
     "archmatrix: audit: --compare missing.json: no such file or directory"),
])
def test_cli_usage_errors_are_one_line_exit_2(in_empty_dir: Path, capsys: pytest.CaptureFixture[str],
                                              argv: list[str], message: str) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_unreadable_compare_matrix_exit_4(envs: dict[str, Path], in_empty_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (in_empty_dir / "bad.json").write_text("{not json")
    assert cli.main(["audit", str(envs["plain"]), "--compare", "bad.json"]) == 4
    assert "bad.json" in capsys.readouterr().err
