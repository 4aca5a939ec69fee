"""``ci/matrix.yaml`` validation: every error is one line with file:line:col and the key path (issue 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from archmatrix import cli
from archmatrix.config import ConfigError, load, parse
from archmatrix.runners import RUNNERS
from archmatrix.suite.registry import DEFAULT_TOLERANCES, Tolerance

ROOT = Path(__file__).resolve().parents[2]
REAL_CONFIG = ROOT / "ci" / "matrix.yaml"
WHERE = Path("ci/matrix.yaml")

# Line numbers below are 1-based positions in this text: keep it in sync with the tests.
BASE = """\
lock:
  python: "3.11"
  packages:
    numpy: "2.4.6"
    scipy: "1.17.1"

checks:
  timeout: 180

lanes:
  - id: host
    runner: venv
    required: true

  - id: linux-x86_64-noavx
    runner: qemu
    required: false
    options:
      cpu_profile: rosetta2
"""


def variant(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, WHERE)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# ---------------------------------------------------------------- valid configurations


def test_base_parses_to_frozen_values() -> None:
    cfg = parse(BASE, WHERE)
    assert cfg.path == WHERE
    assert cfg.lock.python == "3.11"
    assert dict(cfg.lock.packages) == {"numpy": "2.4.6", "scipy": "1.17.1"}
    assert cfg.checks.timeout == 180.0
    assert cfg.checks.select == ("*",)
    assert dict(cfg.checks.tolerances) == DEFAULT_TOLERANCES
    assert [(ln.id, ln.runner, ln.required) for ln in cfg.lanes] == [
        ("host", "venv", True),
        ("linux-x86_64-noavx", "qemu", False),
    ]
    assert cfg.lanes[1].options == {"cpu_profile": "rosetta2"}
    assert cfg.lanes[1].cpu_profile is not None and cfg.lanes[1].cpu_profile.qemu_cpu == "Westmere"
    assert cfg.lanes[0].cpu_profile is None
    assert cfg.parallel is None
    with pytest.raises(AttributeError):
        cfg.lanes[0].id = "other"  # type: ignore[misc]


def test_checks_section_and_custom_profiles() -> None:
    text = BASE.replace(
        "checks:\n  timeout: 180\n",
        """\
checks:
  select: ["import.*", "linalg.*"]
  timeout: 30
  timeouts: {linalg.svd: 90}
  tolerances:
    float32: {rtol: 1.0e-3, atol: 0}
  drift_rtol: 1.0e-8
parallel: 2
cpu_profiles:
  graviton3:
    arch: aarch64
    qemu_cpu: neoverse-v1
