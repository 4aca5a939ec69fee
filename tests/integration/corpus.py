"""The fault corpus, built from the sources in tests/fixtures/ (the repository holds no binaries).

Each package reproduces one failure class (tests/test_fault_corpus.py runs
them through the real lanes):

========================  =====================================================  =====================
package                   what it is                                             expected outcome
========================  =====================================================  =====================
avx2ext                   C extension running AVX2 with no CPU check             illegal-instruction
                          (tests/fixtures/avx2ext; plain C in its aarch64 wheel) without AVX
numpy 2.4.6+noopenblas    the locked numpy wheel repacked without its bundled    blas-load
                          ``numpy.libs/libscipy_openblas64_*.so``
wrongarch                 x86-64 extension in a ``py3-none-any`` wheel           wrong-arch on aarch64
segv                      C extension reading through a NULL pointer             segfault
(hang_checks.py)          a deadlocked check with a forked worker                timeout
wrongblas                 an RTLD_GLOBAL library interposing numpy's dgemm       numeric-mismatch
ompdup                    two copies of LLVM's libomp (Debian's libomp5)          lane warning + abort
pyahocorasick==2.0.0      a locked version with an x86-64 wheel only (PyPI)      no-wheel on aarch64
========================  =====================================================  =====================

Compilers: the host's ``gcc`` for its own architecture and
``<arch>-linux-gnu-gcc`` for the other (Debian: gcc-aarch64-linux-gnu and
libc6-dev-arm64-cross, installed by ci/setup-linux-host.sh). Python
extensions use this interpreter's headers (3.11, like the lock); the limited
API ones build for either architecture from the same headers. Wheels are
written byte for byte reproducibly (fixed timestamps, sorted entries), so a
rebuilt corpus has the same hashes and the lanes' staging and images are
reused from the cache.
"""

from __future__ import annotations

import base64
import hashlib
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from conftest import ROOT, require

from archmatrix.staging.tags import find_wheel, platform_tags, supported_tags

FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = FIXTURES / "corpus"
AVX2 = FIXTURES / "avx2ext"
ARCHES = ("x86_64", "aarch64")
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
ABI = f"cp{sys.version_info.major}{sys.version_info.minor}"
# The glibc of the Debian bookworm lanes; wheels for it also fit this host.
GLIBC = (2, 36)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

# The corpus's user check modules, as a user passes them with --checks-module.
CHECK_MODULES = (
    AVX2 / "avx2_checks.py",
    CORPUS / "wrongarch" / "wrongarch_checks.py",
    CORPUS / "segv" / "segv_checks.py",
    CORPUS / "hang" / "hang_checks.py",
    CORPUS / "wrongblas" / "wrongblas_checks.py",
    CORPUS / "ompdup" / "ompdup_checks.py",
)
NO_WHEEL_ON_AARCH64 = ("pyahocorasick", "2.0.0")  # cp311: manylinux x86_64 wheel, none for aarch64
INSTALL_HINT = "ci/setup-linux-host.sh (apt-get install gcc gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"


# --- compiling --------------------------------------------------------------------------------


def compiler(arch: str) -> str | None:
    """A C compiler that targets ``arch`` on this host."""
    if arch == platform.machine():
        return shutil.which("gcc") or shutil.which(f"{arch}-linux-gnu-gcc")
    return shutil.which(f"{arch}-linux-gnu-gcc")


def compile_shared(source: Path, arch: str, *flags: str, python: bool = True) -> bytes:
    """``source`` compiled and linked as a shared object for ``arch``; its bytes."""
    cc = compiler(arch)
    require(cc is not None, f"no C compiler for {arch}: {INSTALL_HINT}")
    assert cc is not None
    args = []
    if python:
        include = Path(sysconfig.get_paths()["include"])
        require((include / "Python.h").exists(), f"Python headers missing in {include} (python3-dev)")
        args.append(f"-I{include}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.so"
        # no -g and a fixed file name: the same source gives the same bytes (build-id included)
        subprocess.run([cc, "-shared", "-fPIC", "-O2", *flags, *args, str(source), "-o", str(out)],
                       check=True, capture_output=True, text=True)
        return out.read_bytes()


def ext_suffix(arch: str) -> str:
    """CPython's extension suffix on Linux for ``arch`` (``.cpython-311-x86_64-linux-gnu.so``)."""
    return f".cpython-{ABI[2:]}-{arch}-linux-gnu.so"


# --- wheels -----------------------------------------------------------------------------------


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(path: Path, files: Mapping[str, bytes], *, dist_info: str) -> Path:
    """Write ``files`` (plus a RECORD) as a wheel at ``path``, reproducibly."""
    record = [*(_record_line(name, data) for name, data in files.items()), f"{dist_info}/RECORD,,"]
    entries = {**files, f"{dist_info}/RECORD": ("\n".join(record) + "\n").encode()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, entries[name])
    return path


def pack_wheel(dest: Path, name: str, version: str, tag: str, files: Mapping[str, bytes], *,
               purelib: bool = False) -> Path:
    """A wheel of ``files`` named and tagged as given."""
    info = f"{name}-{version}.dist-info"
    meta = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: archmatrix-tests\n"
                          f"Root-Is-Purelib: {'true' if purelib else 'false'}\nTag: {tag}\n").encode(),
    }
    return write_wheel(dest / f"{name}-{version}-{tag}.whl", {**files, **meta}, dist_info=info)


