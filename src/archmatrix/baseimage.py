"""Debian base images for the Docker lanes, built without any registry.

Where ``python:3.x-slim`` cannot be pulled, a base image is made from Debian
packages: ``mmdebstrap --variant=extract`` unpacks the lane's packages (python3
and what it depends on) and the few pieces of Debian's Essential set a lane can
notice (see :data:`SYSTEM_PACKAGES`) into a directory, without running any of
their maintainer scripts, so nothing of a foreign architecture runs under QEMU
while the root filesystem is made: seconds, where debootstrap's second stage
took minutes for arm64. What those scripts would have done that a lane can
see is done here from the host (:func:`finish_rootfs`): /etc/passwd and
/etc/group from base-passwd, /etc/nsswitch.conf, the dynamic linker's cache
(the one foreign program run: the target's static ``ldconfig``, well under a
second under QEMU), and the standard library's bytecode. Then a tarball of
that root filesystem and a ``FROM scratch`` / ``ADD rootfs.tar /``
build with an explicit platform. Building (rather than ``docker import``) is
what makes the daemon record the image's architecture correctly.

Images are tagged by a hash of everything that determines their content, so a
host that already has the tag never rebuilds and a new host builds once.

Command line: ``python -m archmatrix.baseimage --platform linux/arm64``
(``--print-tag`` prints the tag without building: CI's cache key).
"""

from __future__ import annotations

import argparse
import difflib
import glob
import hashlib
import json
import logging
import os
import platform as platform_module
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archmatrix.command import CommandError, call_interruptible, check_interrupted, run
from archmatrix.errors import ExitCode, InfraError, UsageError
from archmatrix.hostfacts import BINFMT_DIR, SETUP_SCRIPT
from archmatrix.suite import arch as arch_mod

if TYPE_CHECKING:  # the SDK is imported lazily: pure helpers must not need it
    from docker import DockerClient

log = logging.getLogger("archmatrix.baseimage")

# Bump whenever the recipe below changes what ends up in the image (mmdebstrap
# options, the fix-ups of finish_rootfs, excluded paths, Dockerfile): the tag
# changes, so hosts rebuild. 1 was debootstrap --variant=minbase.
RECIPE_VERSION = 2

DEFAULT_SUITE = "bookworm"
# Lanes only need an interpreter: their site-packages are staged on the host
# (archmatrix.staging) and mounted, so no pip, venv or certificates inside.
DEFAULT_PACKAGES: tuple[str, ...] = ("python3",)
# Extracted into every image besides the lane's packages: the parts of Debian's
# Essential set a lane (or a user's test suite) can notice. base-files: /tmp
# (1777), /etc/os-release; base-passwd: the passwd/group the lane's user 65534
# ("nobody") comes from; dash: /bin/sh for a test's subprocess; libc-bin:
# ldconfig and ld.so.cache, which ctypes.util.find_library reads.
SYSTEM_PACKAGES: tuple[str, ...] = ("base-files", "base-passwd", "dash", "libc-bin")
# Libraries the manylinux policy lets a wheel take from the system rather than
# bundle (numpy's and scipy's C++ code links libstdc++.so.6). debootstrap's
# minbase brought them along with apt; unpacking only python3's closure does not.
MANYLINUX_PACKAGES: tuple[str, ...] = ("libstdc++6", "libgcc-s1", "zlib1g")
# and SMOKE_TEST loads them, so an image without them is never tagged
MANYLINUX_LIBRARIES: tuple[str, ...] = ("libstdc++.so.6", "libgcc_s.so.1", "libz.so.1")
# Unpack only, run no maintainer script: no second stage, nothing under QEMU.
VARIANT = "extract"
REPOSITORY = "archmatrix-base"

# Docker platform -> (Debian architecture, kernel machine name), for the
# architectures the lanes use.
PLATFORMS: dict[str, tuple[str, str]] = {
    a.docker_platform: (a.docker, a.name) for a in (arch_mod.X86_64, arch_mod.AARCH64)
}

