"""Pure parts of archmatrix.baseimage: apt mirror discovery, tags, host checks."""

from __future__ import annotations

import marshal
import re
import sys
from pathlib import Path

import pytest

from archmatrix.baseimage import (
    MANYLINUX_PACKAGES,
    SMOKE_TEST,
    SYSTEM_PACKAGES,
    AptSource,
    BaseImageError,
    _mounts_below,
    base_image_tag,
    finish_rootfs,
    foreign_arch_problem,
    main,
    mirror_from_apt_config,
    mmdebstrap_argv,
    parse_deb822_sources,
    parse_one_line_sources,
    pick_mirror,
    stdlib_version,
)

# The shape Debian 12 installs: the main archive and security in one deb822 file.
DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

ONE_LINE = """\
# a comment
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://security.example/ bookworm-security main
deb http://mirror.example/debian/ bookworm main contrib  # trailing comment
"""


def test_deb822_picks_the_main_archive_not_security() -> None:
    sources = parse_deb822_sources(DEB822)
    assert sources == [
        AptSource("http://mirror.example/debian", ("bookworm", "bookworm-updates")),
        AptSource("http://security.example/debian-security", ("bookworm-security",)),
    ]
    assert pick_mirror(sources, "bookworm") == "http://mirror.example/debian"


def test_deb822_skips_disabled_and_source_only_stanzas_and_joins_continuations() -> None:
    text = (
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://first.example/debian\n http://second.example/debian\n"
        "Suites: bookworm\n"
    )
    assert [s.uri for s in parse_deb822_sources(text)] == [
        "http://first.example/debian",
        "http://second.example/debian",
    ]


def test_one_line_format_skips_deb_src_and_options() -> None:
    sources = parse_one_line_sources(ONE_LINE)
    assert sources == [
        AptSource("http://security.example/", ("bookworm-security",)),
        AptSource("http://mirror.example/debian/", ("bookworm",)),
    ]
    assert pick_mirror(sources, "bookworm") == "http://mirror.example/debian"


def test_release_alias_is_accepted_when_no_codename_matches() -> None:
    sources = [
        AptSource("http://security.example/", ("stable-security",)),
        AptSource("https://mirror.example/debian", ("stable",)),
    ]
    assert pick_mirror(sources, "bookworm") == "https://mirror.example/debian"


def test_no_usable_source_is_a_clear_error() -> None:
    sources = [
        AptSource("http://security.example/", ("bookworm-security",)),
        AptSource("cdrom:[Debian 12]/", ("bookworm",)),
    ]
    with pytest.raises(BaseImageError, match="no apt source for suite 'bookworm'"):
        pick_mirror(sources, "bookworm")


def test_mirror_from_files_reads_both_formats(tmp_path: Path) -> None:
    one_line = tmp_path / "sources.list"
    one_line.write_text("deb http://security.example/ bookworm-security main\n")
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(DEB822.replace("mirror.example", "deb822.example"))
    assert mirror_from_apt_config([one_line, deb822]) == "http://deb822.example/debian"
    only_security = mirror_from_apt_config([one_line], suite="bookworm-security")
    assert only_security == "http://security.example"


TAG = re.compile(r"archmatrix-base:bookworm-(amd64|arm64)-[0-9a-f]{12}")


def test_tag_is_content_derived_and_stable() -> None:
    tag = base_image_tag("linux/arm64", "bookworm", ["python3"])
    assert TAG.fullmatch(tag)
    assert tag.startswith("archmatrix-base:bookworm-arm64-")
    assert tag == base_image_tag("linux/arm64", "bookworm", ("python3", "python3"))
    pair = base_image_tag("linux/arm64", "bookworm", ["python3", "ca-certificates"])
    assert pair == base_image_tag("linux/arm64", "bookworm", ["ca-certificates", "python3"])


def test_tag_changes_with_every_input() -> None:
    tag = base_image_tag("linux/arm64", "bookworm", ["python3"])
    others = {
        base_image_tag("linux/amd64", "bookworm", ["python3"]),
        base_image_tag("linux/arm64", "trixie", ["python3"]),
        base_image_tag("linux/arm64", "bookworm", ["python3", "python3-venv"]),
    }
    assert tag not in others and len(others) == 3


def test_unknown_platform_suggests_the_right_one() -> None:
    with pytest.raises(BaseImageError, match="Perhaps you meant 'linux/arm64'"):
        base_image_tag("linux/arm46", "bookworm", ["python3"])


def test_native_arch_needs_no_emulation(tmp_path: Path) -> None:
    assert foreign_arch_problem("x86_64", host_machine="x86_64", binfmt_dir=tmp_path) is None


