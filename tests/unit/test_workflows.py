"""The GitHub Actions workflows agree with ci/matrix.yaml and with archmatrix (issue 7).

actionlint checks the workflows' syntax (``nox -s lint``); these tests check
what it cannot know: that ``matrix.yml`` runs exactly the lanes of the
default config, each on a runner that can run it, through sessions and
commands that exist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from archmatrix import config as config_mod
from archmatrix.baseimage import DEFAULT_PACKAGES, DEFAULT_SUITE, base_image_tag
from archmatrix.cli import main
from archmatrix.workflows import (
    LINUX_ARM64,
    LINUX_X86_64,
    MACOS_ARM64,
    cache_keys,
    github_lanes,
    parse_lane_list,
)

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
                 if re.search(r'archmatrix lane |nox -s "lane\(', line)]
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


# ------------------------------------------------------------ caching, credentials, concurrency (issue 20)

ALL = ["ci.yml", "matrix.yml", "archmatrix.yml"]


def all_steps(name: str) -> list[dict[str, Any]]:
    return [step for job in workflow(name)["jobs"].values() for step in steps(job)]


def action(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).partition("@")[0]


@pytest.mark.parametrize("name", ALL)
def test_every_checkout_persists_no_credentials(name: str) -> None:
    checkouts = [s for s in all_steps(name) if action(s) == "actions/checkout"]
    assert checkouts
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, step


@pytest.mark.parametrize("name", ALL)
def test_concurrency_cancels_in_progress_runs_only_for_pull_requests(name: str) -> None:
    concurrency = workflow(name)["concurrency"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    # a pull request's runs share a group (the newer cancels the older); any other run is alone in
    # its own, so a push to main or a scheduled run is neither cancelled nor held back as pending
    group = concurrency["group"]
    assert ("github.event_name == 'pull_request' && github.event.pull_request.number || github.run_id"
            in group)
    assert "github.ref" not in group


def cache_steps(name: str, path_part: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    restores = [s for s in all_steps(name)
                if action(s) == "actions/cache/restore" and path_part in s["with"]["path"]]
    saves = [s for s in all_steps(name)
             if action(s) == "actions/cache/save" and path_part in s["with"]["path"]]
    return restores, saves


@pytest.mark.parametrize("name", ALL)
def test_the_downloaded_wheels_are_cached_by_content_key(name: str) -> None:
    restores, saves = cache_steps(name, ".archmatrix/wheels")
    assert len(restores) == 1 and len(saves) == 1
    restore, save = restores[0], saves[0]
    assert restore["with"]["key"] == save["with"]["key"]
    assert "hashFiles(" in restore["with"]["key"] or "steps.keys.outputs.wheels" in restore["with"]["key"]
    # saved whatever the outcome (a failing lane downloaded good wheels), only when not restored exactly
    assert save["if"].startswith("always()")
    assert f"steps.{restore['id']}.outputs.cache-hit != 'true'" in save["if"]


@pytest.mark.parametrize("name", ALL)
def test_base_images_are_cached_by_their_tag_with_docker_save_and_load(name: str) -> None:
    everything = all_steps(name)
    restores, saves = cache_steps(name, "base-image")
    assert len(restores) == 1 and len(saves) == 1
    restore, save = restores[0], saves[0]
    assert restore["with"]["key"] == save["with"]["key"] and restore["with"]["path"] == save["with"]["path"]
    keys = next(s for s in everything if s.get("id") == "keys")
    # the key is the image's content tag, computed by archmatrix itself
    assert "--print-tag" in keys["run"] or "archmatrix.workflows cache-keys" in keys["run"]
    assert "steps.keys.outputs." in restore["with"]["key"]
    runs = [(s.get("if", ""), s.get("run", "")) for s in everything]
    assert any("docker load -i" in run and f"steps.{restore['id']}.outputs.cache-hit == 'true'" in cond
               for cond, run in runs)
    assert any("docker save" in run for _, run in runs)


def test_cache_keys_of_a_lane_follow_its_content() -> None:
    config = config_mod.load(CONFIG)
    arm = cache_keys(config, "linux-arm64-docker")
    assert arm["base-image"] == base_image_tag("linux/arm64", DEFAULT_SUITE, DEFAULT_PACKAGES)
    assert arm["base-image-platform"] == "linux/arm64"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", arm["base-image-key"] + arm["base-image-file"])
    assert arm["wheels"].startswith(arm["wheels-prefix"])
    assert arm["wheels"] != cache_keys(config, "host")["wheels"]
    host = cache_keys(config, "host")
    assert host["base-image"] == host["base-image-key"] == host["base-image-platform"] == ""
    assert cache_keys(config, "host") == host  # stable


def test_wheel_cache_key_changes_with_the_lock(tmp_path: Path) -> None:
    def key(numpy: str) -> str:
        cfg = tmp_path / f"m-{numpy}.yaml"
        cfg.write_text(f'lock: {{python: "3.11", packages: {{numpy: "{numpy}"}}}}\n'
                       "lanes:\n  - {id: arm, runner: docker, options: {platform: linux/arm64}}\n")
        return cache_keys(config_mod.load(cfg), "arm")["wheels"]

    assert key("2.4.6") != key("2.4.5")


def test_a_lane_with_its_own_base_image_caches_none(tmp_path: Path) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text('lock: {python: "3.11", packages: {numpy: "2.4.6"}}\n'
                   "lanes:\n"
                   "  - {id: own, runner: docker, options: {platform: linux/arm64, base_image: py:3.11}}\n")
    keys = cache_keys(config_mod.load(cfg), "own")
    assert keys["base-image"] == keys["base-image-key"] == keys["base-image-file"] == ""


@pytest.mark.parametrize("name", ["matrix.yml", "archmatrix.yml"])
def test_lane_jobs_use_sudo_in_one_root_step_only(name: str) -> None:
    lane = workflow(name)["jobs"]["lane"]
    with_sudo = [s for s in steps(lane) if re.search(r"\bsudo\b", s.get("run", ""))]
    assert [s["name"] for s in with_sudo] == ["lane prerequisites (root)"]
    run_lane = next(s for s in steps(lane) if str(s.get("name", "")).startswith("lane ${{"))
    assert "sudo" not in run_lane["run"]


@pytest.mark.parametrize("name", ALL)
def test_only_github_s_own_actions_are_used(name: str) -> None:
    used = {str(s["uses"]) for s in all_steps(name) if "uses" in s}
    assert used
    assert all(u.startswith("actions/") and re.search(r"@v\d+$", u) for u in used), used


def test_dependabot_keeps_the_actions_current() -> None:
    data = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert data["version"] == 2
    assert {(u["package-ecosystem"], u["directory"]) for u in data["updates"]} >= {("github-actions", "/")}


# ------------------------------------------------------------------ the baseline (issue 21)


@pytest.mark.parametrize("name, script", [("archmatrix.yml", ".archmatrix-src/ci/baseline.sh"),
                                          ("matrix.yml", "ci/baseline.sh")])
def test_collect_compares_with_the_default_branch_s_latest_matrix(name: str, script: str) -> None:
    collect = steps(workflow(name)["jobs"]["collect"])
    ids = [s.get("id") for s in collect]
    baseline = collect[ids.index("baseline")]
    assert baseline["run"] == f"bash {script}"
    assert baseline["env"]["DEFAULT_BRANCH"] == "${{ github.event.repository.default_branch }}"
    assert baseline["env"]["GH_TOKEN"] == "${{ github.token }}"
    report = collect[ids.index("report")]
    assert ids.index("baseline") < ids.index("report")
    assert report["env"]["BASELINE"] == "${{ steps.baseline.outputs.path }}"
    assert 'args+=(--baseline "$BASELINE"' in report["run"] and '"${args[@]}"' in report["run"]


FAKE_GH = """#!/usr/bin/env bash
# a stand-in for the GitHub CLI: `run list` prints $FAKE_RUNS, `run download ID` succeeds for $FAKE_GOOD
echo "$*" >>"$FAKE_LOG"
if [ "$1 $2" = "run list" ]; then
  [ -n "$FAKE_LIST_FAILS" ] && { echo "HTTP 403: Resource not accessible by integration" >&2; exit 1; }
  printf '%s\\n' $FAKE_RUNS; exit 0
