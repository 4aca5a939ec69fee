# archmatrix lane image: the lock's site-packages (staged on the host for this
# platform), the user's local wheels (lock.wheels, staged the same way; empty
# when there are none) and the suite with the user's check modules, on a base
# image. COPY only: nothing runs during the build, so it needs no network and
# no emulation.
ARG BASE
FROM ${BASE}
COPY site-packages /opt/archmatrix/site-packages
COPY local-packages /opt/archmatrix/local-packages
COPY suite /opt/archmatrix/suite
# The staged packages reach sys.path through PYTHONPATH, which every CPython
# honours whatever its layout: Debian's python3 (the default base) and the
# official python:3.x images (site-packages under /usr/local/lib/python3.x)
# alike. It also puts the lock ahead of anything the base image ships.
# PYTHONPATH does not process .pth files, so on Debian's layout this .pth
# additionally runs addsitedir on the staged directories (already on sys.path,
# so only their .pth files take effect). Other layouts ignore this directory;
# the default lock has no .pth files. See docs/docker.md.
COPY archmatrix-lock.pth /usr/lib/python3/dist-packages/archmatrix-lock.pth
ENV PYTHONPATH=/opt/archmatrix/suite:/opt/archmatrix/site-packages:/opt/archmatrix/local-packages \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# nobody: lanes never need root
USER 65534:65534
WORKDIR /tmp
# No ENTRYPOINT: the runner gives the whole command (python3 -m archmatrix.suite
# ...), built by the same suite_args as every other lane's.