def test_foreign_arch_needs_an_enabled_binfmt_entry(tmp_path: Path) -> None:
    problem = foreign_arch_problem("aarch64", host_machine="x86_64", binfmt_dir=tmp_path)
    assert problem is not None and "no qemu binfmt_misc entry for aarch64" in problem
    entry = tmp_path / "qemu-aarch64"
    entry.write_text("disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    problem = foreign_arch_problem("aarch64", host_machine="x86_64", binfmt_dir=tmp_path)
    assert problem is not None and "disabled" in problem
    entry.write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\n")
    assert foreign_arch_problem("aarch64", host_machine="x86_64", binfmt_dir=tmp_path) is None


def test_leftover_mounts_inside_a_rootfs_are_found_deepest_first(tmp_path: Path) -> None:
    rootfs = tmp_path / "my rootfs"
    escaped = str(rootfs).replace(" ", "\\040")
    mounts = (
        "proc /proc proc rw 0 0\n"
        f"proc {escaped}/proc proc rw 0 0\n"
        f"udev {escaped}/dev devtmpfs rw 0 0\n"
        f"devpts {escaped}/dev/pts devpts rw 0 0\n"
        f"tmpfs {escaped}-other/proc tmpfs rw 0 0\n"
    )
    found = _mounts_below(rootfs, mounts)
    assert found[0] == rootfs / "dev" / "pts"
    assert set(found) == {rootfs / "proc", rootfs / "dev", rootfs / "dev" / "pts"}


# ------------------------------------------------------------------ mmdebstrap recipe (issue 20)


def test_the_debootstrap_recipe_tags_are_not_reused() -> None:
    # tags of the debootstrap --variant=minbase images: hosts that cached them must build the new ones
    old = {"linux/amd64": "archmatrix-base:bookworm-amd64-eb2a2783e2dd",
           "linux/arm64": "archmatrix-base:bookworm-arm64-8ce09d44cd55"}
    for platform, tag in old.items():
        assert base_image_tag(platform, "bookworm", ["python3"]) != tag


MIRROR = "http://mirror.example/debian"


@pytest.mark.parametrize("arch, links", [("arm64", ["bin", "sbin", "lib"]),
                                         ("amd64", ["bin", "sbin", "lib", "lib64"])])
def test_mmdebstrap_only_unpacks_and_lays_out_merged_usr(arch: str, links: list[str], tmp_path: Path) -> None:
    argv = mmdebstrap_argv(arch, "trixie", ["python3", "libgomp1"], tmp_path / "rootfs", MIRROR)
    assert argv[0] == "mmdebstrap"
    # extract: no maintainer script, so nothing of the target architecture runs under QEMU
    assert "--variant=extract" in argv and f"--architectures={arch}" in argv
    include = next(a for a in argv if a.startswith("--include="))[len("--include="):].split(",")
    assert set(include) == {"python3", "libgomp1", *SYSTEM_PACKAGES, *MANYLINUX_PACKAGES}
    assert "libstdc++6" in include  # numpy's C++ code links the system's libstdc++.so.6
    assert argv[-3:] == ["trixie", str(tmp_path / "rootfs"), MIRROR]  # the suite is a parameter
    hook = next(a for a in argv if a.startswith("--setup-hook="))
    assert f"for d in {' '.join(links)};" in hook and 'ln -s "usr/$d" "$1/$d"' in hook


def fake_rootfs(root: Path, version: str) -> Path:
    (root / "usr/share/base-passwd").mkdir(parents=True)
    (root / "usr/share/base-passwd/passwd.master").write_text("root:*:0:0:root:/root:/bin/sh\n")
    (root / "usr/share/base-passwd/group.master").write_text("root:*:0:\n")
    (root / "usr/share/libc-bin").mkdir(parents=True)
    (root / "usr/share/libc-bin/nsswitch.conf").write_text("passwd: files\n")
    (root / "etc").mkdir()
    stdlib = root / "usr/lib" / f"python{version}"
    (stdlib / "json").mkdir(parents=True)
    (stdlib / "os.py").write_text("SEP = '/'\n")
    (stdlib / "json" / "__init__.py").write_text("def dumps(x):\n    return repr(x)\n")
    return root


def test_finish_rootfs_does_what_the_skipped_maintainer_scripts_would(tmp_path: Path) -> None:
    version = "{}.{}".format(*sys.version_info[:2])
    root = fake_rootfs(tmp_path / "rootfs", version)
    (root / "etc/group").write_text("kept:x:1:\n")  # present already: not overwritten
    notes = finish_rootfs(root, ldconfig=False, host_pythons=[sys.executable])
    assert (root / "etc/passwd").read_text().startswith("root:*:0:0:")
    assert (root / "etc/group").read_text() == "kept:x:1:\n"
    assert (root / "etc/nsswitch.conf").is_file()
    assert stdlib_version(root) == version
    # bytecode next to the image's stdlib, naming the path the image has (not this host's scratch dir)
    pyc = next((root / "usr/lib" / f"python{version}" / "json" / "__pycache__").glob("__init__.*.pyc"))
    code = marshal.loads(pyc.read_bytes()[16:])
    assert code.co_filename == f"/usr/lib/python{version}/json/__init__.py"
    assert any("byte-compiled" in n for n in notes)


def test_no_matching_host_python_leaves_the_stdlib_without_bytecode(tmp_path: Path) -> None:
    root = fake_rootfs(tmp_path / "rootfs", "3.99")
    notes = finish_rootfs(root, ldconfig=False, host_pythons=[sys.executable])
    assert not list(root.rglob("*.pyc"))
    assert "no Python 3.99 on this host" in notes[-1]


def test_ldconfig_needs_libc_bin_unpacked(tmp_path: Path) -> None:
    root = fake_rootfs(tmp_path / "rootfs", "3.99")
    with pytest.raises(BaseImageError, match="no /sbin/ldconfig"):
        finish_rootfs(root, host_pythons=[])


def test_print_tag_builds_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--platform", "linux/arm64", "--suite", "trixie", "--print-tag"]) == 0
    assert capsys.readouterr().out.split() == [base_image_tag("linux/arm64", "trixie", ["python3"])]


def test_the_smoke_test_loads_what_manylinux_wheels_take_from_the_system() -> None:
    # an image without libstdc++ ran python3 but no numpy (import-error in every check): never again
    assert "libstdc++.so.6" in SMOKE_TEST
    import platform
    import subprocess

    proc = subprocess.run([sys.executable, "-c", SMOKE_TEST], capture_output=True, text=True, check=True)
    assert proc.stdout.split()[0] == platform.machine()
