"""Nothing escapes the emulated CPU: every child of the no-AVX lane runs without AVX2, as under Rosetta 2.

qemu-user follows ``fork`` but not ``exec``, so without containment a
``subprocess`` of ``sys.executable``, a ``spawn`` or ``forkserver`` pool and
joblib's loky workers (scikit-learn's ``n_jobs``) run natively, with AVX2, and
an extension that Rosetta 2 would kill *passes* as soon as it runs in a worker.
Three lanes run here:

- ``host``: natively every child has AVX2 and the extension works;
- ``linux-x86_64-noavx``: every child sees AVX2 False, the extension in loky
  workers is an illegal instruction, and the self-check passes;
- ``noavx-leaky``: the same lane with containment switched off
  (``contain_children: false``): its self-check catches the escape and the
  whole lane is ``infra-error`` — never a set of green cells.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require
from corpus import build_avx2_wheel

from archmatrix import hostfacts

pytestmark = pytest.mark.integration

FIXTURE = ROOT / "tests" / "fixtures" / "containment" / "children_checks.py"
WHERE = ("parent", "subprocess", "spawn", "forkserver", "loky0", "loky1")


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> dict[str, Any]:
    host = hostfacts.detect(check_docker=False)
    require(host.machine == "x86_64" and "x86_64" in host.qemu_user, "needs an x86-64 host with qemu-x86_64")
    require(" avx2" in Path("/proc/cpuinfo").read_text(), "this host's CPU has no AVX2: nothing could escape")
    tmp = tmp_path_factory.mktemp("containment")
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    by_id = {lane["id"]: lane for lane in shipped["lanes"]}
    leaky = {**by_id["linux-x86_64-noavx"], "id": "noavx-leaky", "required": False,
             "options": {**by_id["linux-x86_64-noavx"]["options"], "contain_children": False}}
    cfg = {
        "lock": {**shipped["lock"], "wheels": [str(build_avx2_wheel(tmp))]},
        "checks": {"select": ["lane.self", "children_checks.*"], "user_modules": [str(FIXTURE)],
                   "timeout": 600},
        "lanes": [by_id["host"], by_id["linux-x86_64-noavx"], leaky],
    }
    path = tmp / "matrix.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    results = tmp / "results"
    proc = subprocess.run(
        archmatrix_argv("matrix", "--config", str(path), "--results", str(results),
                        "--workdir", str(workdir)),
        env=python_env(), capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode in (1, 3), proc.stdout + proc.stderr  # a required lane fails: the extension
    return {lane["lane"]: lane for lane in json.loads((results / "matrix.json").read_text())["lanes"]}


def cell(lane: dict[str, Any], check_id: str) -> dict[str, Any]:
    found = [c for c in lane["checks"] if c["id"] == check_id]
    assert found, (lane["lane"], check_id, [c["id"] for c in lane["checks"]])
    return found[0]


def test_every_child_of_the_noavx_lane_runs_without_avx2(matrix: dict[str, Any]) -> None:
    everywhere = cell(matrix["linux-x86_64-noavx"], "children_checks.avx2_everywhere")
    assert everywhere["outcome"] == "pass", everywhere
    assert {where: everywhere["metrics"][f"avx2.{where}"] for where in WHERE} == dict.fromkeys(WHERE, False)
    assert everywhere["metrics"]["avx2.path_python3"] is False  # `python3` on the lane's PATH too
    native = cell(matrix["host"], "children_checks.avx2_everywhere")
    assert {where: native["metrics"][f"avx2.{where}"] for where in WHERE} == dict.fromkeys(WHERE, True)


def test_the_avx2_extension_in_loky_workers_is_an_illegal_instruction(matrix: dict[str, Any]) -> None:
    assert cell(matrix["host"], "children_checks.avx2ext_in_loky")["outcome"] == "pass"
    noavx = cell(matrix["linux-x86_64-noavx"], "children_checks.avx2ext_in_loky")
    assert noavx["outcome"] == "illegal-instruction", noavx
    assert "SIGILL" in json.dumps(noavx)
    # the worker died, not the check: still the library and the extension are named
    assert "AVX2" in noavx["message"] and "avx2ext" in noavx["message"], noavx["message"]


def test_the_self_check_passes_where_the_lane_is_what_it_claims(matrix: dict[str, Any]) -> None:
    for lane_id in ("host", "linux-x86_64-noavx"):
        proof = cell(matrix[lane_id], "lane.self")
        assert proof["outcome"] == "pass", proof
    noavx = cell(matrix["linux-x86_64-noavx"], "lane.self")["metrics"]
    assert noavx["cpu.AVX2"] == "sigill" and "AVX2 sigill" in noavx["children.spawn"]
    assert matrix["linux-x86_64-noavx"]["facts"]["runner"]["contained"] is True


def test_a_lane_whose_children_escape_is_infra_error_not_green(matrix: dict[str, Any]) -> None:
    leaky = matrix["noavx-leaky"]
    assert leaky["facts"]["runner"]["contained"] is False
    proof = cell(leaky, "lane.self")
    assert proof["outcome"] == "error" and "children escape the emulated CPU" in proof["message"], proof
    assert leaky["status"] == "infra-error"
    assert "lane.self failed" in leaky["reason"]
    # what the escape would have hidden: the extension "passes" in the leaky lane's loky workers
    assert cell(leaky, "children_checks.avx2ext_in_loky")["outcome"] == "pass"
