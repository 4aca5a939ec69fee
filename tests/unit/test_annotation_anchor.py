"""GitHub annotations anchored to the lane's line in the config file (issue 21).

A lane's ``::error`` carries ``file=`` (the config, relative to the
workspace, as GitHub resolves it) and ``line=`` (where the lane's ``id`` is
written), so the annotation shows on the config in the pull request's diff.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from archmatrix import config as config_mod
from archmatrix.matrix import Matrix, build
from archmatrix.render import github
from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import CheckResult, LaneResult, LaneStatus

CONFIG = """\
lock:
  python: "3.11"
  packages: {numpy: "2.4.6"}

lanes:
  - id: host
    runner: venv
  - runner: qemu
    required: false
    id: linux-x86_64-noavx
    options: {cpu_profile: x86-64-v2}
  - {id: broken, runner: docker, options: {platform: linux/arm64}}
"""


def _matrix() -> Matrix:
    noavx = LaneResult("linux-x86_64-noavx", "qemu", checks=[
        CheckResult("blas.gemm", Outcome.ILLEGAL_INSTRUCTION, message="Illegal instruction")])
    host = LaneResult("host", "venv", checks=[CheckResult("import.numpy", Outcome.PASS)])
    broken = LaneResult("broken", "docker", status=LaneStatus.INFRA_ERROR, reason="image build failed")
    return build([host, noavx, broken])


def _config(workspace: Path, relative: str) -> config_mod.MatrixConfig:
    path = workspace / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CONFIG, encoding="utf-8")
    return config_mod.load(path)


def test_each_lane_knows_the_line_of_its_id(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "ci/matrix.yaml")
    assert [(ln.id, ln.line) for ln in cfg.lanes] == [("host", 6), ("linux-x86_64-noavx", 10),
                                                      ("broken", 12)]
    # where a lane is written is not part of what it is
    assert cfg.lanes[0] == dataclasses.replace(cfg.lanes[0], line=99)


def test_errors_are_anchored_to_the_lane_line_relative_to_the_workspace(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "ci/matrix.yaml")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path)}
    lines = github.publish(_matrix(), env=env, config=cfg)
    errors = [ln for ln in lines if ln.startswith("::error ")]
    assert errors[0].startswith(
        "::error file=ci/matrix.yaml,line=10,title=archmatrix linux-x86_64-noavx%3A illegal-instruction::")
    assert errors[1].startswith(
        "::error file=ci/matrix.yaml,line=12,title=archmatrix broken%3A infra-error::")
    assert lines[-1].startswith("::notice title=archmatrix totals::")  # the totals belong to no lane


def test_without_a_workspace_the_path_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "matrix.yaml")
    anchors = github.config_anchors(cfg, env={}, cwd=tmp_path)
    assert anchors["host"] == github.Anchor("matrix.yaml", 6)


def test_a_config_outside_the_workspace_is_not_anchored(tmp_path: Path) -> None:
    cfg = _config(tmp_path / "elsewhere", "matrix.yaml")
    workspace = tmp_path / "repo"
    workspace.mkdir()
    lines = github.workflow_commands(_matrix(), anchors=github.config_anchors(
        cfg, env={"GITHUB_WORKSPACE": str(workspace)}))
    assert lines[0].startswith("::error title=archmatrix linux-x86_64-noavx%3A")


def test_file_names_are_escaped_as_property_values(tmp_path: Path) -> None:
    # ',' ends a property, ':' would end the properties, '%' starts an escape
    cfg = _config(tmp_path, "odd,dir/a:b%25.yaml")
    anchors = github.config_anchors(cfg, env={"GITHUB_WORKSPACE": str(tmp_path)})
    [line, *_] = github.error_annotations(_matrix(), anchors=anchors)
    assert line.startswith("::error file=odd%2Cdir/a%3Ab%2525.yaml,line=10,title=")
    # a newline in a file name cannot start a second command
    anchors = {"linux-x86_64-noavx": github.Anchor("x\n::error::pwned", 3)}
    [line, *_] = github.error_annotations(_matrix(), anchors=anchors)
    assert "\n" not in line and line.startswith("::error file=x%0A%3A%3Aerror%3A%3Apwned,line=3,")


def test_a_lane_expanded_per_python_version_keeps_its_line(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "matrix.yaml")
    anchors = github.config_anchors(cfg, env={"GITHUB_WORKSPACE": str(tmp_path)})
    assert github.anchor_of(anchors, "linux-x86_64-noavx@3.12") == github.Anchor("matrix.yaml", 10)
    assert github.anchor_of(anchors, "unknown") is None
