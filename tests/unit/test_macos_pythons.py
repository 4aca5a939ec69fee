"""The macOS lanes per Python version (issue 18): each ``<lane>@<version>`` runs an interpreter of that
version — arm64 the host's, x86_64 one that runs translated — or is skipped with the fix.

Hand-built HostFacts and configs; nothing runs ``arch`` (this is Linux). The one real process is the
interpreter probe run by this Python without the ``arch`` prefix, and the reusable workflow's own
config-rewriting script.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from archmatrix import config as config_mod
from archmatrix.command import run
from archmatrix.config import ConfigError, parse
from archmatrix.hostfacts import INTERPRETER_PROBE, HostFacts, find_interpreters, x86_64_candidates
from archmatrix.plan import plan
from archmatrix.runners.macos import (
    PYTHON_ORG,
    interpreter_mismatch,
    lane_python,
    probe_command,
)
from archmatrix.workflows import MACOS_ARM64, github_lanes

ROOT = Path(__file__).resolve().parents[2]
WHERE = Path("matrix.yaml")
FRAMEWORK = "/Library/Frameworks/Python.framework/Versions/{v}/bin/python{v}"
OWN = "/opt/homebrew/bin/python3.11"  # archmatrix's own interpreter: arm64 only (Homebrew)
ARM_313 = "/Users/me/.pyenv/versions/3.13.0/bin/python3.13"
X86_311 = FRAMEWORK.format(v="3.11")
X86_313 = FRAMEWORK.format(v="3.13")

# An M1 with Rosetta, archmatrix on 3.11, a pyenv 3.13 (arm64) and python.org's universal2 3.11 and 3.13
M1 = HostFacts(system="Darwin", machine="aarch64", python=OWN, python_version="3.11", apple_silicon=True,
               rosetta=True, macos_version="14.6", interpreters={"3.13": ARM_313},
               x86_64_pythons={"3.11": (X86_311,), "3.13": (X86_313, "/usr/local/bin/python3.13")})
M1_ONLY_311 = replace(M1, interpreters={}, x86_64_pythons={"3.11": (X86_311,)})


def config_text(python: str, rosetta_options: str = "{arch: x86_64}") -> str:
    return f"""\
lock:
  python: {python}
  packages: {{numpy: "2.4.6"}}
lanes:
  - {{id: macos-arm64, runner: macos, required: false, options: {{arch: arm64}}}}
  - id: macos-x86_64-rosetta
    runner: macos
    required: false
    options: {rosetta_options}