# Modules the lanes rely on (numpy uses ctypes, joblib multiprocessing and the
# compressors); Debian splits parts of the standard library into other
# packages, so prove they are in the image rather than assume it.
SMOKE_TEST = (
    "import bz2, concurrent.futures, ctypes, json, lzma, multiprocessing, platform, "
    "sqlite3, sysconfig, zlib; "
    f"[ctypes.CDLL(name) for name in {list(MANYLINUX_LIBRARIES)!r}]; "
    "print(platform.machine(), platform.python_version())"
)

APT_SOURCES_LIST = Path("/etc/apt/sources.list")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
SETUP_HINT = f"run: {SETUP_SCRIPT}"

BOOTSTRAP_TIMEOUT = 15 * 60  # seconds here; a slow mirror is not a hang
LDCONFIG_TIMEOUT = 5 * 60

# Merged /usr as debootstrap (and so every bookworm system) lays it out: these
# top-level directories are links into /usr. They must exist before the
# packages are unpacked, so mmdebstrap makes them in its setup hook.
MERGED_USR_DIRS: dict[str, tuple[str, ...]] = {
    "amd64": ("bin", "sbin", "lib", "lib64"),
    "arm64": ("bin", "sbin", "lib"),
}

# What the maintainer scripts of SYSTEM_PACKAGES copy into place on a first
# install (base-passwd's and libc-bin's postinst): source, destination.
FIRST_INSTALL_COPIES: tuple[tuple[str, str], ...] = (
    ("usr/share/base-passwd/passwd.master", "etc/passwd"),
    ("usr/share/base-passwd/group.master", "etc/group"),
    ("usr/share/libc-bin/nsswitch.conf", "etc/nsswitch.conf"),
)

# Left out of the tarball: the kernel and Docker provide proc/sys/dev, and apt's
# caches and the documentation only make the image bigger.
TAR_EXCLUDES = (
    "./proc/*",
    "./sys/*",
    "./dev/*",
    "./var/cache/apt/*.bin",
    "./var/cache/apt/archives/*.deb",
    "./var/lib/apt/lists/*",
    "./usr/share/doc/*",
    "./usr/share/man/*",
    "./usr/share/info/*",
)

DOCKERFILE = """\
FROM scratch
ADD rootfs.tar /
ENV LANG=C.UTF-8
CMD ["python3"]
"""

Progress = Callable[[str], None]


class BaseImageError(InfraError):
    """A base image could not be built; the message says why and what to do."""


class DockerUnreachable(UsageError):
    """No Docker daemon to build with (exit 2, as ``base-images`` always did)."""

    def report(self) -> str:
        return f"error: {self}"


