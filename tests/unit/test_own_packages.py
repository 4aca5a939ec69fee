"""Bring your own package: --wheel / --checks-module, user modules staged for every lane, local wheels.

No lane runs here: the staging, the suite arguments, the config additions and
the lock a runner stages are checked with files in a temporary directory and
the staging functions replaced by recorders.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from archmatrix import cli, config
from archmatrix.hostfacts import HostFacts
from archmatrix.runners import LaneJob
from archmatrix.runners.common import stage_job_lock, stage_job_suite, suite_args
from archmatrix.staging import lock as staging_lock
from archmatrix.staging import tags as staging_tags
from archmatrix.staging.prefix import PrefixSpec
from archmatrix.staging.result import StagingResult
from archmatrix.staging.suite import UserModuleError, stage_suite, suite_digest, user_modules

CONFIG = """\
lock:
  python: "3.11"
  packages: {numpy: "2.4.6", scipy: "1.17.1"}
  wheels: [dist]
checks:
  user_modules: [checks/my_checks.py, mypkg.checks]
lanes:
  - {id: host, runner: venv}
"""
LINUX = HostFacts(system="Linux", machine="x86_64", python="/usr/bin/python3", python_version="3.11")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project: a config, a check module beside it, a dist/ of wheels."""
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "my_checks.py").write_text("def check_answer(ctx):\n    return {'answer': 42}\n")
    (tmp_path / "dist").mkdir()
    for name in ("numpy-2.4.6+mine-cp311-cp311-linux_x86_64.whl", "mypkg-1.0-py3-none-any.whl"):
        (tmp_path / "dist" / name).write_bytes(b"PK")
    (tmp_path / "matrix.yaml").write_text(CONFIG)
    return tmp_path


def job(project: Path, tmp_path: Path) -> LaneJob:
    cfg = config.load(project / "matrix.yaml")
    return LaneJob(config=cfg, lane=cfg.lane("host"), host=LINUX, workdir=tmp_path / "work",
                   out=tmp_path / "out" / "host.json", progress=lambda line: None)


# --- user check modules ------------------------------------------------------------------------


def test_user_modules_resolve_paths_against_the_config_and_pass_names_through(project: Path) -> None:
    modules = user_modules(["checks/my_checks.py", "mypkg.checks"], project)
    assert modules.files == (project / "checks" / "my_checks.py",)
    assert modules.names == ("my_checks", "mypkg.checks")  # checks keep their ids: my_checks.<name>


@pytest.mark.parametrize(("entries", "error"), [
    (["checks/nope.py"], r"checks/nope.py: no such file"),
    (["checks/my_checks.py", "other/my_checks.py"], r"two modules are called 'my_checks'"),
    (["checks/my-checks.py"], r"'my-checks' cannot be a module name"),
])
def test_user_module_problems_are_named(project: Path, entries: list[str], error: str) -> None:
    (project / "other").mkdir()
    (project / "other" / "my_checks.py").write_text("")
    (project / "checks" / "my-checks.py").write_text("")
    with pytest.raises(UserModuleError, match=error):
        user_modules(entries, project)


def test_the_suite_is_staged_with_the_user_modules_beside_it(project: Path, tmp_path: Path) -> None:
    module = project / "checks" / "my_checks.py"
    root = stage_suite(tmp_path / "work", [module])
    assert (root / "my_checks.py").read_text() == module.read_text()
    assert (root / "archmatrix" / "suite" / "__main__.py").exists()
    # readable by a container lane's nobody, and named by content: its own directory
    assert stat.S_IMODE((root / "my_checks.py").stat().st_mode) == 0o644
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    assert root.name == suite_digest([module]) != suite_digest()
    assert stage_suite(tmp_path / "work", [module]) == root  # staged once
    module.write_text("def check_answer(ctx):\n    return {'answer': 43}\n")
    assert stage_suite(tmp_path / "work", [module]) != root  # an edited module is restaged


def test_lanes_are_given_module_names_never_host_paths(project: Path, tmp_path: Path) -> None:
    lane_job = job(project, tmp_path)
    root, names = stage_job_suite(lane_job)
    assert names == ("my_checks", "mypkg.checks")
    assert (root / "my_checks.py").exists()
    args = suite_args(lane_job, "/out/host.json", user_checks=names)
    spec = json.loads(args[args.index("--spec") + 1])
    assert spec["user_checks"] == ["my_checks", "mypkg.checks"]
    assert str(project) not in " ".join(args)
    # without staged names, the config's entries as written (the old behaviour)
    legacy = suite_args(lane_job, "/out/host.json")
    assert json.loads(legacy[legacy.index("--spec") + 1])["user_checks"] == ["checks/my_checks.py",
                                                                           "mypkg.checks"]


