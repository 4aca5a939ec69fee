# archmatrix lane image: the lane's environment (the lock and the user's local
# wheels, installed on the host for this platform as `pip install` lays them
# out in a venv: lib/python3.X/site-packages, and the wheels' lib/, share/,
# include/ and bin/) and the suite with the user's check modules, on a base
# image. COPY only: nothing runs during the build, so it needs no network and
# no emulation.
ARG BASE
FROM ${BASE}
# A venv-shaped prefix: its pyvenv.cfg (home = /usr/bin) and bin/python* (links
# to the base image's /usr/bin/python3.X) make sys.prefix /opt/archmatrix/venv,
# so sys.prefix + "/lib/libfoo.so" is where a wheel's .data/data put it, and
# the scripts' shebangs (/opt/archmatrix/venv/bin/python) run. The venv does
# not see the base image's dist-packages: what runs is exactly the lock.
# See docs/docker.md.
COPY prefix /opt/archmatrix/venv
COPY suite /opt/archmatrix/suite
# The suite (stdlib-only, not part of the user's environment) via PYTHONPATH.
ENV PYTHONPATH=/opt/archmatrix/suite \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# nobody: lanes never need root
USER 65534:65534
WORKDIR /tmp
# No ENTRYPOINT: the runner gives the whole command (/opt/archmatrix/venv/bin/python
# -m archmatrix.suite ...), built by the same suite_args as every other lane's.