"""


TWO = config_text('["3.11", "3.13"]')


# ------------------------------------------------------------------ per-version selection


def test_each_lane_and_version_gets_an_interpreter_of_that_version() -> None:
    cfg = parse(TWO, WHERE)
    chosen = {lane.id: lane_python(lane, M1) for lane in cfg.lanes}
    assert chosen == {
        "macos-arm64@3.11": OWN,  # archmatrix's own: it is 3.11
        "macos-arm64@3.13": ARM_313,  # the host's 3.13, not archmatrix's 3.11
        "macos-x86_64-rosetta@3.11": X86_311,
        "macos-x86_64-rosetta@3.13": X86_313,  # the best x86_64-capable 3.13 (python.org's first)
    }


def test_the_plan_says_which_interpreter_each_version_runs() -> None:
    planned = {p.lane.id: p.availability for p in plan(parse(TWO, WHERE), M1)}
    assert all(a.ok for a in planned.values())
    assert planned["macos-arm64@3.13"].reason == f"native: arch -arm64 {ARM_313}"
    assert planned["macos-x86_64-rosetta@3.13"].reason == f"translated by Rosetta 2: arch -x86_64 {X86_313}"


def test_a_single_version_lock_is_as_before() -> None:
    cfg = parse(config_text('"3.13"'), WHERE)
    assert [lane.id for lane in cfg.lanes] == ["macos-arm64", "macos-x86_64-rosetta"]
    assert lane_python(cfg.lane("macos-arm64"), M1) == ARM_313
    assert lane_python(cfg.lane("macos-x86_64-rosetta"), M1) == X86_313


# ------------------------------------------------------------------ a version the host lacks


def test_a_version_without_an_x86_64_interpreter_skips_only_that_lane_with_the_installer() -> None:
    planned = {p.lane.id: p.availability for p in plan(parse(TWO, WHERE), M1_ONLY_311)}
    assert planned["macos-x86_64-rosetta@3.11"].ok
    why = planned["macos-x86_64-rosetta@3.13"]
    assert not why.ok
    assert why.reason.startswith("no x86_64-capable Python 3.13 found (looked for "
                                 f"{X86_313}, /usr/local/bin/python3.13, ")
    assert "3.11" not in why.reason  # not archmatrix's own version: the lane's
    assert f"install the universal2 Python 3.13 from {PYTHON_ORG}" in why.hint
    assert 'lanes[].options.python ({"3.13": <path>}' in why.hint


def test_a_version_the_mac_lacks_skips_the_arm64_lane_with_the_fix() -> None:
    planned = {p.lane.id: p.availability for p in plan(parse(TWO, WHERE), M1_ONLY_311)}
    assert planned["macos-arm64@3.11"].ok
    why = planned["macos-arm64@3.13"]
    assert not why.ok
    assert why.reason.startswith("no Python 3.13 on this Mac (archmatrix runs on Python 3.11; ")
    for fix in (PYTHON_ORG, "brew install python@3.13", "pyenv install 3.13", "uv python install 3.13",
                "lanes[].options.python"):
        assert fix in why.hint


def test_an_intel_homebrew_311_is_no_x86_64_313() -> None:
    # the old detection knew only archmatrix's own version: 3.13 must be found for itself
    host = replace(M1, x86_64_pythons={"3.11": (X86_311,)})
    assert lane_python(parse(TWO, WHERE).lane("macos-x86_64-rosetta@3.13"), host) is None


# ------------------------------------------------------------------ options.python


def test_options_python_as_a_mapping_names_each_versions_interpreter() -> None:
    text = config_text('["3.11", "3.13"]', '{arch: x86_64, python: {"3.13": /opt/x86/bin/python3.13}}')
    cfg = parse(text, WHERE)
    assert lane_python(cfg.lane("macos-x86_64-rosetta@3.13"), M1) == "/opt/x86/bin/python3.13"
    # a version the mapping leaves out is detected as without the option
    assert lane_python(cfg.lane("macos-x86_64-rosetta@3.11"), M1) == X86_311
    assert lane_python(cfg.lane("macos-x86_64-rosetta@3.11"), M1_ONLY_311) == X86_311
    assert lane_python(cfg.lane("macos-x86_64-rosetta@3.13"), replace(M1, x86_64_pythons={})) \
        == "/opt/x86/bin/python3.13"


def test_a_single_path_is_one_interpreter_for_a_single_version() -> None:
    cfg = parse(config_text('"3.13"', "{arch: x86_64, python: /opt/x86/bin/python3}"), WHERE)
    assert lane_python(cfg.lane("macos-x86_64-rosetta"), M1) == "/opt/x86/bin/python3"


def _config_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, WHERE)
    return str(info.value)


def test_a_single_path_with_several_versions_is_a_located_config_error() -> None:
    message = _config_error(config_text('["3.11", "3.13"]', "{arch: x86_64, python: /opt/x86/bin/python3}"))
    assert re.match(r"matrix\.yaml:\d+:\d+: lanes\[1\]\.options\.python: ", message)
    assert "one interpreter cannot be Python 3.11 and 3.13" in message
    assert '{"3.11": /opt/x86/bin/python3}' in message  # the shape that works
    assert "\n" not in message


@pytest.mark.parametrize(("python", "expected"), [
    ("{3.13: /x/python3.13}", "quote the Python version: YAML reads it as the number 3.13"),
    ('{"3.12": /x/python3.12}', "3.12: lock.python lists no 3.12 (3.11, 3.13)"),
    ('{"three": /x/python3}', "keys are Python versions such as \"3.12\", found 'three'"),
    ('{"3.13": ""}', "3.13: expected an interpreter path, found ''"),
    ("[/x/python3]", "expected an interpreter path or a mapping of Python version to path"),
    ("{}", "expected an interpreter path or a mapping of Python version to path"),
    ('""', "expected an interpreter path, found an empty string"),
])
def test_bad_options_python_are_located_config_errors(python: str, expected: str) -> None:
    message = _config_error(config_text('["3.11", "3.13"]', f"{{arch: x86_64, python: {python}}}"))
    assert message.startswith("matrix.yaml:") and "lanes[1].options.python: " in message
    assert expected in message


def test_the_cli_reports_it_with_the_config_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_text(config_text('["3.11", "3.13"]', "{arch: x86_64, python: /opt/x86/bin/python3}"))
    with pytest.raises(ConfigError) as info:
        config_mod.load(path)
    assert info.value.exit_code == 2


# ------------------------------------------------------------------ the interpreter, checked before staging


def test_the_probe_runs_under_the_lanes_arch_prefix() -> None:
    assert probe_command("x86_64", X86_313) == ["arch", "-x86_64", X86_313, "-c", INTERPRETER_PROBE]
    assert probe_command("arm64", ARM_313)[:3] == ["arch", "-arm64", ARM_313]


def test_the_probe_says_version_and_machine() -> None:
    # this Python, started without `arch` (Linux has none): what the lane's interpreter prints
    out = run([sys.executable, "-c", INTERPRETER_PROBE], timeout=60).stdout
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    machine = os.uname().machine
    assert out.split() == [version, machine]
    assert interpreter_mismatch(machine, sys.executable, version, out) is None


@pytest.mark.parametrize(("said", "why"), [
    ("3.11 x86_64", "runs as Python 3.11 on x86_64 under arch -x86_64; the lane is Python 3.13 on x86_64"),
    ("3.13 arm64", "runs as Python 3.13 on arm64 under arch -x86_64; the lane is Python 3.13 on x86_64"),
    ("", "runs as Python ? on ? under arch -x86_64"),
])
def test_an_interpreter_of_another_version_or_arch_is_refused(said: str, why: str) -> None:
    got = interpreter_mismatch("x86_64", "/opt/x86/python3", "3.13", said)
    assert got is not None and why in got and got.startswith("the lane's interpreter /opt/x86/python3 ")
    assert interpreter_mismatch("x86_64", "/opt/x86/python3", "3.13", "3.13 x86_64\n") is None


# ------------------------------------------------------------------ host detection (pure parts)


def test_x86_64_candidates_of_a_version_are_python_orgs_first_then_the_hosts_own() -> None:
    got = x86_64_candidates("3.13", {"3.13": ARM_313, "3.11": OWN}, {"3.11": OWN})
    assert got == [X86_313, "/usr/local/bin/python3.13", "/usr/local/opt/python@3.13/bin/python3.13", ARM_313]
    # archmatrix's own only for its version, and no path twice
    assert x86_64_candidates("3.11", {"3.11": X86_311}, {"3.11": X86_311}).count(X86_311) == 1


def test_framework_builds_are_found_for_every_version(tmp_path: Path) -> None:
    for version in ("3.12", "3.13"):
        binary = tmp_path / "Versions" / version / "bin" / f"python{version}"
        binary.parent.mkdir(parents=True)
        binary.write_bytes(b"\xca\xfe\xba\xbe" + b"\0" * 60)  # a universal (fat) Mach-O
        binary.chmod(0o755)
    found = find_interpreters(("3.11", "3.12", "3.13"), path=str(tmp_path / "empty"),
                              pyenv_root=str(tmp_path / "no-pyenv"),
                              candidates=(str(tmp_path / "Versions/{v}/bin/python{v}"),))
    assert found == {v: str(tmp_path / f"Versions/{v}/bin/python{v}") for v in ("3.12", "3.13")}


# ------------------------------------------------------------------ GitHub: the job of each version


def test_ci_lanes_give_each_macos_job_its_version_and_the_x64_python_step() -> None:
    entries = {e["lane"]: e for e in github_lanes(parse(TWO, WHERE))}
    assert entries["macos-x86_64-rosetta@3.13"] == {
        "lane": "macos-x86_64-rosetta@3.13", "runner": "macos", "os": MACOS_ARM64, "python": "3.13",
        "result": "macos-x86_64-rosetta-py3.13", "x64_python": True}
    assert entries["macos-arm64@3.13"]["python"] == "3.13" and "x64_python" not in entries["macos-arm64@3.13"]
    # a lane naming its own path sets up nothing; a mapping may leave the job's version out: set it up
    own = parse(config_text('"3.13"', "{arch: x86_64, python: /x/python3.13}"), WHERE)
    assert "x64_python" not in github_lanes(own)[1]
    named = parse(config_text('["3.11", "3.13"]', '{arch: x86_64, python: {"3.13": /x/python3.13}}'), WHERE)
    assert github_lanes(named, ["macos-x86_64-rosetta@3.11"])[0]["x64_python"] is True


def _workflow_script(name: str) -> str:
    """The Python the reusable workflow's step ``name`` runs (its ``python - <<'PY'`` heredoc)."""
    workflow = yaml.safe_load((ROOT / ".github/workflows/archmatrix.yml").read_text())
    steps = [s for job in workflow["jobs"].values() for s in job.get("steps", []) if s.get("name") == name]
    assert len(steps) == 1
    body = steps[0]["run"]
    return body[body.index("<<'PY'\n") + len("<<'PY'\n"):body.rindex("PY")]