# --- the CLI -----------------------------------------------------------------------------------


def test_wheel_and_checks_module_add_to_the_config(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    cfg = config.load(project / "matrix.yaml")
    args = cli.parser().parse_args(["matrix", "--wheel", "dist/mypkg-1.0-py3-none-any.whl", "--wheel", "dist",
                                    "--checks-module", "checks/my_checks.py", "--checks-module", "mod.x"])
    more = cli.with_own_packages(cfg, args.wheels, args.checks_modules)
    assert more.lock.wheels == ("dist", str(project / "dist" / "mypkg-1.0-py3-none-any.whl"),
                                str(project / "dist"))
    assert more.checks.user_modules == ("checks/my_checks.py", "mypkg.checks",
                                        str(project / "checks" / "my_checks.py"), "mod.x")
    assert more.lanes == cfg.lanes and more.lock.packages == cfg.lock.packages
    assert cli.with_own_packages(cfg, [], []) is cfg
    lane_args = cli.parser().parse_args(["lane", "host", "--wheel", "dist"])
    assert lane_args.wheels == [Path("dist")] and lane_args.checks_modules == []


@pytest.mark.parametrize(("wheels", "modules", "error"), [
    ([Path("dist/missing.whl")], [], r"--wheel dist/missing.whl: not a .whl file"),
    ([Path("matrix.yaml")], [], r"--wheel matrix.yaml: not a .whl file"),
    ([], ["checks/missing.py"], r"--checks-module checks/missing.py: no such file"),
])
def test_bad_additions_are_usage_errors(project: Path, monkeypatch: pytest.MonkeyPatch, wheels: list[Path],
                                        modules: list[str], error: str) -> None:
    monkeypatch.chdir(project)
    with pytest.raises(cli.UsageError, match=error):
        cli.with_own_packages(config.load(project / "matrix.yaml"), wheels, modules)


def test_cli_reports_a_bad_wheel_with_the_usage_exit_code(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(project)
    code = cli.main(["matrix", "--config", "matrix.yaml", "--wheel", "nope.whl"])
    assert code == 2
    assert "--wheel nope.whl" in capsys.readouterr().err


# --- local wheels ------------------------------------------------------------------------------


def test_local_wheel_tags_take_what_pip_wheel_builds_on_linux() -> None:
    tags = {str(t) for t in staging_tags.local_wheel_tags("3.11", "aarch64", (2, 36))}
    for tag in ("cp311-cp311-manylinux_2_28_aarch64", "cp311-cp311-linux_aarch64",
                "cp311-abi3-linux_aarch64", "py3-none-linux_aarch64", "py3-none-any"):
        assert tag in tags, tag
    assert not any(t.endswith("x86_64") for t in tags)


def test_local_projects_are_canonical_names(project: Path) -> None:
    files = staging_lock.local_wheel_files(["dist"], project)
    assert staging_lock.local_projects(files) == {"numpy", "mypkg"}


def test_a_local_wheel_takes_the_place_of_the_locked_pin(project: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy comes from dist/ (the user's build), not from the lock, in every runner that stages."""
    staged: dict[str, Any] = {}

    def fake_prefix(lock: Any, local: Any, arch: str, glibc: Any, dest: Path, **kw: Any) -> StagingResult:
        staged["lock"] = dict(lock.packages)
        staged["local"] = sorted(p.name for p in local.wheels)
        staged["spec"] = kw["spec"]
        return StagingResult(site_packages=dest, installed={**lock.packages, **local.installed},
                             wheels=staged["local"])

    monkeypatch.setattr(staging_lock, "stage_prefix", fake_prefix)
    spec = PrefixSpec("3.11", "/usr/bin/python3.11")
    result = stage_job_lock(job(project, tmp_path), "x86_64", (2, 36), spec)
    assert staged["lock"] == {"scipy": "1.17.1"}  # numpy left to the local wheel
    assert staged["local"] == ["mypkg-1.0-py3-none-any.whl", "numpy-2.4.6+mine-cp311-cp311-linux_x86_64.whl"]
    assert staged["spec"] == spec
    assert result.staging.installed == {"scipy": "1.17.1", "numpy": "2.4.6+mine", "mypkg": "1.0"}
    # one environment: the lock and the local wheels in one prefix, named by both and by the interpreter
    assert result.prefix.parent == tmp_path / "work" / "prefixes"
    other = stage_job_lock(job(project, tmp_path), "x86_64", (2, 36), PrefixSpec("3.11", "/other/python3.11"))
    assert other.prefix != result.prefix
