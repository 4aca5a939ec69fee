"""Find the native binaries of an environment: a site-packages directory, a venv, wheel files.

A file is a binary by its magic bytes, not its name (``.so``, ``.dylib``,
``.so.5.0.0`` and extension-less Mach-O files all occur in wheels). Each
binary is paired with the distribution that installed it (its
``*.dist-info/RECORD``) and that distribution's wheel tags, so the glibc a
binary needs can be compared with the manylinux tag it shipped under.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from . import elf, macho
from .image import BadBinary, Image

# Suffixes that are never native code: skipping them saves opening ~10 000
# files of a numpy + scipy + scikit-learn site-packages.
_TEXT_SUFFIXES = frozenset({
    ".py", ".pyc", ".pyi", ".pyx", ".pxd", ".pxi", ".h", ".hpp", ".c", ".cpp", ".f", ".f90", ".txt",
    ".md", ".rst", ".json", ".toml", ".cfg", ".ini", ".csv", ".html", ".css", ".js", ".svg", ".png",
    ".typed", ".npy", ".npz", ".mat", ".dat", ".arff", ".gz", ".bz2", ".xz", ".wav", ".pem", ".pth",
})
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_")
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_MACOSX = re.compile(r"^macosx_(\d+)_(\d+)_")
_ADDSITEDIR = re.compile(r"""site\.addsitedir\(\s*['"]([^'"]+)['"]""")

MiB = 1024 * 1024
# Memory is bounded by what the audit decides to read, never by what a file
# claims: a 1.5 MB wheel can expand to gigabytes. A wheel member larger than
# MEMBER_CAP is reported unreadable (install the wheel and audit the
# directory instead); all members read from archives in one audit share
# ARCHIVE_BUDGET; a binary on disk larger than FILE_CAP is not read.
MEMBER_CAP = 128 * MiB
ARCHIVE_BUDGET = 1024 * MiB
FILE_CAP = 1024 * MiB
# What zipfile and zlib raise for a damaged member: bad CRC, corrupt deflate
# data, an unsupported compression method, an encrypted member, names that differ.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError,
              ValueError, UnicodeDecodeError)


class NotAnEnvironment(Exception):
    """A path the audit cannot read: missing, or neither a directory, a wheel nor a binary."""


class ReadBudget:
    """The bytes one audit may still decompress from archives (shared by every wheel it reads)."""

    def __init__(self, total: int = ARCHIVE_BUDGET, member_cap: int = MEMBER_CAP,
                 file_cap: int = FILE_CAP) -> None:
        self.left, self.member_cap, self.file_cap = total, member_cap, file_cap

    def allow(self, size: int) -> int:
        """How many bytes a member may be read up to; raises BadBinary when it is over a cap."""
        if size > self.member_cap:
            raise BadBinary(f"{_mib(size)} uncompressed, over the {_mib(self.member_cap)} the audit reads "
                            "from an archive (install the wheel and audit the directory)")
        if size > self.left:
            raise BadBinary(f"the audit's budget of {_mib(ARCHIVE_BUDGET)} read from archives is spent")
        return min(self.member_cap, self.left)


def _zip_error(exc: BaseException) -> str:
    """One line for what zipfile/zlib raised on a damaged member."""
    if isinstance(exc, zlib.error):
        return f"corrupt compressed data (zlib: {exc})"
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc):
        return "encrypted member (needs a password)"
    return f"{type(exc).__name__}: {exc}"


def _mib(n: int) -> str:
    return f"{n / MiB:.0f} MiB" if n >= MiB else f"{n} bytes"


@dataclass(frozen=True)
class DistInfo:
    name: str
    version: str
    tags: tuple[str, ...]  # "cp311-cp311-manylinux_2_27_x86_64", …

    def platform_tags(self) -> list[str]:
        return [t.rsplit("-", 1)[-1] for t in self.tags]

    def manylinux_glibc(self) -> tuple[int, int] | None:
        """The oldest glibc the wheel claims to run on: pip installs it there."""
        claims = []
        for tag in self.platform_tags():
            m = _MANYLINUX.match(tag)
            if m:
                claims.append((int(m.group(1)), int(m.group(2))))
            else:
                claims.extend(v for k, v in _LEGACY_MANYLINUX.items() if tag.startswith(k + "_"))
        return min(claims) if claims else None

    def macos_min(self) -> tuple[int, int] | None:
        claims = [(int(m.group(1)), int(m.group(2))) for t in self.platform_tags() if (m := _MACOSX.match(t))]
        return min(claims) if claims else None


@dataclass(frozen=True)
class Found:
    """A native binary: where it is (for people) and how to read it (once, when audited)."""

    root: str  # the directory, venv site-packages or wheel it was found in
    path: str  # inside ``root`` ("numpy/_core/_multiarray_umath….so"); "" for a binary given directly
    dist: DistInfo | None
    file: Path  # the file itself, or the wheel that holds it
    member: str | None = None  # the wheel member
    error: str = ""  # found but cannot be read: the reason, for the report

    def read(self, budget: ReadBudget | None = None, archive: zipfile.ZipFile | None = None) -> bytes:
        """The binary's bytes, within ``budget``; raises BadBinary (or OSError) when it cannot be read.

        ``archive``: the wheel already open (reading many members, opening it once per member would
        parse its central directory each time: half the time of reading scipy's 114 binaries).
        """
        budget = budget or ReadBudget()
        if self.error:
            raise BadBinary(self.error)
        if self.member is None:
            size = self.file.stat().st_size
            if size > budget.file_cap:
                raise BadBinary(f"{_mib(size)}, over the {_mib(budget.file_cap)} the audit reads")
            return self.file.read_bytes()
        try:
            with contextlib.nullcontext(archive) if archive is not None else zipfile.ZipFile(self.file) as zf:
                info = zf.getinfo(self.member)
                limit = budget.allow(info.file_size)
                with zf.open(info) as fh:
                    # the header's size can lie: never read more than the cap
                    data = fh.read(limit + 1)
                    if len(data) > limit:
                        raise BadBinary(f"expands past the {_mib(limit)} the audit reads from an archive")
                budget.left -= len(data)
                return data
        except ZIP_ERRORS as exc:
            raise BadBinary(f"damaged wheel member: {_zip_error(exc)}") from None


def kind(head: bytes) -> str | None:
    if head.startswith(elf.ELF_MAGIC):
        return "elf"
    if macho.is_macho(head):
        return "macho"
    return None


def images(data: bytes) -> list[Image]:
    """Parse a binary into its images (a fat Mach-O has several); raises BadBinary."""
    if data.startswith(elf.ELF_MAGIC):
        return [elf.parse(data)]
    return macho.parse(data)


def find(path: Path) -> Iterator[Found]:
    """Every native binary under ``path`` (a site-packages directory, a venv, a wheel or one binary)."""
    if not path.exists():
        raise NotAnEnvironment(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "pyvenv.cfg").is_file():
            roots = venv_site_packages(path)
            if not roots:
                raise NotAnEnvironment(f"{path}: a venv without a site-packages directory")
            for root in roots:
                yield from _walk(root)
        else:
            yield from _walk(path)
        return
    if not path.is_file():  # a FIFO would block, /dev/zero never ends
        raise NotAnEnvironment(f"{path}: not a regular file, a directory, a wheel or a binary")
    try:
        is_zip = zipfile.is_zipfile(path)
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise NotAnEnvironment(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if is_zip:
        yield from _wheel(path)
        return
    if kind(head) is None:
        raise NotAnEnvironment(f"{path}: not a directory, a wheel, or an ELF/Mach-O binary")
    yield Found(str(path), "", None, path)


def venv_site_packages(venv: Path) -> list[Path]:
    """The venv's site-packages and the directories its ``.pth`` files add.

    archmatrix's own lane venvs are empty but for a ``.pth`` that adds the
    staged site-packages, so following them is what audits the lane's
    environment. The ``.pth`` files are read, never executed: a plain
    directory line, or ``site.addsitedir('…')``.
    """
    found = sorted(venv.glob("lib/python*/site-packages")) + sorted(venv.glob("Lib/site-packages"))
    roots = [p for p in found if p.is_dir()]
    for site_dir in list(roots):
        for pth in sorted(site_dir.glob("*.pth")):
            try:
                lines = pth.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                m = _ADDSITEDIR.search(line)
                entry = m.group(1) if m else ("" if line.startswith(("#", "import")) else line.strip())
                if not entry:
                    continue
                extra = (site_dir / entry).resolve()
                if extra.is_dir() and extra not in roots:
                    roots.append(extra)
    return roots


def _walk(root: Path) -> Iterator[Found]:
    # A package directory inside a site-packages (site-packages/numpy) has
    # its RECORD one level up.
    records = root
    if not any(root.glob("*.dist-info")) and any(root.parent.glob("*.dist-info")):
        records = root.parent
    owners = _record_owners(records)
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if os.path.splitext(name)[1].lower() in _TEXT_SUFFIXES:
                continue
            full = Path(dirpath, name)
            try:
                st = full.stat()
                if not stat.S_ISREG(st.st_mode) or st.st_size < 64 or (st.st_dev, st.st_ino) in seen:
                    continue  # a FIFO or device would block or never end
                seen.add((st.st_dev, st.st_ino))
                with full.open("rb") as fh:
                    head = fh.read(8)
            except OSError:
                continue  # a dangling symlink or unreadable file is not a binary we can audit
            if kind(head) is None:
                continue
            yield Found(str(root), full.relative_to(root).as_posix(),
                        owners.get(full.relative_to(records).as_posix()), full)


def _record_owners(root: Path) -> dict[str, DistInfo]:
    """Relative path → the distribution whose RECORD lists it."""
    owners: dict[str, DistInfo] = {}
    for info_dir in sorted(root.glob("*.dist-info")):
        record = info_dir / "RECORD"
        try:
            wheel_text = (info_dir / "WHEEL").read_text(encoding="utf-8", errors="replace")
            record_text = record.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        dist = _dist(info_dir.name, wheel_text)
        for row in csv.reader(io.StringIO(record_text)):
            if row:
                owners[str(PurePosixPath(row[0]))] = dist
    return owners


def _dist(info_name: str, wheel_text: str, fallback_tags: tuple[str, ...] = ()) -> DistInfo:
    stem = info_name.removesuffix(".dist-info")
    name, _, version = stem.partition("-")
    tags = tuple(line.split(":", 1)[1].strip() for line in wheel_text.splitlines()
                 if line.lower().startswith("tag:"))
    return DistInfo(name, version, tags or fallback_tags)


def _wheel(path: Path) -> Iterator[Found]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise NotAnEnvironment(f"{path}: unreadable wheel ({exc})") from None
    with zf:
        fallback: tuple[str, ...] = ()
        try:
            _name, _ver, _build, parsed = parse_wheel_filename(path.name)
            fallback = tuple(str(t) for t in sorted(parsed, key=str))
        except InvalidWheelFilename:
            pass
        infos = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/WHEEL")]
        dist = None
        if infos:
            try:
                with zf.open(infos[0]) as fh:
                    wheel_text = fh.read(64 * 1024).decode("utf-8", "replace")
                dist = _dist(infos[0].split("/")[0], wheel_text, fallback)
            except ZIP_ERRORS:
                dist = None  # a damaged WHEEL file: the binaries are still audited, without tags
        for member in zf.infolist():
            if member.is_dir() or member.file_size < 64:
                continue
            if os.path.splitext(member.filename)[1].lower() in _TEXT_SUFFIXES:
                continue
            try:
                with zf.open(member) as fh:
                    head = fh.read(8)
            except ZIP_ERRORS as exc:
                # cannot even tell whether it is a binary: report it rather than drop it
                yield Found(str(path), member.filename, dist, path, member.filename,
                            error=f"damaged wheel member: {_zip_error(exc)}")
                continue
            if kind(head) is None:
                continue
            yield Found(str(path), member.filename, dist, path, member.filename)


__all__ = ["BadBinary", "DistInfo", "Found", "NotAnEnvironment", "ReadBudget", "find", "images", "kind"]
