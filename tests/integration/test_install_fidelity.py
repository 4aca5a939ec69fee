"""Install fidelity: every lane's environment is laid out as ``pip install`` lays it out in a venv.

A wheel built here (``foo``, one per architecture) carries a shared library
in ``.data/data/lib/libfoo.so`` (compiled with gcc / aarch64-linux-gnu-gcc), a
script in ``.data/scripts``, a header in ``.data/headers``, a console entry
point and a package. It goes through ``host``, ``linux-amd64-docker``,
``linux-arm64-docker`` and ``linux-x86_64-noavx`` as a user's own wheel
(``--wheel``, ``--checks-module``). In each lane the checks of
tests/fixtures/fidelity/fidelity_checks.py list the distribution's files
relative to ``sys.prefix`` — compared here, file by file, with a real
``pip install`` of the same wheel into a fresh venv on this host — load
``sys.prefix + "/lib/libfoo.so"`` with ctypes, and run the scripts.

Before the change (``pip install --target``) ``lib/libfoo.so``, the scripts
and the header never reached a lane: ``fidelity_checks.cdll`` failed everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import venv
import zipfile
from pathlib import Path

import corpus
import pytest
import yaml
from conftest import ROOT, archmatrix_argv, python_env, require

from archmatrix.hostfacts import detect
from archmatrix.suite.result import load

pytestmark = pytest.mark.integration

LANES = ("host", "linux-amd64-docker", "linux-arm64-docker", "linux-x86_64-noavx")
FIXTURE = ROOT / "tests" / "fixtures" / "fidelity"
CHECKS = FIXTURE / "fidelity_checks.py"
CHECK_IDS = ("fidelity_checks.files", "fidelity_checks.cdll", "fidelity_checks.scripts")

INIT = b"""\
import ctypes
import sys


def main():
    lib = ctypes.CDLL(sys.prefix + "/lib/libfoo.so")
    print("foo main", lib.foo_answer())
"""


def build_foo_wheel(dest: Path, arch: str) -> Path:
    """``foo-1.0-py3-none-linux_<arch>.whl``: package, library, script, header, entry point."""
    info, data = "foo-1.0.dist-info", "foo-1.0.data"
    tag = f"py3-none-linux_{arch}"
    files = {
        "foo/__init__.py": INIT,
        f"{data}/data/lib/libfoo.so": corpus.compile_shared(FIXTURE / "foo.c", arch, python=False),
        f"{data}/scripts/foo": b"#!python\nprint('foo script')\n",
        f"{data}/headers/foo.h": (FIXTURE / "foo.h").read_bytes(),
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n",
        f"{info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: archmatrix-tests\nRoot-Is-Purelib: false\n"
                          f"Tag: {tag}\n").encode(),
        f"{info}/entry_points.txt": b"[console_scripts]\nfoo-cli = foo:main\n",
    }
    path = corpus.write_wheel(dest / f"foo-1.0-{tag}.whl", files, dist_info=info)
    # as build backends write them: regular files, the script and the library executable
    rewritten = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            mode = 0o755 if item.filename.endswith(("/scripts/foo", ".so")) else 0o644
            item.external_attr = (stat.S_IFREG | mode) << 16
            out.writestr(item, src.read(item))
    os.replace(rewritten, path)
    return path


def pip_listing(wheel: Path, venv_dir: Path) -> dict[str, str]:
    """The wheel installed by a real ``pip install`` into a fresh venv; its files as the check lists them."""
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    python = venv_dir / "bin" / "python"
    # pip installs only wheels tagged for this host: the aarch64 one under a py3-none-any name
    # (pip reads the tags from the file name; the files it lays out are the wheel's, unchanged)
    renamed = venv_dir.parent / f"{venv_dir.name}-wheel" / "foo-1.0-py3-none-any.whl"
    renamed.parent.mkdir()
    shutil.copyfile(wheel, renamed)
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile",
                    "--disable-pip-version-check", str(renamed)], check=True, capture_output=True, text=True)
    out = subprocess.run(
        [python, "-c", "import json, sys, fidelity_checks as f; print(json.dumps(f.listing(sys.prefix)))"],
        env={**os.environ, "PYTHONPATH": str(FIXTURE)}, check=True, capture_output=True, text=True,
    ).stdout
    listing: dict[str, str] = json.loads(out)
    return listing


@pytest.fixture(scope="module")
def fidelity_run(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> tuple[Path, Path, int, str]:
    host = detect()
    require(host.docker.reachable, f"docker: {host.docker.error}")
    tmp = tmp_path_factory.mktemp("fidelity")
    wheels = tmp / "wheels"
    for arch in corpus.ARCHES:
        build_foo_wheel(wheels, arch)
    shipped = yaml.safe_load((ROOT / "ci" / "matrix.yaml").read_text())
    lanes = [lane for lane in shipped["lanes"] if lane["id"] in LANES]
    assert sorted(lane["id"] for lane in lanes) == sorted(LANES), "ci/matrix.yaml lost a lane"
    checks = dict(shipped.get("checks", {}), select=list(CHECK_IDS))  # wheel.* rows come with every lane
    config = tmp / "fidelity.yaml"
    config.write_text(yaml.safe_dump({"lock": shipped["lock"], "checks": checks, "lanes": lanes},
                                     sort_keys=False))
    results = tmp / "results"
    proc = subprocess.run(
        archmatrix_argv("matrix", "--config", str(config), "--results", str(results), "--workdir",
                        str(workdir), "--wheel", str(wheels), "--checks-module", str(CHECKS)),
        env=python_env(), cwd=ROOT, capture_output=True, text=True, timeout=3600,
    )
    print(proc.stderr[-3000:])
    return wheels, results, proc.returncode, proc.stdout + proc.stderr


def test_every_lane_has_the_wheels_files_where_pip_puts_them_and_loads_its_library(
    fidelity_run: tuple[Path, Path, int, str], tmp_path: Path
) -> None:
    wheels, results, returncode, output = fidelity_run
    assert returncode == 0, output[-3000:]
    expected = {arch: pip_listing(next(wheels.glob(f"foo-*linux_{arch}.whl")), tmp_path / f"pip-{arch}")
                for arch in corpus.ARCHES}
    # the reference itself has what --target dropped: a library, a script, a header, the entry point
    for path in ("lib/libfoo.so", "bin/foo", "bin/foo-cli", f"include/site/python{corpus.PYTHON}/foo/foo.h"):
        assert path in expected["x86_64"], sorted(expected["x86_64"])
    for lane_id in LANES:
        lane = load(results / f"{lane_id}.json")
        assert lane.status == "ran", (lane_id, lane.status)
        cells = {c.id: c for c in lane.checks}
        for check_id in (*CHECK_IDS, "wheel.foo"):
            assert cells[check_id].outcome.value == "pass", (lane_id, check_id, cells[check_id].message)
        arch = "aarch64" if lane_id == "linux-arm64-docker" else "x86_64"
        got = json.loads(cells["fidelity_checks.files"].metrics["files"])
        assert got == expected[arch], (lane_id, got, expected[arch])
        assert cells["fidelity_checks.cdll"].metrics["answer"] == 42
        if lane_id.endswith("-docker"):  # the container's interpreter runs the image's venv, not /usr
            assert lane.facts["python"]["prefix"] == "/opt/archmatrix/venv", lane.facts["python"]