def build_avx2_wheel(dest: Path, arch: str | None = None) -> Path:
    """tests/fixtures/avx2ext for ``arch`` (default: this host): ``-mavx2`` on x86-64."""
    arch = arch or platform.machine()
    flags = ["-mavx2"] if arch == "x86_64" else []
    module = compile_shared(AVX2 / "avx2ext.c", arch, *flags)
    tag = f"{ABI}-{ABI}-linux_{arch}"
    return pack_wheel(dest, "avx2ext", "1.0", tag, {f"avx2ext{ext_suffix(arch)}": module})


def build_segv_wheel(dest: Path, arch: str) -> Path:
    module = compile_shared(CORPUS / "segv" / "segv.c", arch)
    return pack_wheel(dest, "segv", "1.0", f"{ABI}-abi3-linux_{arch}", {"segv.abi3.so": module})


def build_wrongarch_wheel(dest: Path) -> Path:
    """x86-64 code in a wheel that claims to be pure Python (``py3-none-any``)."""
    source = CORPUS / "wrongarch"
    files = {
        "wrongarch/__init__.py": (source / "wrongarch" / "__init__.py").read_bytes(),
        "wrongarch/_native.abi3.so": compile_shared(source / "_native.c", "x86_64"),
    }
    return pack_wheel(dest, "wrongarch", "1.0", "py3-none-any", files, purelib=True)


def build_wrongblas_wheel(dest: Path, arch: str) -> Path:
    source = CORPUS / "wrongblas"
    files = {
        "wrongblas/__init__.py": (source / "wrongblas" / "__init__.py").read_bytes(),
        "wrongblas/libwrongblas.so": compile_shared(source / "wrongblas.c", arch, "-fvisibility=hidden",
                                                    python=False),
        "wrongblas.pth": (source / "wrongblas.pth").read_bytes(),
    }
    return pack_wheel(dest, "wrongblas", "1.0", f"py3-none-linux_{arch}", files)


def build_ompdup_wheel(dest: Path, arch: str, libomp: bytes) -> Path:
    source = CORPUS / "ompdup"
    files = {
        "ompdup/__init__.py": (source / "ompdup" / "__init__.py").read_bytes(),
        "ompdup/vendor_a/libomp.so.5": libomp,
        "ompdup/vendor_b/libomp.so.5": libomp,
        "ompdup.pth": (source / "ompdup.pth").read_bytes(),
    }
    return pack_wheel(dest, "ompdup", "1.0", f"py3-none-linux_{arch}", files)


# --- third-party binaries: fetched with their ordinary clients, cached ---------------------------


