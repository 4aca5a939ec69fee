"""A lane's environment is laid out as ``pip install`` lays it out in a venv (pypa's installer, no Docker).

The wheel is written here: site-packages code, a ``.pth``, ``.data/data/lib``,
``.data/data/share``, ``.data/scripts``, ``.data/headers`` and a console entry
point. ``pip install --target`` (the staging before) dropped everything but the
site-packages part.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import ClassVar

import pytest

from archmatrix.staging.lock import container_prefix, select_local_wheels, stage_prefix
from archmatrix.staging.prefix import CONTAINER_PREFIX, PrefixSpec
from archmatrix.staging.result import MARKER, read_marker

PY = f"{sys.version_info.major}.{sys.version_info.minor}"


class NoPins:
    python = PY
    packages: ClassVar[dict[str, str]] = {}


def write_wheel(dest: Path) -> Path:
    info, data = "foo-1.0.dist-info", "foo-1.0.data"
    files: dict[str, tuple[bytes, int]] = {
        "foo/__init__.py": (b"def main():\n    print('foo main ran')\n", 0o644),
        "foo.pth": (b"import os; os.environ.setdefault('FOO_PTH_RAN', '1')\n", 0o644),
        f"{data}/data/lib/libfoo.so": (b"\x7fELF not really\n", 0o755),
        f"{data}/data/share/foo/notes.txt": (b"shared\n", 0o644),
        f"{data}/scripts/foo": (b"#!python\nimport sys\nprint('foo script', sys.prefix)\n", 0o755),
        f"{data}/headers/foo.h": (b"int foo(void);\n", 0o644),
        f"{info}/METADATA": (b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n", 0o644),
        f"{info}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
                          0o644),
        f"{info}/entry_points.txt": (b"[console_scripts]\nfoo-cli = foo:main\n", 0o644),
    }
    def digest(body: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()

    record = [f"{name},sha256={digest(body)},{len(body)}" for name, (body, _mode) in files.items()]
    files[f"{info}/RECORD"] = (("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode(), 0o644)
    path = dest / "foo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, (body, mode) in sorted(files.items()):
            entry = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            entry.external_attr = (stat.S_IFREG | mode) << 16  # as build backends write it
            zf.writestr(entry, body)
    return path


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return write_wheel(tmp_path)


def stage(wheel: Path, dest: Path, spec: PrefixSpec, tmp_path: Path) -> None:
    local = select_local_wheels([wheel], PY, "x86_64", (2, 36))
    stage_prefix(NoPins(), local, "x86_64", (2, 36), dest, key="k", wheel_cache=tmp_path / "wheels",
                 spec=spec)


def test_a_container_prefix_has_every_file_where_pip_puts_it_in_a_venv(wheel: Path, tmp_path: Path) -> None:
    dest = tmp_path / "prefix"
    stage(wheel, dest, container_prefix(PY), tmp_path)
    site = dest / "lib" / f"python{PY}" / "site-packages"
    assert (site / "foo" / "__init__.py").is_file() and (site / "foo.pth").is_file()
    assert (dest / "lib" / "libfoo.so").read_bytes() == b"\x7fELF not really\n"  # .data/data → prefix
    assert (dest / "share" / "foo" / "notes.txt").is_file()
    assert (dest / "include" / "site" / f"python{PY}" / "foo" / "foo.h").is_file()
    # scripts: #!python rewritten to the lane's interpreter *inside the container*, executable
    script = (dest / "bin" / "foo").read_text()
    assert script.startswith(f"#!{CONTAINER_PREFIX}/bin/python\n")
    assert os.access(dest / "bin" / "foo", os.X_OK)
    cli = (dest / "bin" / "foo-cli").read_text()
    assert cli.startswith(f"#!{CONTAINER_PREFIX}/bin/python\n") and "from foo import main" in cli
    record = (site / "foo-1.0.dist-info" / "RECORD").read_text()
    for path in ("../../../lib/libfoo.so", "../../../bin/foo", "../../../bin/foo-cli", "foo.pth"):
        assert any(line.startswith(path + ",") for line in record.splitlines()), path
    # the venv files for Debian's interpreter: written, not run (there is no such python here)
    cfg = (dest / "pyvenv.cfg").read_text()
    assert "home = /usr/bin\n" in cfg and "include-system-site-packages = false" in cfg
    assert os.readlink(dest / "bin" / "python") == f"/usr/bin/python{PY}"
    marker = read_marker(dest)
    assert marker is not None and marker.site_packages == site and marker.installed == {"foo": "1.0"}
    assert not list(site.rglob("*.pyc"))  # no bytecode: reproducible, and the lanes write none


def test_a_host_prefix_is_a_venv_whose_prefix_has_the_files_and_whose_scripts_run(wheel: Path,
                                                                                 tmp_path: Path) -> None:
    dest = tmp_path / "venv"
    stage(wheel, dest, PrefixSpec(PY, sys.executable), tmp_path)
    assert (dest / MARKER).is_file()
    python = dest / "bin" / "python"
    probe = ("import os, sys; print(sys.prefix); print(os.path.exists(sys.prefix + '/lib/libfoo.so')); "
             "print(os.environ.get('FOO_PTH_RAN'))")
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PATH": os.environ["PATH"]}).stdout.split()
    assert out == [str(dest), "True", "1"]  # sys.prefix is the venv; lib/ there; the wheel's .pth ran
    assert (dest / "bin" / "foo").read_text().startswith(f"#!{dest}/bin/python\n")
    ran = subprocess.run([dest / "bin" / "foo-cli"], capture_output=True, text=True, check=True)
    assert ran.stdout == "foo main ran\n"
    ran = subprocess.run([dest / "bin" / "foo"], capture_output=True, text=True, check=True)
    assert ran.stdout == f"foo script {dest}\n"
