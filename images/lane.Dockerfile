# archmatrix lane image: the lock's site-packages (staged on the host for this
# platform) and the suite, on a base image. COPY only: nothing runs during
# the build, so it needs no network and no emulation.
ARG BASE
FROM ${BASE}
COPY site-packages /opt/archmatrix/site-packages
COPY suite /opt/archmatrix/suite
# addsitedir, so the staged packages' own .pth files are honoured too
COPY archmatrix-lock.pth /usr/lib/python3/dist-packages/archmatrix-lock.pth
ENV PYTHONPATH=/opt/archmatrix/suite \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# nobody: lanes never need root
USER 65534:65534
WORKDIR /tmp
ENTRYPOINT ["python3", "-m", "archmatrix.suite"]
