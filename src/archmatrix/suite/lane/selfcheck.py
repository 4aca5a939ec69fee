"""Proof that a lane is what it claims: its CPU lacks what its profile says, and its children do too.

A lane that emulates a CPU without AVX (qemu-user ``-cpu Westmere``) is only
worth something if *every* process of the lane runs on that CPU. qemu-user
follows ``fork`` but not ``exec``: without containment a ``subprocess`` of
``sys.executable``, a ``multiprocessing`` pool started by ``spawn`` or
``forkserver`` and joblib's loky workers run natively, with AVX2, and pass
what Rosetta 2 would kill. So the lane asks the CPU itself, not CPUID: for
each instruction-set extension it executes one instruction of that extension
in a forked child and sees whether it dies of SIGILL — in this process, in a
``subprocess`` of ``sys.executable`` and in a ``spawn`` child. A profile that
says "no AVX2" while the instruction runs, or a child that runs what the
parent cannot, makes the self-check fail, and the host marks the lane
``infra-error``: never a set of green cells on the wrong CPU.

Stdlib only (ctypes, mmap): it runs first, before any package is imported.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .. import arch as arch_mod

# One instruction of each extension, then ``ret`` (verified with capstone).
# The names are numpy's (__cpu_features__), as the lane facts record them.
PROBES: Mapping[str, Mapping[str, bytes]] = {
    arch_mod.X86_64.name: {
        "AVX": bytes.fromhex("c5fc57c0c3"),  # vxorps ymm0, ymm0, ymm0
        "AVX2": bytes.fromhex("c5fdefc0c3"),  # vpxor ymm0, ymm0, ymm0
        "FMA3": bytes.fromhex("c4e279b8c0c3"),  # vfmadd231ps xmm0, xmm0, xmm0
        "F16C": bytes.fromhex("c4e27913c0c3"),  # vcvtph2ps xmm0, xmm0
        "AVX512F": bytes.fromhex("62f17d48efc0c3"),  # vpxord zmm0, zmm0, zmm0
    },
    arch_mod.AARCH64.name: {
        "SVE": bytes.fromhex("2050bf04c0035fd6"),  # rdvl x0, #1
    },
}

# What one probe found: the instruction ran, it died of SIGILL, or it could not be tried.
RAN, SIGILL, UNKNOWN = "ran", "sigill", "unknown"
CHILD_TIMEOUT = 120.0  # a python start under emulation takes seconds, not minutes


def machine() -> str:
    return arch_mod.normalise(platform.machine())


def features() -> tuple[str, ...]:
    return tuple(PROBES.get(machine(), {}))


def probe(feature: str) -> str:
    """Execute one instruction of ``feature`` in a forked child: RAN, SIGILL or UNKNOWN."""
    code = PROBES.get(machine(), {}).get(feature)
    if code is None:
        return UNKNOWN
    pid = os.fork()
    if pid == 0:  # the child: silent (faulthandler, qemu's "uncaught target signal 4"), then the instruction
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            signal.signal(signal.SIGILL, signal.SIG_DFL)
            page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            page.write(code)
            ctypes.CFUNCTYPE(None)(ctypes.addressof(ctypes.c_char.from_buffer(page)))()
        except BaseException:
            os._exit(3)  # no executable page here (a hardened kernel): cannot tell
        os._exit(0)
    _pid, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGILL:
        return SIGILL
    return RAN if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else UNKNOWN


def probe_all(names: Iterable[str]) -> dict[str, str]:
    return {name: probe(name) for name in names}


def start_subprocess(names: Sequence[str]) -> subprocess.Popen[str] | str:
    """The probes in a ``subprocess`` of ``sys.executable``, started.

    ``-S`` (no site: its .pth files cost time under emulation, and which CPU
    the process runs on is all that matters here), with this module's own
    package root on PYTHONPATH so the child finds it wherever it was installed.
    """
    code = ("import json, sys; from archmatrix.suite.lane.selfcheck import probe_all; "
            "print(json.dumps(probe_all(sys.argv[1:])))")
    root = str(Path(__file__).resolve().parents[3])  # …/archmatrix/suite/lane/selfcheck.py
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    try:
        return subprocess.Popen([sys.executable, "-S", "-c", code, *names], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def finish_subprocess(proc: subprocess.Popen[str] | str) -> dict[str, str] | str:
    """What the started subprocess found; the error text when it failed."""
    if isinstance(proc, str):
        return proc
    try:
        out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        return f"{type(exc).__name__}: {exc}"
    try:
        return dict(json.loads(out.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return f"exit status {proc.returncode}: {err.strip()[-300:]}"


def in_subprocess(names: Sequence[str]) -> dict[str, str] | str:
    """The probes in ``subprocess`` of ``sys.executable``; the error text when that child failed."""
    return finish_subprocess(start_subprocess(names))


def in_spawned(names: Sequence[str]) -> dict[str, str] | str:
    """The probes in a ``multiprocessing`` child started by ``spawn`` (a fresh ``sys.executable``).

    The child would first re-import this program's ``__main__`` (the whole
    suite engine, seconds under emulation); it needs nothing of it, so the
    spawn is prepared from an empty ``__main__`` (this runs in a forked check
    child: nothing else sees the swap).
    """
    real_main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return dict(pool.apply_async(probe_all, (list(names),)).get(CHILD_TIMEOUT))
    except Exception as exc:  # the child could not start or report: say what happened
        return f"{type(exc).__name__}: {exc}"
    finally:
        if real_main is not None:
            sys.modules["__main__"] = real_main


def children(names: Sequence[str]) -> dict[str, dict[str, str] | str]:
    """The probes in a ``subprocess`` and a ``spawn`` child, side by side (each a fresh interpreter)."""
    started = start_subprocess(names)
    spawned = in_spawned(names)
    return {"subprocess": finish_subprocess(started), "spawn": spawned}


def judge(
    parent: Mapping[str, str],
    children: Mapping[str, Mapping[str, str] | str],
    absent: Iterable[str],
    profile: str = "",
) -> list[str]:
    """What is wrong with the lane, one sentence each; empty when it is what it claims. Pure."""
    problems = []
    present = [name for name in absent if parent.get(name) == RAN]
    if present:
        problems.append(f"the lane's CPU executes {', '.join(present)}, but its CPU profile {profile or '?'} "
                        "has none of them: the lane does not emulate the CPU it claims")
    for how, seen in children.items():
        if isinstance(seen, str):
            problems.append(f"a child started by {how} could not be checked: {seen}")
            continue
        escaped = [name for name, result in parent.items() if result == SIGILL and seen.get(name) == RAN]
        if escaped:
            problems.append(f"a child started by {how} executes {', '.join(escaped)}, which the lane's CPU "
                            "cannot: children escape the emulated CPU")
    return problems


def python_problem(expected: str, version: tuple[int, int] | None = None) -> str:
    """The interpreter is not the lock's (major.minor), or ''."""
    have = version or (sys.version_info.major, sys.version_info.minor)
    if expected and f"{have[0]}.{have[1]}" != expected:
        return (f"the lane's interpreter is Python {have[0]}.{have[1]}, the lock is for {expected}: "
                "its wheels would not load")
    return ""
