"""The ``docker`` runner: the suite in a linux/amd64 or linux/arm64 container.

Plan: stage the lock's wheels for the platform on the host (no pip in the
container, ever) — and ``lock.wheels``, the user's own wheels that fit the
platform — into a venv-shaped prefix, as ``pip install`` lays them out in a
venv (:mod:`archmatrix.staging.prefix`), make sure a base image exists (built
from Debian packages when no registry is reachable), build a lane image that
only COPYs that prefix and the suite (with the user's check modules) onto it,
and run it with no network, an init process (under QEMU a PID 1 that gets a fatal
signal hangs forever), the platform explicit, and ``QEMU_CPU`` set from the
lane's CPU profile. Images are tagged by a hash of everything that went into
them, so a warm matrix builds nothing. Containers are removed after use, on
failure and on Ctrl-C.

The engine is the environment's unless the lane names one (``docker_host`` /
``docker_context``, :mod:`archmatrix.engines`), and it need not share a single
file with this machine: build contexts go up through its API, base images are
built (or moved from the local engine) through it, and the lane's result comes
back with ``get_archive`` from the stopped container.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import shutil
import tarfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .. import resources
from ..baseimage import DEFAULT_PACKAGES, DEFAULT_SUITE, BaseImageError, base_image_tag, ensure_base_image
from ..baseimage import PLATFORMS as BASE_PLATFORMS
from ..command import Interrupted, call_interruptible, check_interrupted
from ..engines import Engine, EngineError, connect, facts_of, is_local, lane_engine, reason
from ..engines import address as engine_address
from ..hostfacts import SETUP_SCRIPT, DockerFacts, HostFacts
from ..model import LaneConfig, LaneTarget, github_linux_runner
from ..pyversions import docker_base, no_debian_python, result_stem
from ..staging.lock import container_prefix
from ..staging.prefix import CONTAINER_PREFIX
from ..staging.result import StagingResult
from ..suite.result import LaneResult
from .base import Availability, LaneInfraError, LaneJob, Launch, Option, OptionError, lane_cpu_profile
from .common import LANE_ENV, result_or_crash, stage_job_lock, stage_job_suite

if TYPE_CHECKING:
    from docker import DockerClient

# The platforms a lane can be: those the base images can be built for.
PLATFORMS = {platform: machine for platform, (_debian, machine) in BASE_PLATFORMS.items()}
# Debian bookworm, the base images' release: its glibc decides which
# manylinux wheels the lane can use.
BOOKWORM_GLIBC = (2, 36)
LANE_DOCKERFILE = "lane.Dockerfile"  # package data: archmatrix/resources/
# The lane's interpreter: the staged venv-shaped prefix's (its bin/python is a link to the base image's
# /usr/bin/python3.X and its pyvenv.cfg makes sys.prefix the prefix, where the wheels' lib/, bin/,
# include/ and share/ are): the image COPYs it to CONTAINER_PREFIX.
LANE_PYTHON = f"{CONTAINER_PREFIX}/bin/python"
# Where the suite writes its result inside the container: /tmp is in every base image and
# writable by the lane's user (nobody). It comes back through the engine's API once the
# container has stopped, never through a bind mount: the engine may be another machine.
RESULT_DIR = "/tmp"
SETUP_HINT = f"{SETUP_SCRIPT} (installs and starts the engine, registers QEMU)"


def lane_dockerfile() -> str:
    try:
        return resources.read_text(LANE_DOCKERFILE)
    except OSError as exc:
        raise LaneInfraError(f"lane image definition missing from the package: {LANE_DOCKERFILE} ({exc})",
                             "reinstall archmatrix: this installation is incomplete") from None


def lane_image_tag(lane_id: str, base: str, site_key: str, suite: str, dockerfile: str) -> str:
    """``site_key``/``suite``: content-derived names of what the image COPYs (staged dirs, suite)."""
    digest = hashlib.sha256("\0".join((base, site_key, suite, dockerfile)).encode()).hexdigest()[:12]
    return f"archmatrix-lane:{lane_id}-{digest}"


def emulation(platform: str, host: HostFacts, qemu_cpu: str | None,
              engine: DockerFacts | None = None) -> tuple[str | None, str | None]:
    """(emulator, CPU model) for a ``platform`` container on ``engine`` (default: the host's); else Nones."""
    arch = PLATFORMS[platform]
    facts = engine or host.docker
    server = facts.server_arch or host.machine
    if arch == server:
        return None, None
    if facts.desktop:
        return "Docker Desktop", qemu_cpu
    return f"qemu-{arch} (binfmt)", qemu_cpu or "max"


def named_engines(lanes: Iterable[LaneConfig]) -> list[Engine]:
    """The engines Docker lanes name (docker_host/docker_context), each once: what detect() should ask."""
    found = {lane_engine(lane.options) for lane in lanes if lane.runner == DockerRunner.name}
    return sorted((e for e in found if not e.is_default), key=lambda e: e.key)


def _engine_name(engine: Engine, facts: DockerFacts) -> str:
    """The engine as plan and progress name it: the option, or the default engine's address."""
    if engine.is_default:
        return f"the default engine {facts.address}" if facts.address else "the default engine"
    return str(engine)


class DockerRunner:
    name: ClassVar[str] = "docker"
    options: ClassVar[Mapping[str, Option]] = {
        "platform": Option(str, choices=tuple(PLATFORMS), required=True),
        "cpu_profile": Option(str),
        "base_image": Option(str),
        # the engine the lane runs on (default: the environment's, as `docker` would pick it)
        "docker_host": Option(str),
        "docker_context": Option(str),
    }

    def resolve(self, lane: LaneConfig) -> LaneTarget:
        platform = str(lane.options.get("platform"))
        if platform not in PLATFORMS:
            raise OptionError("platform", f"unsupported platform {platform!r}; one of {', '.join(PLATFORMS)}")
        arch = PLATFORMS[platform]
        if lane.options.get("docker_host") and lane.options.get("docker_context"):
            raise OptionError("docker_context", "set docker_host or docker_context, not both: they both "
                                                "name the lane's Docker engine")
        profile = lane_cpu_profile(lane)
        if profile is not None and profile.arch != arch:
            raise OptionError("cpu_profile", f"CPU profile {profile.name} is for {profile.arch}, "
                                             f"not {platform}: pick a profile of the lane's architecture")
        # an engine of another architecture emulates the container with binfmt
        # QEMU, whose default CPU ("max") is used unless a profile names one
        # the base image prepare() builds unless the lane names its own: CI caches it by this tag
        base = "" if lane.options.get("base_image") \
            else base_image_tag(platform, DEFAULT_SUITE, DEFAULT_PACKAGES)
        return LaneTarget(
            os="linux", arch=arch, platform=platform, cpu=profile, emulated_cpu_default="max",
            runs_on=github_linux_runner(arch), base_image=base,
        )

    def availability(self, lane: LaneConfig, host: HostFacts) -> Availability:
        platform = lane.options.get("platform")
        if platform not in PLATFORMS:
            return Availability.no(f"unsupported platform {platform!r}",
                                   f"set options.platform to one of {', '.join(PLATFORMS)}")
        engine = lane_engine(lane.options)
        facts = host.engine(engine.key)
        if engine.is_default and not host.docker.reachable:
            hint = "start Docker Desktop" if host.is_macos else SETUP_HINT
            if "permission denied" in host.docker.error.lower():
                # the engine runs, but this user may not use its socket
                hint = ("join the docker group (as root: usermod -aG docker $USER), then log in again; "
                        "or run archmatrix as root")
            return Availability.no(f"docker daemon not reachable: {host.docker.error}", hint)
        if facts is None:  # facts detected without the config's engines: the lane will ask it
            return Availability.yes(f"on {engine} (not asked yet)")
        if not facts.reachable:
            # An engine the config names is not optional: the lane runs and, if the engine still
            # does not answer, ends infra-error (a skip would let a dead engine pass as green).
            return Availability(True, f"on {engine}: not reachable ({facts.error}): the lane will be an "
                                      "infra-error", engine.fix())
        arch = PLATFORMS[platform]
        server = facts.server_arch or host.machine
        profile = lane_cpu_profile(lane)
        if profile is not None and profile.arch != arch:
            return Availability.no(f"CPU profile {profile.name} is for {profile.arch}, not {platform}",
                                   "pick a profile of the lane's architecture")
        if docker_base(lane) is None:  # a Python no Debian release ships, and no base_image for it
            python = lane.target.python if lane.target else ""
            return Availability.no(*no_debian_python(python))
        # the engine, and its architecture: native or emulated *there*
        where = f" on {_engine_name(engine, facts)} ({server})"
        if arch == server:
            return Availability.yes("native" + where)
        if facts.desktop:
            return Availability.yes("emulated by Docker Desktop" + where)
        if not is_local(facts.address):
            # another machine's kernel: its binfmt handlers cannot be seen from here
            return Availability.yes(f"emulated by qemu-{arch} via binfmt{where} (registered there)")
        if arch not in host.binfmt:
            return Availability.no(f"no QEMU binfmt handler for {arch} on this {server} host",
                                   SETUP_HINT)
        return Availability.yes(f"emulated by qemu-{arch} via binfmt{where}")

    def machine(self, lane: LaneConfig, host: HostFacts) -> tuple[str, int]:
        """Whose cores the lane uses: ("", 0) this host's; an engine on another machine: (address, cores)."""
        facts = host.engine(lane_engine(lane.options).key)
        if facts is None or not facts.reachable or is_local(facts.address):
            return "", 0
        return facts.address, facts.cpus

    def prepare(self, job: LaneJob) -> Launch:
        platform = str(job.lane.options["platform"])
        arch = PLATFORMS[platform]
        profile = lane_cpu_profile(job.lane)
        engine = lane_engine(job.lane.options)
        client, facts = self._connect(engine, job)
        emulator, cpu_model = emulation(platform, job.host, profile.qemu_cpu if profile else None, facts)

        # the base that ships the lane's Python: a configured image, or the Debian release of it
        chosen = docker_base(job.lane)
        if chosen is None:  # the planner only runs available lanes
            raise LaneInfraError(*no_debian_python(job.lock.python))
        # the lock and lock.wheels for the container's platform (the base's glibc)
        staged = stage_job_lock(job, arch, chosen.glibc, container_prefix(job.lock.python))
        suite_root, user_checks = stage_job_suite(job)

        base = chosen.image
        if not base:
            job.phase("base image")
            try:
                if not engine.is_default:
                    self._move_base_image(client, engine, platform, job, suite=chosen.suite or DEFAULT_SUITE)
                base = ensure_base_image(client, platform, suite=chosen.suite or DEFAULT_SUITE,
                                         workdir=job.workdir, progress=job.progress)
            except BaseImageError as exc:
                raise LaneInfraError(f"no base image for {platform}: {exc}", SETUP_HINT) from exc
        dockerfile = lane_dockerfile()
        # the staged prefix and the suite are named by their contents
        tag = lane_image_tag(result_stem(job.lane.id), str(base), staged.prefix.name, suite_root.name,
                             dockerfile)
        job.phase("image")
        self._ensure_lane_image(client, job, tag, str(base), platform, staged.prefix, suite_root, dockerfile)

        facts_out: dict[str, object] = {"platform": platform, "image": tag, "base_image": base,
                                        "docker_server_arch": facts.server_arch}
        if not engine.is_default:
            facts_out["docker_engine"] = str(engine)
        launch = self.launch(client, job, tag, platform, emulator, cpu_model, staging=staged.staging,
                             user_checks=user_checks, facts=facts_out)
        # an emulated container runs on the profile's CPU (QEMU_CPU, inherited by every process the
        # kernel hands to binfmt's qemu): the self-check proves it; a native one runs on this CPU
        return dataclasses.replace(launch, cpu=profile if emulator else None)

    @staticmethod
    def _connect(engine: Engine, job: LaneJob) -> tuple[DockerClient, DockerFacts]:
        """A client of the lane's engine and what it is; an engine that does not answer: infra-error."""
        from docker.errors import DockerException

        if engine.is_default:
            try:
                return connect(engine), job.host.docker
            except DockerException as exc:
                raise LaneInfraError(f"docker daemon not reachable: {exc}", SETUP_HINT) from exc
        try:
            client = connect(engine)
            facts = facts_of(client, engine_address(engine))
        except EngineError as exc:
            raise LaneInfraError(str(exc), exc.hint) from exc
        except Exception as exc:  # DockerException, or requests' connection errors raw
            raise LaneInfraError(f"{engine} is not reachable: {reason(exc)}", engine.fix()) from exc
        job.progress(f"engine: {_engine_name(engine, facts)} ({facts.server_arch}, {facts.cpus} cores)")
        return client, facts

    @staticmethod
    def _move_base_image(client: DockerClient, engine: Engine, platform: str, job: LaneJob, *,
                         suite: str = DEFAULT_SUITE) -> None:
        """Give the lane's engine the local engine's copy of the base image when it has none.

        Through both APIs (``docker save | docker -H … load``, streamed): the same image the local lanes
        run on, at the cost of moving it, instead of building it again from Debian packages.
        """
        import docker
        from docker.errors import DockerException, ImageNotFound

        tag = base_image_tag(platform, suite, DEFAULT_PACKAGES)
        try:
            client.images.get(tag)
            return
        except ImageNotFound:
            pass
        except DockerException:
            return  # ensure_base_image says what is wrong with the engine
        try:
            local = docker.from_env(timeout=600)
            image = local.images.get(tag)
        except (DockerException, Exception):
            return  # no local engine or no local copy: it is built through the lane's engine
        started = time.monotonic()
        size = int(image.attrs.get("Size") or 0)
        job.progress(f"{tag}: moving it from the local engine to {engine} ({size / 1e6:.0f} MB)")
        try:
            call_interruptible(client.images.load, image.save(named=True))
        except DockerException as exc:
            job.progress(f"{tag}: moving it failed ({exc}); building it through {engine}")
            return
        finally:
            local.close()
        job.progress(f"{tag}: moved in {time.monotonic() - started:.1f} s")

    def launch(
        self, client: DockerClient, job: LaneJob, tag: str, platform: str, emulator: str | None,
        cpu_model: str | None, *, staging: StagingResult | None = None, user_checks: tuple[str, ...] = (),
        facts: Mapping[str, object] | None = None,
    ) -> Launch:
        """How the suite starts in a container of lane image ``tag`` (its result comes back via the API)."""
        environment = dict(LANE_ENV, **({"QEMU_CPU": cpu_model} if emulator and cpu_model else {}))

        def execute(job: LaneJob, command: list[str]) -> LaneResult:
            out_dir = job.workdir / "runs" / f"{result_stem(job.lane.id)}-{time.time_ns()}"
            out_dir.mkdir(parents=True)
            try:
                return self._run_container(client, job, tag, platform, out_dir, command, environment)
            finally:
                shutil.rmtree(out_dir, ignore_errors=True)

        # the image has no entrypoint: the command is the interpreter and the suite's whole argv
        return Launch(
            prefix=[LANE_PYTHON], out=f"{RESULT_DIR}/{result_stem(job.lane.id)}.json", execute=execute,
            staging=staging, user_checks=user_checks, emulator=emulator, cpu_model=cpu_model,
            how=f"in {platform}" + (f" under {emulator}" if emulator else ""), facts=facts or {},
        )

    def _ensure_lane_image(self, client: DockerClient, job: LaneJob, tag: str, base: str, platform: str,
                           prefix: Path, suite_root: Path, dockerfile: str) -> None:
        from docker.errors import BuildError, ImageNotFound

        try:
            client.images.get(tag)
            job.progress(f"image {tag} is up to date")
            return
        except ImageNotFound:
            pass
        job.progress(f"building {tag}")
        context = job.workdir / "build" / tag.replace(":", "-")
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        try:
            # the lock and lock.wheels as pip lays them out in a venv; bin/python* are links to the
            # base image's interpreter (dangling here): copied as links, COPY keeps them so
            shutil.copytree(prefix, context / "prefix", symlinks=True)
            shutil.copytree(suite_root, context / "suite")
            (context / "Dockerfile").write_text(dockerfile)
            # abandoned on interrupt: the engine cancels a build whose client is gone
            call_interruptible(client.images.build, path=str(context), tag=tag, platform=platform,
                               network_mode="none", buildargs={"BASE": base}, rm=True, forcerm=True,
                               pull=False)
        except BuildError as exc:
            log = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)
            raise LaneInfraError(f"building {tag} failed: {exc}\n{log[-1500:]}") from exc
        finally:
            shutil.rmtree(context, ignore_errors=True)

    def _run_container(self, client: DockerClient, job: LaneJob, tag: str, platform: str, out_dir: Path,
                       command: list[str], environment: Mapping[str, str]) -> LaneResult:
        from docker.errors import DockerException

        started = time.monotonic()
        container: Any = None
        try:
            container = client.containers.run(
                tag, command=command, platform=platform, network_mode="none", init=True, detach=True,
                environment=dict(environment),
            )
            # Ctrl-C reaches our process, not the container: forward it, so the
            # suite saves what it finished before it stops.
            job.aborts.append(lambda: container.kill(signal="SIGINT"))
            check_interrupted()  # interrupted while the container was being created
            output = self._follow(container, job)
            status = container.wait(timeout=max(600.0, job.config.checks.timeout * 4))
            returncode = int(status.get("StatusCode", -1))
        except DockerException as exc:
            raise LaneInfraError(f"docker failed while running the lane: {exc}", SETUP_HINT) from exc
        except Interrupted:
            raise  # the container is removed below
        except Exception as exc:  # requests' ReadTimeout from wait(): the lane hung past every limit
            if container is not None:
                container.kill()
            raise LaneInfraError(f"the lane container did not finish: {type(exc).__name__}: {exc}") from exc
        finally:
            if container is not None:
                # the result (or what the suite saved before it was stopped) outlives the container here
                with contextlib.suppress(DockerException):
                    self._fetch_result(container, result_stem(job.lane.id), out_dir)
                with contextlib.suppress(DockerException):
                    container.remove(force=True)
        return result_or_crash(job, out_dir / f"{result_stem(job.lane.id)}.json", returncode, output,
                               time.monotonic() - started)

    @staticmethod
    def _fetch_result(container: Any, stem: str, out_dir: Path) -> None:
        """Copy the suite's result file (``<stem>.json``) out of the (stopped) container through the
        engine's API."""
        from docker.errors import NotFound

        name = f"{stem}.json"
        try:
            chunks, _stat = container.get_archive(f"{RESULT_DIR}/{name}")
        except NotFound:
            return  # the suite wrote none: result_or_crash tells why from the exit status and output
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            member = archive.getmember(name)  # the archive holds exactly that file, by its base name
            source = archive.extractfile(member) if member.isfile() else None
            if source is None:
                return
            (out_dir / name).write_bytes(source.read())

    @staticmethod
    def _follow(container: Any, job: LaneJob) -> str:
        """Stream the container's output as progress lines; return all of it (evidence)."""
        buffer, seen = "", []
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            buffer += chunk.decode(errors="replace")
            *lines, buffer = buffer.split("\n")
            for line in lines:
                seen.append(line)
                job.progress(line.split("] ", 1)[-1])
        seen.append(buffer)
        return "\n".join(seen)