# --- apt configuration --------------------------------------------------------


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` source: where it is and which suites it serves."""

    uri: str
    suites: tuple[str, ...]


def parse_deb822_sources(text: str) -> list[AptSource]:
    """``deb`` entries of a deb822 ``.sources`` file (stanzas split by blank lines)."""
    sources: list[AptSource] = []
    for stanza in _deb822_stanzas(text):
        if "deb" not in stanza.get("types", "").split():
            continue
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        suites = tuple(stanza.get("suites", "").split())
        sources.extend(AptSource(uri, suites) for uri in stanza.get("uris", "").split())
    return sources


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
            continue
        if line[0] in " \t" and key:  # continuation of a multi-line field
            current[key] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def parse_one_line_sources(text: str) -> list[AptSource]:
    """``deb`` lines of a one-line-style ``sources.list``."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue  # deb-src and anything else
        rest = line[len("deb ") :].strip()
        if rest.startswith("["):  # options such as [arch=amd64 signed-by=...]
            rest = rest.partition("]")[2].strip()
        fields = rest.split()
        if len(fields) >= 2:
            sources.append(AptSource(fields[0], (fields[1],)))
    return sources


def pick_mirror(sources: Iterable[AptSource], suite: str) -> str:
    """The mirror the root filesystem's packages come from, for ``suite``.

    Prefer a source that lists the suite itself (``bookworm``, not
    ``bookworm-security`` or ``bookworm-updates``, which live elsewhere or lack
    most packages); else the first one serving any release suite (``stable``).
    """
    usable = [s for s in sources if s.uri.split(":", 1)[0] in ("http", "https", "file")]
    for source in usable:
        if suite in source.suites:
            return source.uri.rstrip("/")
    for source in usable:
        if any("-" not in s and "/" not in s for s in source.suites):
            return source.uri.rstrip("/")
    found = ", ".join(f"{s.uri} ({' '.join(s.suites)})" for s in usable) or "none"
    raise BaseImageError(f"no apt source for suite {suite!r} found (http/https/file sources: {found})")


def default_apt_source_files() -> list[Path]:
    """apt's own order: sources.list first, then sources.list.d alphabetically."""
    files = [APT_SOURCES_LIST] if APT_SOURCES_LIST.is_file() else []
    files += sorted(
        Path(p) for p in glob.glob(str(APT_SOURCES_DIR / "*")) if p.endswith((".list", ".sources"))
    )
    return files


def mirror_from_apt_config(paths: Sequence[Path] | None = None, *, suite: str = DEFAULT_SUITE) -> str:
    """The Debian mirror this machine's apt is configured with.

    ``paths`` are apt source files (``*.sources`` are deb822, anything else is
    one-line style); without them, this machine's apt configuration is read.
    Never hard-coded: hosts without internet reach only their own mirror.
    """
    files = list(paths) if paths is not None else default_apt_source_files()
    sources: list[AptSource] = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".sources":
            sources += parse_deb822_sources(text)
        else:
            sources += parse_one_line_sources(text)
    return pick_mirror(sources, suite)


# --- tags -----------------------------------------------------------------------


def debian_arch(platform: str) -> str:
    """``linux/arm64`` -> ``arm64``; unknown platforms fail with a suggestion."""
    try:
        return PLATFORMS[platform][0]
    except KeyError:
        close = difflib.get_close_matches(platform, PLATFORMS, n=1)
        hint = f" Perhaps you meant {close[0]!r}?" if close else ""
        known = ", ".join(PLATFORMS)
        raise BaseImageError(f"unsupported platform {platform!r} (known: {known}).{hint}") from None


def base_image_tag(platform: str, suite: str, packages: Sequence[str]) -> str:
    """Content-derived tag, e.g. ``archmatrix-base:bookworm-arm64-<hash12>``.

    The mirror is deliberately not hashed: it is where packages come from, not
    what they are, and hosts with different mirrors must share a tag.
    """
    arch = debian_arch(platform)
    recipe = {
        "recipe": RECIPE_VERSION,
        "platform": platform,
        "suite": suite,
        "tool": "mmdebstrap",
        "variant": VARIANT,
        "packages": sorted(set(packages)),
        "system_packages": list(SYSTEM_PACKAGES),
        "manylinux_packages": list(MANYLINUX_PACKAGES),
        "merged_usr": list(MERGED_USR_DIRS.get(arch, ())),
        "first_install": [list(pair) for pair in FIRST_INSTALL_COPIES],
        "excludes": list(TAR_EXCLUDES),
        "dockerfile": DOCKERFILE,
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return f"{REPOSITORY}:{suite}-{arch}-{digest}"


# --- host checks ------------------------------------------------------------------


def foreign_arch_problem(
    machine: str,
    *,
    host_machine: str | None = None,
    binfmt_dir: Path = BINFMT_DIR,
) -> str | None:
    """Why binaries for ``machine`` cannot run here, or None when they can.

    Native binaries always run; foreign ones need a qemu binfmt_misc entry that
    is enabled. ``host_machine`` defaults to this machine's.
    """
    host = host_machine if host_machine is not None else platform_module.machine()
    if machine == host:
        return None
    entry = binfmt_dir / f"qemu-{machine}"
    if not entry.exists():
        return f"no qemu binfmt_misc entry for {machine} on this {host} host ({entry} missing)"
    status = entry.read_text(errors="replace").splitlines()[:1]
    if status != ["enabled"]:
        return f"the qemu binfmt_misc entry for {machine} is disabled ({entry})"
    return None


def _check_host(machine: str) -> None:
    if sys.platform != "linux":
        raise BaseImageError("building base images needs a Linux host with mmdebstrap")
    if os.geteuid() != 0:
        # --mode=root: unpacking as the files' owners and chroot for ldconfig
        raise BaseImageError("building a base image needs root (mmdebstrap --mode=root): "
                             "run archmatrix as root (or via sudo) once; the image is cached afterwards")
    if shutil.which("mmdebstrap") is None:
        raise BaseImageError(f"mmdebstrap is not installed; {SETUP_HINT}")
    problem = foreign_arch_problem(machine)
    if problem:
        raise BaseImageError(f"{problem}; {SETUP_HINT}")


# --- building ---------------------------------------------------------------------


def ensure_base_image(
    client: DockerClient,
    platform: str,
    *,
    suite: str = DEFAULT_SUITE,
    packages: Sequence[str] = DEFAULT_PACKAGES,
    workdir: Path,
    progress: Progress | None = None,
    mirror: str | None = None,
) -> str:
    """Return the tag of a base image for ``platform``, building it if missing.

    ``workdir`` holds the temporary root filesystem and build context, both
    removed afterwards. ``mirror`` defaults to the one in this machine's apt
    configuration. ``progress`` receives one line per step.
    """
    say = progress or (lambda _msg: None)
    tag = base_image_tag(platform, suite, packages)
    if _image_exists(client, tag):
        say(f"{tag}: present, not rebuilding")
        return tag

    arch, machine = PLATFORMS[platform]
    _check_host(machine)
    mirror = mirror or mirror_from_apt_config(suite=suite)
    workdir.mkdir(parents=True, exist_ok=True)
    build_dir = Path(tempfile.mkdtemp(prefix=f"base-{arch}-", dir=workdir))
    rootfs = build_dir / "rootfs"
    try:
        say(f"{tag}: mmdebstrap {suite} ({arch}, {VARIANT}, +{','.join(packages)}) from {mirror}")
        started = time.monotonic()
        _mmdebstrap(arch, suite, packages, rootfs, mirror)
        say(f"{tag}: packages unpacked in {time.monotonic() - started:.1f} s; finishing the root filesystem")
        for note in finish_rootfs(rootfs):
            say(f"{tag}: {note}")
        image_from_rootfs(client, rootfs, platform, tag, build_dir, say)
    finally:
        _remove_tree(build_dir)
    say(f"{tag}: ready")
    return tag


def image_from_rootfs(
    client: DockerClient, rootfs: Path, platform: str, tag: str, scratch: Path, say: Progress
) -> None:
    """Pack ``rootfs`` (removed afterwards), build it as ``tag`` for ``platform``, prove python3 runs.

    ``scratch`` holds the build context. Also the last steps of bench/base_images.py's
    debootstrap baseline, so both recipes are timed through the same packing and build.
    """
    machine = PLATFORMS[platform][1]
    context = scratch / "context"
    context.mkdir()
    say(f"{tag}: packing rootfs")
    _pack_rootfs(rootfs, context / "rootfs.tar")
    _remove_tree(rootfs)  # free the space before docker copies the context
    (context / "Dockerfile").write_text(DOCKERFILE)
    say(f"{tag}: building image for {platform}")
    _build(client, context, platform, tag)
    say(f"{tag}: checking python3 inside")
    check_interrupted()
    _verify(client, tag, platform, machine, say)


def _image_exists(client: DockerClient, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def mmdebstrap_argv(arch: str, suite: str, packages: Sequence[str], rootfs: Path, mirror: str) -> list[str]:
    """The mmdebstrap command that unpacks ``packages`` (and the system and manylinux ones) into ``rootfs``.

    apt resolves their dependencies; nothing is configured, so no code of the
    target architecture runs. The setup hook (run by mmdebstrap's ``sh`` on
    the host, before unpacking; fixed text, nothing interpolated from input
    but the directory names above) lays out merged /usr.
    """
    links = " ".join(MERGED_USR_DIRS.get(arch, ()))
    hook = f'for d in {links}; do mkdir -p "$1/usr/$d" && ln -s "usr/$d" "$1/$d"; done' if links else ""
    include = sorted(set(SYSTEM_PACKAGES) | set(MANYLINUX_PACKAGES) | set(packages))
    argv = ["mmdebstrap", "--mode=root", f"--variant={VARIANT}", f"--architectures={arch}",
            f"--include={','.join(include)}"]
    if hook:
        argv.append(f"--setup-hook={hook}")
    return [*argv, suite, str(rootfs), mirror]


def _mmdebstrap(arch: str, suite: str, packages: Sequence[str], rootfs: Path, mirror: str) -> None:
    try:
        run(mmdebstrap_argv(arch, suite, packages, rootfs, mirror), timeout=BOOTSTRAP_TIMEOUT)
    except CommandError as exc:
        raise BaseImageError(f"mmdebstrap for {arch} failed ({exc}):\n{exc.tail()}") from exc


def finish_rootfs(
    rootfs: Path, *, ldconfig: bool = True, host_pythons: Sequence[str] | None = None
) -> list[str]:
    """Do in an unpacked root filesystem what the maintainer scripts would have done that a lane sees.

    Returns one line per step for the progress log. ``ldconfig=False`` skips
    the one step that runs a program of the target (for tests); ``host_pythons``
    are the interpreters tried for the bytecode (default: this one, then
    ``python3.X`` on PATH).
    """
    notes: list[str] = []
    for source, dest in FIRST_INSTALL_COPIES:
        src, dst = rootfs / source, rootfs / dest
        if src.is_file() and not dst.exists():
            shutil.copy2(src, dst)
            notes.append(f"{dest} from {source}")
    if ldconfig:
        _ldconfig(rootfs)
        notes.append("ld.so.cache written by the image's own ldconfig")
    notes.append(_compile_stdlib(rootfs, host_pythons))
    return notes


def _ldconfig(rootfs: Path) -> None:
    """ld.so.cache, by the target's own (static) ldconfig: a host's cannot read foreign libraries."""
    if not (rootfs / "sbin" / "ldconfig").exists():
        raise BaseImageError(f"{rootfs} has no /sbin/ldconfig (is libc-bin unpacked?)")
    try:
        run(["chroot", str(rootfs), "/sbin/ldconfig"], timeout=LDCONFIG_TIMEOUT)
    except CommandError as exc:
        raise BaseImageError(f"ldconfig in the new root filesystem failed ({exc}):\n{exc.tail()}") from exc


def stdlib_version(rootfs: Path) -> str | None:
    """The X.Y of the image's python3 (its /usr/lib/pythonX.Y/os.py), or None without one."""
    found = sorted(p.parent.name for p in (rootfs / "usr" / "lib").glob("python3.*/os.py"))
    return found[-1].removeprefix("python") if found else None


def _compile_stdlib(rootfs: Path, host_pythons: Sequence[str] | None) -> str:
    """Byte-compile the image's standard library, as python3's postinst does, with a host interpreter.

    Bytecode is the same on every architecture and only needs the same X.Y;
    without such an interpreter here the image is still right, its lanes only
    compile what they import each time (the lane runs with PYTHONDONTWRITEBYTECODE).
    """
    version = stdlib_version(rootfs)
    if version is None:
        return "no python3 standard library to byte-compile"
    candidates = list(host_pythons) if host_pythons is not None else [sys.executable, f"python{version}"]
    for candidate in candidates:
        exe = shutil.which(candidate)
        if exe is None:
            continue
        probe = run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], check=False)
        if probe.returncode != 0 or probe.stdout.strip() != version:
            continue
        stdlib = rootfs / "usr" / "lib" / f"python{version}"
        # -s/-p: the bytecode names /usr/lib/pythonX.Y/..., where the image has it
        argv = [exe, "-m", "compileall", "-q", "-s", str(rootfs), "-p", "/", str(stdlib)]
        try:
            run(argv, timeout=LDCONFIG_TIMEOUT)
        except CommandError as exc:
            raise BaseImageError(f"byte-compiling {stdlib} failed ({exc}):\n{exc.tail()}") from exc
        return f"standard library byte-compiled by {exe} ({version})"
    return f"no Python {version} on this host: the standard library stays without bytecode"


def _pack_rootfs(rootfs: Path, tarball: Path) -> None:
    argv: list[str] = ["tar", "-C", str(rootfs), "--numeric-owner", "--xattrs"]
    argv += [f"--exclude={pattern}" for pattern in TAR_EXCLUDES]
    # not compressed: gzip took longer than everything else (20 s of a cold
    # build here), and the tarball only travels to the engine's API
    argv += ["-cf", str(tarball), "."]
    try:
        run(argv)
    except CommandError as exc:
        raise BaseImageError(f"packing the root filesystem failed: {exc}\n{exc.tail()}") from exc


def _build(client: DockerClient, context: Path, platform: str, tag: str) -> None:
    import docker.errors

    try:
        # abandoned on interrupt: the engine cancels a build whose client is gone
        call_interruptible(
            client.images.build,
            path=str(context),
            platform=platform,
            tag=tag,
            network_mode="none",  # a scratch build needs nothing from outside
            rm=True,
            forcerm=True,
            pull=False,
        )
    except docker.errors.BuildError as exc:
        lines = [str(chunk.get("stream", chunk.get("error", ""))).rstrip() for chunk in exc.build_log]
        tail = "\n".join(line for line in lines if line)[-2000:]
        raise BaseImageError(f"docker build of {tag} failed: {exc.msg}\n{tail}") from exc
    except docker.errors.APIError as exc:
        raise BaseImageError(f"docker build of {tag} failed: {exc}") from exc


def _verify(client: DockerClient, tag: str, platform: str, machine: str, say: Progress) -> None:
    """Prove the image is what its tag says, or remove it so it is rebuilt."""
    import docker.errors

    expected_arch = debian_arch(platform)
    try:
        recorded = client.images.get(tag).attrs.get("Architecture")
        if recorded != expected_arch:
            raise BaseImageError(f"{tag} records architecture {recorded!r}, expected {expected_arch!r}")
        output = client.containers.run(
            tag,
            ["python3", "-c", SMOKE_TEST],
            platform=platform,
            network_mode="none",
            init=True,  # under QEMU a PID 1 that gets a fatal signal hangs
            remove=True,
            stdout=True,
            stderr=True,
        )
        seen = output.decode(errors="replace").strip()
        if not seen.startswith(machine + " "):
            raise BaseImageError(f"python3 in {tag} reports {seen!r}, expected machine {machine}")
        say(f"{tag}: python3 runs: {seen}")
    except (BaseImageError, docker.errors.DockerException) as exc:
        try:
            client.images.remove(tag, force=True)
        except docker.errors.DockerException as remove_exc:
            log.warning("could not remove faulty image %s: %s", tag, remove_exc)
        if isinstance(exc, BaseImageError):
            raise
        detail = getattr(exc, "stderr", None)
        detail_text = detail.decode(errors="replace") if isinstance(detail, bytes) else ""
        raise BaseImageError(f"smoke test of {tag} failed: {exc}\n{detail_text}") from exc


def _mounts_below(path: Path, mounts: str | None = None) -> list[Path]:
    """Mount points inside ``path``, deepest first.

    ``mounts`` is the text of a mount table; /proc/self/mounts when not given.
    """
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            return []
    root = os.path.realpath(path)
    found: list[Path] = []
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        # The kernel escapes space, tab, newline and backslash there as \ooo.
        mount_point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])
        if mount_point.startswith(root + os.sep):
            found.append(Path(mount_point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _remove_tree(path: Path) -> None:
    """Remove ``path``, but never recurse into a mount left by a dead bootstrap.

    A killed debootstrap or mmdebstrap can leave /proc, /sys or a bind-mounted
    /dev inside the root filesystem; deleting through those would damage the host.
    """
    if not path.exists():
        return
    for mount_point in _mounts_below(path):
        try:
            run(["umount", "--lazy", str(mount_point)])
        except CommandError as exc:
            raise BaseImageError(
                f"{mount_point} is still mounted and could not be unmounted; not removing {path}: {exc}"
            ) from exc
    shutil.rmtree(path)


# --- command line -----------------------------------------------------------------


def default_workdir() -> Path:
    """Scratch space under the current project's ``.archmatrix`` (ignored by git)."""
    return Path.cwd() / ".archmatrix" / "base-images"


def build_images(
    platforms: Sequence[str],
    *,
    suite: str = DEFAULT_SUITE,
    packages: Sequence[str] = DEFAULT_PACKAGES,
    workdir: Path | None = None,
    mirror: str | None = None,
) -> int:
    """Build (or find) the base image of each platform, printing one line each.

    Returns ``ExitCode.FAILED`` when any platform failed (the others are still
    built); raises :class:`DockerUnreachable` when there is no daemon.
    """
    import docker

    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", flush=True)

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnreachable(f"docker daemon not reachable ({exc}); {SETUP_HINT}") from None
    status = ExitCode.OK
    for platform in platforms:
        begun = time.monotonic()
        try:
            tag = ensure_base_image(
                client,
                platform,
                suite=suite,
                packages=tuple(packages),
                workdir=workdir or default_workdir(),
                progress=progress,
                mirror=mirror,
            )
        except BaseImageError as exc:
            print(f"error: {platform}: {exc}", file=sys.stderr)
            status = ExitCode.FAILED
            continue
        print(f"{platform}: {tag} ({time.monotonic() - begun:.0f} s)", flush=True)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m archmatrix.baseimage``: :func:`build_images` with every knob on the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m archmatrix.baseimage",
        description="Build Debian base images for archmatrix's Docker lanes with mmdebstrap.",
    )
    parser.add_argument(
        "--platform",
        action="append",
        required=True,
        choices=sorted(PLATFORMS),
        help="platform to build for (repeatable)",
    )
    parser.add_argument("--suite", default=DEFAULT_SUITE, help="Debian suite (default: %(default)s)")
    parser.add_argument(
        "--package",
        action="append",
        dest="packages",
        help=f"Debian package to include (repeatable; default: {' '.join(DEFAULT_PACKAGES)})",
    )
    parser.add_argument("--mirror", help="Debian mirror (default: from this machine's apt config)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory")
    parser.add_argument("--print-tag", action="store_true",
                        help="print each platform's content-derived tag and build nothing (a CI cache key)")
    args = parser.parse_args(argv)
    if args.print_tag:
        for platform in args.platform:
            print(base_image_tag(platform, args.suite, args.packages or DEFAULT_PACKAGES))
        return ExitCode.OK
    return build_images(args.platform, suite=args.suite, packages=args.packages or DEFAULT_PACKAGES,
                        workdir=args.workdir, mirror=args.mirror)


if __name__ == "__main__":
    from archmatrix.errors import reporting_errors
    from archmatrix.render.escape import terminal_lines

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(reporting_errors(main, clean=terminal_lines))
