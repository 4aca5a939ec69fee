"""The GitHub Actions workflows agree with ci/matrix.yaml and with archmatrix (issue 7).

actionlint checks the workflows' syntax (``nox -s lint``); these tests check
what it cannot know: that ``matrix.yml`` runs exactly the lanes of the
default config, each on a runner that can run it, through sessions and
commands that exist.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from archmatrix import config as config_mod
from archmatrix.cli import main
from archmatrix.workflows import LINUX_ARM64, LINUX_X86_64, MACOS_ARM64, github_lanes, parse_lane_list

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CONFIG = ROOT / "ci" / "matrix.yaml"


def workflow(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    if True in data:  # YAML 1.1 reads the key `on` as the boolean true
        data["on"] = data.pop(True)
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def matrix_include() -> list[dict[str, Any]]:
    return list(workflow("matrix.yml")["jobs"]["lane"]["strategy"]["matrix"]["include"])


# ------------------------------------------------------------------ matrix.yml vs ci/matrix.yaml


def test_matrix_workflow_runs_exactly_the_default_lanes_with_their_runner_kinds() -> None:
    raw = yaml.safe_load(CONFIG.read_text())
    expected = [(lane["id"], lane["runner"]) for lane in raw["lanes"]]
    assert [(e["lane"], e["runner"]) for e in matrix_include()] == expected


def test_matrix_workflow_equals_what_ci_lanes_computes() -> None:
    assert matrix_include() == github_lanes(config_mod.load(CONFIG))


def test_ci_lanes_command_prints_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci-lanes", "--config", str(CONFIG)]) == 0
    assert json.loads(capsys.readouterr().out) == matrix_include()


@pytest.mark.parametrize("lane_id, runs_on", [
    ("host", LINUX_X86_64),
    ("linux-amd64-docker", LINUX_X86_64),
    ("linux-arm64-docker", LINUX_ARM64),
    ("linux-x86_64-noavx", LINUX_X86_64),
    ("macos-arm64", MACOS_ARM64),
    ("macos-x86_64-rosetta", MACOS_ARM64),
])
def test_each_default_lane_gets_a_runner_that_can_run_it(lane_id: str, runs_on: str) -> None:
    entry = next(e for e in matrix_include() if e["lane"] == lane_id)
    assert entry["os"] == runs_on
    # only the Rosetta lane sets up an x86_64 Python
    assert entry.get("x64_python", False) is (lane_id == "macos-x86_64-rosetta")


def test_aarch64_qemu_lanes_and_the_arm64_runner_override(tmp_path: Path) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text(
        'lock: {python: "3.11", packages: {numpy: "2.4.6"}}\n'
        "lanes:\n"
        "  - {id: pi4, runner: qemu, options: {cpu_profile: armv8.0}}\n"
        "  - {id: arm, runner: docker, options: {platform: linux/arm64}}\n"
        "  - {id: x86, runner: qemu, options: {cpu_profile: x86-64-v2}}\n"
        "  - {id: rosetta-own, runner: macos, options: {arch: x86_64, python: /opt/x86/python3}}\n"
    )
    entries = github_lanes(config_mod.load(cfg), linux_arm64="ubuntu-latest")
    assert [(e["lane"], e["os"]) for e in entries] == [
        ("pi4", "ubuntu-latest"), ("arm", "ubuntu-latest"), ("x86", LINUX_X86_64),
        ("rosetta-own", MACOS_ARM64)]
    assert "x64_python" not in entries[3]  # the config names its own x86_64 interpreter
    only = github_lanes(config_mod.load(cfg), ["x86"])
    assert [e["lane"] for e in only] == ["x86"]


def test_unknown_lane_in_the_lanes_input_is_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci-lanes", "--config", str(CONFIG), "--lanes", '["linux-arm64-dokcer"]']) == 2
    assert "perhaps you meant" in capsys.readouterr().err.lower()


@pytest.mark.parametrize("text, lanes", [("", []), ("[]", []), ("all", []), ('["host"]', ["host"])])
def test_lane_list_input(text: str, lanes: list[str]) -> None:
    assert parse_lane_list(text) == lanes


@pytest.mark.parametrize("text", ["host", '{"a": 1}', "[1, 2]"])
def test_bad_lane_list_input(text: str) -> None:
    with pytest.raises(ValueError, match="JSON list"):
        parse_lane_list(text)


# ------------------------------------------------------------------ what the jobs do


def uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    return next(s for s in steps(job) if str(s.get("uses", "")).startswith(f"{action}@"))


def test_each_lane_job_runs_its_nox_session_and_uploads_its_result() -> None:
    lane_job = workflow("matrix.yml")["jobs"]["lane"]
    runs = "\n".join(s.get("run", "") for s in steps(lane_job))
    assert 'nox -s "lane($LANE)"' in runs
    upload = uses(lane_job, "actions/upload-artifact")
    assert upload["with"]["path"] == "results/${{ matrix.lane }}.json"
    assert upload["if"] == "always()"  # a failing lane still hands on its result
    assert upload["with"]["name"] == "archmatrix-lane-${{ matrix.lane }}"


@pytest.mark.parametrize("name", ["matrix.yml", "archmatrix.yml"])
def test_failing_cells_are_annotated_once_by_the_collect_job(name: str) -> None:
    jobs = workflow(name)["jobs"]
    lane_runs = [line for s in steps(jobs["lane"]) for line in s.get("run", "").splitlines()
                 if re.search(r'\blane\b.*\$LANE', line)]
    assert lane_runs and all("--no-annotations" in line for line in lane_runs)
    collect_runs = "\n".join(s.get("run", "") for s in steps(jobs["collect"]))
    assert "report" in collect_runs and "--no-annotations" not in collect_runs


@pytest.mark.parametrize("name", ["matrix.yml", "archmatrix.yml"])
def test_collect_downloads_what_the_lanes_upload_and_reports(name: str) -> None:
    jobs = workflow(name)["jobs"]
    upload = uses(jobs["lane"], "actions/upload-artifact")
    download = uses(jobs["collect"], "actions/download-artifact")
    prefix = download["with"]["pattern"].rstrip("*")
    assert upload["with"]["name"].startswith(prefix)
    assert jobs["collect"]["needs"] == "lane" and "cancelled()" in jobs["collect"]["if"]
    runs = "\n".join(s.get("run", "") for s in steps(jobs["collect"]))
    directory = download["with"]["path"]
    assert re.search(rf"report\b.*{directory}", runs) and "badges" in runs
    assert "archmatrix-badges" in runs or "$BRANCH" in runs  # publishes to a branch


def test_nox_sessions_used_by_the_workflows_exist() -> None:
    noxfile = (ROOT / "noxfile.py").read_text()
    defined = set(re.findall(r"@nox\.session[^\n]*\n(?:@[^\n]*\n)*def (\w+)\(", noxfile))
    used = set()
    for name in ("ci.yml", "matrix.yml"):
        for job in workflow(name)["jobs"].values():
            for step in steps(job):
                used |= set(re.findall(r'nox -s "?(\w+)', step.get("run", "")))
    assert used == {"lint", "tests", "lane", "report", "badges"}
    assert used <= defined


def test_lint_session_runs_actionlint_on_the_workflows() -> None:
    noxfile = (ROOT / "noxfile.py").read_text()
    lint = noxfile[noxfile.index("def lint("):]
    lint = lint[:lint.index("\n@nox.session")]
    assert '"actionlint"' in lint and '".github" / "workflows"' in lint


def test_ci_runs_the_host_setup_before_the_tests() -> None:
    job = workflow("ci.yml")["jobs"]["tests"]
    runs = [s.get("run", "") for s in steps(job)]
    setup = next(i for i, r in enumerate(runs) if "ci/setup-linux-host.sh" in r)
    tests = next(i for i, r in enumerate(runs) if "nox -s tests" in r)
    assert runs[setup].startswith("sudo bash ") and setup < tests


def test_reusable_workflow_interface() -> None:
    data = workflow("archmatrix.yml")
    assert list(data["on"]) == ["workflow_call"]
    inputs = data["on"]["workflow_call"]["inputs"]
    assert {"config", "lanes", "python-version"} <= set(inputs)
    assert inputs["config"]["required"] is True
    assert inputs["lanes"]["default"] == "[]" and parse_lane_list(inputs["lanes"]["default"]) == []
    # the job matrix comes from the caller's config, through archmatrix itself
    plan = "\n".join(s.get("run", "") for s in steps(data["jobs"]["plan"]))
    assert "archmatrix ci-lanes" in plan
    include = data["jobs"]["lane"]["strategy"]["matrix"]["include"]
    assert include == "${{ fromJSON(needs.plan.outputs.include) }}"