def fetch_libomp(arch: str, cache: Path) -> bytes:
    """LLVM's OpenMP runtime (``libomp.so.5``) for ``arch``, from the distribution's ``libomp5-*`` package.

    ``apt-get download`` with a private state directory and
    ``APT::Architecture`` set to the target, from this host's own apt
    sources: nothing about the host's package state changes.
    """
    deb_arch = DEB_ARCH[arch]
    out = cache / f"libomp-{deb_arch}.so.5"
    if out.exists():
        return out.read_bytes()
    apt_get, dpkg_deb = shutil.which("apt-get"), shutil.which("dpkg-deb")
    require(apt_get is not None and dpkg_deb is not None,
            "apt-get and dpkg-deb are needed to fetch LLVM's OpenMP runtime (a Debian or Ubuntu host)")
    assert apt_get is not None and dpkg_deb is not None
    state = cache / f"apt-{deb_arch}"
    shutil.rmtree(state, ignore_errors=True)
    for sub in ("lists/partial", "cache/archives/partial"):
        (state / sub).mkdir(parents=True)
    options = [
        "-o", f"Dir::State::Lists={state / 'lists'}", "-o", f"Dir::Cache={state / 'cache'}",
        "-o", "Dir::State::status=/dev/null", "-o", f"APT::Architecture={deb_arch}",
        "-o", f"APT::Architectures::={deb_arch}", "-o", "APT::Sandbox::User=root",
    ]
    subprocess.run([apt_get, *options, "-qq", "update"], check=True, capture_output=True, text=True)
    found = subprocess.run([shutil.which("apt-cache") or "apt-cache", *options, "search", "--names-only",
                            r"^libomp5(-[0-9]+)?$"], check=True, capture_output=True, text=True).stdout
    names = sorted((line.split()[0] for line in found.splitlines() if line.strip()),
                   key=lambda n: int(re.sub(r"\D", "", n.removeprefix("libomp5")) or 0))
    require(bool(names), f"no libomp5 package for {deb_arch} in this host's apt sources")
    subprocess.run([apt_get, *options, "-qq", "download", f"{names[-1]}:{deb_arch}"], cwd=state,
                   check=True, capture_output=True, text=True)
    deb = next(state.glob("*.deb"))
    subprocess.run([dpkg_deb, "-x", str(deb), str(state / "root")], check=True)
    library = next(p for p in sorted((state / "root").rglob("libomp.so.5")))
    out.write_bytes(library.resolve().read_bytes())
    shutil.rmtree(state, ignore_errors=True)
    return out.read_bytes()


def locked_wheel(name: str, version: str, arch: str, wheel_cache: Path) -> Path:
    """The wheel the lanes install for ``name==version`` on ``arch`` (downloaded into the lanes' cache)."""
    tags = supported_tags(PYTHON, arch, GLIBC)
    wheel = find_wheel(wheel_cache, name, version, tags)
    if wheel is None:
        wheel_cache.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "--python-version", PYTHON, "--implementation", "cp",
                "--abi", ABI, "--dest", str(wheel_cache)]
        for tag in platform_tags(arch, GLIBC):
            argv += ["--platform", tag]
        subprocess.run([*argv, f"{name}=={version}"], check=True, capture_output=True, text=True)
        wheel = find_wheel(wheel_cache, name, version, tags)
    assert wheel is not None, (name, version, arch)
    return wheel


def numpy_without_openblas(dest: Path, version: str, arch: str, wheel_cache: Path) -> Path:
    """The locked numpy wheel for ``arch``, repacked without its bundled OpenBLAS.

    Everything else is byte for byte numpy's; the version gets a local label
    (``2.4.6+noopenblas``) so nobody mistakes it for the real one. Installed
    as a local wheel it takes the place of the lock's numpy.
    """
    source = locked_wheel("numpy", version, arch, wheel_cache)
    new_version = f"{version}+noopenblas"
    old_info, new_info = f"numpy-{version}.dist-info", f"numpy-{new_version}.dist-info"
    files: dict[str, bytes] = {}
    removed = []
    with zipfile.ZipFile(source) as zf:
        for name in zf.namelist():
            if name.startswith("numpy.libs/libscipy_openblas"):
                removed.append(name)
                continue
            if name == f"{old_info}/RECORD":
                continue
            data = zf.read(name)
            if name == f"{old_info}/METADATA":
                data = re.sub(rb"(?m)^Version: .*$", f"Version: {new_version}".encode(), data, count=1)
            files[name.replace(old_info, new_info, 1) if name.startswith(old_info) else name] = data
    assert removed, f"{source.name} bundles no libscipy_openblas: numpy changed how it ships its BLAS"
    tags = source.name.removesuffix(".whl").split("-", 2)[2]
    return write_wheel(dest / f"numpy-{new_version}-{tags}.whl", files, dist_info=new_info)


def build_corpus(dest: Path, cache: Path) -> Path:
    """Every corpus wheel, for both architectures where the package has both, in ``dest``; returns it."""
    for arch in ARCHES:
        build_avx2_wheel(dest, arch)
        build_segv_wheel(dest, arch)
        build_wrongblas_wheel(dest, arch)
        build_ompdup_wheel(dest, arch, fetch_libomp(arch, cache))
    build_wrongarch_wheel(dest)
    return dest
