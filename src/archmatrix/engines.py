"""Docker engines: which one a lane runs on, how to reach it, and what it is.

A Docker lane runs on the environment's engine (``DOCKER_HOST``, else the
docker CLI's current context, else the local socket: what ``docker`` itself
would use) unless its options name another one: ``docker_host: URL``
(``unix:///…``, ``ssh://user@host``, ``tcp://host:2376``) or
``docker_context: NAME`` (a context made with ``docker context create``).
Nothing assumes the engine shares this machine's files: build contexts,
images and lane results all travel through its API.

The docker SDK is imported lazily: the pure parts (naming, grouping) need it not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .suite.arch import normalise as normalise_arch

if TYPE_CHECKING:
    from docker import DockerClient

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Engines reached through a socket on this machine share this machine's cores
# (and kernel: its binfmt handlers); every other scheme is another machine.
LOCAL_SCHEMES = ("unix://", "npipe://")
PROBE_TIMEOUT = 10  # seconds: an engine that does not answer `info` by then is unreachable


@dataclass(frozen=True)
class DockerFacts:
    reachable: bool
    error: str = ""
    server_arch: str = ""  # the daemon's own architecture (x86_64, aarch64)
    server_version: str = ""
    desktop: bool = False  # Docker Desktop runs foreign arches through its own VM
    address: str = ""  # where the engine is (unix:///var/run/docker.sock, ssh://…): archmatrix.engines
    cpus: int = 0  # the engine's cores (docker info NCPU): its lanes' parallelism when it is another machine


class EngineError(Exception):
    """The engine cannot be used; ``hint`` is the fix."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Engine:
    """A lane's Docker engine as its options name it; neither set: the environment's."""

    host: str = ""  # options.docker_host
    context: str = ""  # options.docker_context

    @property
    def is_default(self) -> bool:
        return not self.host and not self.context

    @property
    def key(self) -> str:
        """Stable name for maps (host facts, parallelism groups): ``""`` is the default engine."""
        if self.context:
            return f"context={self.context}"
        return f"host={self.host}" if self.host else ""

    def __str__(self) -> str:
        if self.context:
            return f"docker context {self.context}"
        return f"docker_host {self.host}" if self.host else "the default Docker engine"

    def fix(self) -> str:
        """What to do when this engine does not answer."""
        if self.context:
            return (f"start that engine, or fix the context (`docker --context {self.context} info` must "
                    f"answer; `docker context create {self.context} --docker host=ssh://USER@HOST`)")
        if self.host:
            return (f"start that engine, or fix options.docker_host (`docker -H {self.host} info` must "
                    "answer; a URL such as unix:///run/docker.sock, ssh://USER@HOST or tcp://HOST:2376)")
        return "ci/setup-linux-host.sh (installs and starts the engine, registers QEMU)"


def lane_engine(options: object) -> Engine:
    """The engine a Docker lane's options name (``options``: the lane's option mapping)."""
    get = getattr(options, "get", None)
    if get is None:
        return Engine()
    return Engine(host=str(get("docker_host") or ""), context=str(get("docker_context") or ""))


def is_local(address: str) -> bool:
    """An engine on this machine (a socket here), not another machine's."""
    return not address or address.startswith(LOCAL_SCHEMES)


def address(engine: Engine) -> str:
    """Where ``engine`` is (its URL), as far as it can be told without asking it."""
    if engine.host:
        return engine.host
    from docker.context import ContextAPI
    from docker.utils import kwargs_from_env

    if engine.context:
        ctx = ContextAPI.get_context(engine.context)
        return str(ctx.Host) if ctx is not None and ctx.Host else ""
    base_url = kwargs_from_env().get("base_url")
    if base_url:
        return str(base_url)
    try:
        return str(ContextAPI.kwargs_from_context().get("base_url") or DEFAULT_SOCKET)
    except Exception:  # a broken ~/.docker/config.json: docker.from_env fails the same way, later
        return DEFAULT_SOCKET


def connect(engine: Engine, *, timeout: int = 600) -> DockerClient:
    """A client of ``engine`` (not yet asked anything); :class:`EngineError` when it cannot be named."""
    import docker
    from docker.context import ContextAPI
    from docker.errors import DockerException

    if engine.is_default:  # as always: its errors are the environment's, reported as they were
        return docker.from_env(timeout=timeout)
    try:
        if engine.context:
            ctx = ContextAPI.get_context(engine.context)
            if ctx is None:  # DockerClient.from_context would quietly use the default engine
                raise EngineError(f"no docker context named {engine.context!r}",
                                  f"create it (`docker context create {engine.context} --docker "
                                  "host=ssh://USER@HOST`) or fix options.docker_context; `docker context ls` "
                                  "lists them")
            url = str(ctx.Host or "")
            tls = ctx.TLSConfig or False
        else:
            url, tls = engine.host, False
        # ssh:// through the ssh client, as the docker CLI does (its config, agent and known hosts)
        return docker.DockerClient(base_url=url, tls=tls, timeout=timeout,
                                   use_ssh_client=url.startswith("ssh://"))
    except EngineError:
        raise
    except (DockerException, Exception) as exc:  # a malformed URL surfaces as anything
        raise EngineError(f"{engine} cannot be used: {reason(exc)}", engine.fix()) from exc


def facts_of(client: DockerClient, where: str) -> DockerFacts:
    """Ask a connected engine what it is (``docker info``: its architecture, cores, Desktop or not)."""
    info = client.info()
    version = client.version()
    return DockerFacts(
        reachable=True,
        server_arch=normalise_arch(str(info.get("Architecture", ""))),
        server_version=str(version.get("Version", "")),
        desktop="desktop" in str(info.get("OperatingSystem", "")).lower(),
        address=where,
        cpus=int(info.get("NCPU") or 0),
    )


def probe(engine: Engine) -> DockerFacts:
    """What ``engine`` is, or why it does not answer (never raises)."""
    try:
        import docker.errors  # noqa: F401
    except ImportError:
        return DockerFacts(False, "the docker Python SDK is not installed")
    try:
        where = address(engine)
    except Exception as exc:  # an unreadable context store
        return DockerFacts(False, one_line(f"{type(exc).__name__}: {exc}"))
    from docker.errors import DockerException

    try:
        client = connect(engine, timeout=PROBE_TIMEOUT)
        try:
            return facts_of(client, where)
        finally:
            client.close()
    except EngineError as exc:
        return DockerFacts(False, one_line(str(exc)), address=where)
    except DockerException as exc:
        return DockerFacts(False, one_line(str(exc)), address=where)
    except Exception as exc:  # requests/urllib3 connection errors surface raw
        return DockerFacts(False, one_line(f"{type(exc).__name__}: {exc}"), address=where)


def one_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line[:limit]


# what the OS said, inside urllib3's "Max retries exceeded … (Caused by NewConnectionError(…: [Errno 111] …))"
ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")


def reason(exc: BaseException) -> str:
    """The line that says why a connection failed: the OS's own error when one is buried in the text."""
    found = ERRNO.findall(str(exc))
    return one_line(found[-1].strip() if found else str(exc))