X64 = "/Users/runner/hostedtoolcache/Python/3.13.1/x64/bin/python"  # what setup-python's x64 step gives


def _workflow_config(tmp_path: Path, text: str, lane: str) -> config_mod.MatrixConfig:
    """The config the reusable workflow's job for ``lane`` derives from ``text`` (its real script)."""
    source = tmp_path / "matrix.yaml"
    source.write_text(text)
    output = tmp_path / "github_output"
    env = {**os.environ, "CONFIG": str(source), "LANE": lane, "X64_PYTHON": X64,
           "GITHUB_OUTPUT": str(output), "PYTHONPATH": str(ROOT / "src")}
    run([sys.executable, "-c", _workflow_script("point the lane at the x86_64 Python")], env=env, timeout=60)
    return config_mod.load(Path(output.read_text().strip().removeprefix("path=")))  # still a valid config


@pytest.mark.parametrize(("python", "lane"), [('["3.11", "3.13"]', "macos-x86_64-rosetta@3.13"),
                                              ('"3.13"', "macos-x86_64-rosetta")])
def test_the_workflow_points_the_lane_of_its_version_at_the_x64_python(
    tmp_path: Path, python: str, lane: str
) -> None:
    cfg = _workflow_config(tmp_path, config_text(python), lane)
    host = replace(M1, x86_64_pythons={})  # nothing detected: only the step's interpreter
    assert lane_python(cfg.lane(lane), host) == X64
    if "@" in lane:  # the other version's lane is left as it was
        assert lane_python(cfg.lane("macos-x86_64-rosetta@3.11"), host) is None


@pytest.mark.parametrize("lane", ["macos-x86_64-rosetta@3.11", "macos-x86_64-rosetta@3.13"])
def test_the_workflow_fills_in_only_what_the_lanes_own_mapping_leaves_out(tmp_path: Path, lane: str) -> None:
    text = config_text('["3.11", "3.13"]', '{arch: x86_64, python: {"3.13": /x/python3.13}}')
    cfg = _workflow_config(tmp_path, text, lane)
    host = replace(M1, x86_64_pythons={})
    assert lane_python(cfg.lane("macos-x86_64-rosetta@3.13"), host) == "/x/python3.13"  # the user's wins
    filled = X64 if lane.endswith("@3.11") else None  # only the job's own version
    assert lane_python(cfg.lane("macos-x86_64-rosetta@3.11"), host) == filled