fi
if [ "$1 $2" = "run download" ] && [ "$3" = "$FAKE_GOOD" ]; then
  while [ $# -gt 0 ]; do [ "$1" = --dir ] && dir=$2; shift; done
  mkdir -p "$dir" && echo '{}' >"$dir/matrix.json"; exit 0
fi
echo "no valid artifacts found to download" >&2; exit 1
"""


def run_baseline(tmp_path: Path, **fake: str) -> tuple[str, list[str]]:
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True)
    (bindir / "gh").write_text(FAKE_GH)
    (bindir / "gh").chmod(0o755)
    output, log = tmp_path / "output", tmp_path / "gh.log"
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "GH_TOKEN": "t", "GITHUB_REPOSITORY": "o/r",
           "GITHUB_RUN_ID": "300", "RUNNER_TEMP": str(tmp_path), "GITHUB_OUTPUT": str(output),
           "DEFAULT_BRANCH": "main",
           "BASELINE_WORKFLOW": "o/r/.github/workflows/ci-matrix.yml@refs/pull/7/merge",
           "FAKE_LOG": str(log), "FAKE_LIST_FAILS": "", **fake}
    proc = subprocess.run(["bash", str(ROOT / "ci" / "baseline.sh")], env=env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "::" not in proc.stdout  # plain lines: nothing GitHub reads as a command
    return output.read_text(), log.read_text().splitlines()


def test_baseline_script_takes_the_newest_run_with_a_matrix(tmp_path: Path) -> None:
    # 300 is this run; 250 was cancelled before it uploaded a matrix; 200 has one
    output, calls = run_baseline(tmp_path, FAKE_RUNS="300 250 200 150", FAKE_GOOD="200")
    assert output == f"path={tmp_path}/archmatrix-baseline/matrix.json\n"
    assert (tmp_path / "archmatrix-baseline" / "matrix.json").is_file()
    listing = calls[0]
    assert "--workflow ci-matrix.yml" in listing and "--branch main" in listing
    assert "--status completed" in listing
    assert [c.split()[2] for c in calls[1:]] == ["250", "200"]  # never this run; stops at the first matrix


def test_baseline_script_without_a_baseline_or_permission_passes_none(tmp_path: Path) -> None:
    output, _ = run_baseline(tmp_path / "none", FAKE_RUNS="250", FAKE_GOOD="")
    assert output == "path=\n"
    # the token may not read actions: no download is tried, the report runs without a baseline
    output, calls = run_baseline(tmp_path / "denied", FAKE_RUNS="250", FAKE_GOOD="250", FAKE_LIST_FAILS="1")
    assert output == "path=\n" and len(calls) == 1


def test_wheel_cache_key_of_a_lane_version_follows_that_versions_lock(tmp_path: Path) -> None:
    def keys(numpy313: str) -> tuple[str, str]:
        cfg = tmp_path / f"m-{numpy313}.yaml"
        cfg.write_text('lock: {python: ["3.11", "3.13"], '
                       f'packages: {{numpy: {{"3.11": "2.3.5", "3.13": "{numpy313}"}}}}}}\n'
                       "lanes:\n  - {id: arm, runner: docker, options: {platform: linux/arm64}}\n")
        config = config_mod.load(cfg)
        return cache_keys(config, "arm@3.11")["wheels"], cache_keys(config, "arm@3.13")["wheels"]

    old311, old313 = keys("2.4.0")
    new311, new313 = keys("2.4.1")
    # each version's wheels are keyed by its own Python and pins: a 3.13 pin moves only the 3.13 key
    assert old311 == new311 and old313 != new313
    assert old311.rsplit("-", 1)[1] != old313.rsplit("-", 1)[1]