""",
    ).replace("cpu_profile: rosetta2", "cpu_profile: graviton3")
    cfg = parse(text, WHERE)
    assert cfg.checks.select == ("import.*", "linalg.*")
    assert cfg.checks.timeouts == {"linalg.svd": 90.0}
    assert cfg.checks.tolerances["float32"] == Tolerance(1e-3, 0.0)
    assert cfg.checks.tolerances["float64"] == DEFAULT_TOLERANCES["float64"]  # untouched default
    assert cfg.checks.drift_rtol == 1e-8
    assert cfg.parallel == 2
    assert "rosetta2" in cfg.cpu_profiles  # defaults stay
    profile = cfg.lanes[1].cpu_profile
    assert profile is not None and (profile.arch, profile.qemu_cpu) == ("aarch64", "neoverse-v1")
    spec = cfg.checks.suite_spec()
    assert spec["checks"] == ["import.*", "linalg.*"]
    assert spec["tolerances"]["float32"] == {"rtol": 1e-3, "atol": 0.0}


def test_lane_lookup_suggests_the_nearest_id() -> None:
    cfg = parse(BASE, WHERE)
    assert cfg.lane("host").runner == "venv"
    with pytest.raises(ConfigError, match=r"no lane 'hots' \(perhaps you meant 'host'\?\)"):
        cfg.lane("hots")


def test_the_real_config_parses() -> None:
    data = yaml.safe_load(REAL_CONFIG.read_text(encoding="utf-8"))
    missing = sorted({ln["runner"] for ln in data["lanes"]} - set(RUNNERS))
    if missing:
        pytest.skip(
            f"ci/matrix.yaml names runners not registered yet: {', '.join(missing)} "
            "(test_the_real_config_with_registered_runners covers the rest)"
        )
    cfg = load(REAL_CONFIG)
    assert "host" in [ln.id for ln in cfg.lanes]


def test_the_real_config_with_registered_runners(tmp_path: Path) -> None:
    """ci/matrix.yaml minus lanes whose runner has not landed yet (see the test above)."""
    data = yaml.safe_load(REAL_CONFIG.read_text(encoding="utf-8"))
    data["lanes"] = [ln for ln in data["lanes"] if ln["runner"] in RUNNERS]
    copy = tmp_path / "matrix.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    cfg = load(copy)
    assert cfg.lock.python == "3.11"
    assert {"numpy", "scipy", "scikit-learn", "threadpoolctl"} <= set(cfg.lock.packages)
    assert all(v[0].isdigit() for v in cfg.lock.packages.values())
    ids = [ln.id for ln in cfg.lanes]
    assert ids[0] == "host"
    assert len(ids) == len(set(ids))
    assert cfg.checks.tolerances["float64"].rtol <= 1e-6
    noavx = [ln for ln in cfg.lanes if ln.id == "linux-x86_64-noavx"]
    if noavx:  # the Rosetta 2 condition: an x86-64 CPU without AVX
        assert noavx[0].cpu_profile is not None and noavx[0].cpu_profile.name == "rosetta2"


# ---------------------------------------------------------------- errors: file:line:col: path: what


def test_yaml_syntax_error_names_line_and_column() -> None:
    message = error_of(variant("  timeout: 180", "\ttimeout: 180"))
    assert message.startswith("ci/matrix.yaml:8:1: YAML syntax error: ")
    assert "'\\t'" in message


def test_yaml_syntax_error_in_flow_mapping() -> None:
    message = error_of(variant("      cpu_profile: rosetta2", "      {cpu_profile: rosetta2"))
    assert message.startswith("ci/matrix.yaml:")
    assert "YAML syntax error" in message


def test_unclosed_quote_points_at_the_quote() -> None:
    message = error_of(variant('    scipy: "1.17.1"', '    scipy: "1.17.1'))
    assert message.startswith("ci/matrix.yaml:5:")


def test_unknown_top_level_key_suggests() -> None:
    message = error_of(variant("lanes:", "lanse:"))
    assert message.startswith("ci/matrix.yaml:10:1: lanse: unknown key (perhaps you meant 'lanes'?)")
    assert "valid keys: lock, checks, lanes" in message


def test_unknown_lane_key_suggests() -> None:
    message = error_of(variant("    required: true", "    requried: true"))
    assert message.startswith(
        "ci/matrix.yaml:13:5: lanes[0].requried: unknown key (perhaps you meant 'required'?)"
    )


def test_unknown_runner_option() -> None:
    message = error_of(
        variant("      cpu_profile: rosetta2", "      cpu_profile: rosetta2\n      cpu_profiel: x")
    )
    assert message.startswith(
        "ci/matrix.yaml:20:7: lanes[1].options.cpu_profiel: unknown key (perhaps you meant 'cpu_profile'?)"
    )


def test_option_of_another_runner_is_unknown() -> None:
    # platform is a docker option; the venv runner has no such thing
    message = error_of(
        variant("    required: true", "    required: true\n    options: {platform: linux/amd64}")
    )
    assert message.startswith("ci/matrix.yaml:14:15: lanes[0].options.platform: unknown key")


def test_wrong_type() -> None:
    message = error_of(variant("timeout: 180", 'timeout: "fast"'))
    assert message == "ci/matrix.yaml:8:3: checks.timeout: expected a number, found a string ('fast')"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    required: true",
            "    required: maybe",
            "ci/matrix.yaml:13:5: lanes[0].required: expected true or false, found a string ('maybe')",
        ),
        ("timeout: 180", "timeout: -1", "ci/matrix.yaml:8:3: checks.timeout: expected a positive number"),
        (
            "timeout: 180",
            "timeout: true",
            "ci/matrix.yaml:8:3: checks.timeout: expected a number, found true",
        ),
        ("  - id: host", "  - id: Host Lane", "ci/matrix.yaml:11:5: lanes[0].id: use lower-case letters"),
        (
            "    runner: venv\n",
            "    runner: [venv]\n",
            "ci/matrix.yaml:12:5: lanes[0].runner: expected a string, found a list",
        ),
        (
            '    numpy: "2.4.6"',
            "    numpy: latest",
            "ci/matrix.yaml:4:5: lock.packages.numpy: expected an exact version",
        ),
        (
            '  python: "3.11"',
            '  python: "3"',
            'ci/matrix.yaml:2:3: lock.python: expected a version like "3.11"',
        ),
        (
            "    options:\n",
            "    options:\n      python: 3.11\n",
            "ci/matrix.yaml:19:7: lanes[1].options.python: expected a string, found a number (3.11)",
        ),
    ],
    ids=[
        "bool",
        "negative",
        "bool-for-number",
        "lane-id",
        "list-for-str",
        "version",
        "python",
        "option-type",
    ],
)
def test_wrong_values(old: str, new: str, expected: str) -> None:
    assert error_of(variant(old, new)).startswith(expected)


def test_unknown_runner_suggests() -> None:
    message = error_of(variant("runner: venv", "runner: vnev"))
    assert message.startswith(
        "ci/matrix.yaml:12:5: lanes[0].runner: unknown runner 'vnev' (perhaps you meant 'venv'?); runners: "
    )
    assert "venv" in message.rsplit("runners: ", 1)[1]


def test_duplicate_lane_id() -> None:
    message = error_of(variant("id: linux-x86_64-noavx", "id: host"))
    assert message == "ci/matrix.yaml:15:5: lanes[1].id: lane 'host' is listed twice"


def test_unquoted_python_version() -> None:
    message = error_of(variant('python: "3.11"', "python: 3.11"))
    assert message == 'ci/matrix.yaml:2:3: lock.python: quote the version ("3.11"): YAML reads it as a number'


def test_unquoted_package_version() -> None:
    message = error_of(variant('numpy: "2.4.6"', "numpy: 2"))
    assert (
        message
        == 'ci/matrix.yaml:4:5: lock.packages.numpy: quote the version ("2"): YAML reads it as a number'
    )


def test_unquoted_python_version_keeps_its_trailing_zero() -> None:
    message = error_of(variant('python: "3.11"', "python: 3.10"))
    assert '("3.10")' in message


def test_unknown_cpu_profile_suggests() -> None:
    message = error_of(variant("cpu_profile: rosetta2", "cpu_profile: rosseta2"))
    assert message.startswith(
        "ci/matrix.yaml:19:7: lanes[1].options.cpu_profile: unknown CPU profile "
        "'rosseta2' (perhaps you meant 'rosetta2'?); profiles: rosetta2"
    )


def test_missing_required_keys() -> None:
    assert error_of("") == "ci/matrix.yaml: (top level): missing required key 'lock'"
    message = error_of(variant("    runner: venv\n", ""))
    assert message.startswith("ci/matrix.yaml:11:5: lanes[0]: missing required key 'runner'")
    assert error_of(BASE.split("lanes:")[0] + "lanes: []\n").startswith(
        "ci/matrix.yaml:10:1: lanes: the matrix needs at least one lane"
    )


def test_top_level_must_be_a_mapping() -> None:
    assert error_of("- host\n- qemu\n").startswith("ci/matrix.yaml:1:1: (top level): expected a mapping")


def test_bad_custom_profile() -> None:
    text = BASE + "cpu_profiles:\n  pi5:\n    arch: arm64\n    qemu_cpu: cortex-a76\n"
    assert error_of(text).startswith("ci/matrix.yaml:22:5: cpu_profiles.pi5.arch: expected x86_64 or aarch64")


def test_parallel_must_be_positive() -> None:
    assert error_of(BASE + "parallel: 0\n").startswith("ci/matrix.yaml:20:1: parallel: expected 1 or more")


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load(Path("/nonexistent/matrix.yaml"))


# ---------------------------------------------------------------- the CLI: exit 2, one line on stderr

CLI_CASES = {
    "yaml-syntax": (("  timeout: 180", "\ttimeout: 180"), ":8:1: YAML syntax error"),
    "unknown-top-level-key": (("lanes:", "lanse:"), ":10:1: lanse: unknown key (perhaps you meant 'lanes'?)"),
    "unknown-lane-key": (
        ("    required: true", "    requried: true"),
        ":13:5: lanes[0].requried: unknown key",
    ),
    "unknown-runner-option": (
        ("      cpu_profile: rosetta2", "      cpu_profile: rosetta2\n      cpus: 4"),
        ":20:7: lanes[1].options.cpus: unknown key",
    ),
    "wrong-type": (("timeout: 180", 'timeout: "fast"'), ":8:3: checks.timeout: expected a number"),
    "unknown-runner": (
        ("runner: venv", "runner: vnev"),
        ":12:5: lanes[0].runner: unknown runner 'vnev' (perhaps you meant 'venv'?)",
    ),
    "duplicate-lane": (
        ("id: linux-x86_64-noavx", "id: host"),
        ":15:5: lanes[1].id: lane 'host' is listed twice",
    ),
    "unquoted-python": (('python: "3.11"', "python: 3.11"), ':2:3: lock.python: quote the version ("3.11")'),
    "unknown-cpu-profile": (
        ("cpu_profile: rosetta2", "cpu_profile: westmere"),
        ":19:7: lanes[1].options.cpu_profile: unknown CPU profile 'westmere'",
    ),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_plan_config_error(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (old, new), expected = CLI_CASES[name]
    config = tmp_path / "matrix.yaml"
    config.write_text(variant(old, new), encoding="utf-8")
    code = cli.main(["plan", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"archmatrix: config error: {config}{expected}"), lines[0]


def test_cli_plan_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["plan", "--config", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"archmatrix: config error: {tmp_path / 'nope.yaml'}: no such configuration file\n"


def test_cli_plan_valid_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid config gets past validation to the plan table (this one asks the real host, briefly)."""
    config = tmp_path / "matrix.yaml"
    config.write_text(BASE, encoding="utf-8")
    code = cli.main(["plan", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "config error" not in err
    rows = [line.split()[:2] for line in out.splitlines()]
    assert ["host", "venv"] in rows
    assert ["linux-x86_64-noavx", "qemu"] in rows
