# cdb as a container image (issue 27): `docker build -t cdb .`, then see docker-compose.yml's
# `cdb` profile. Multi-stage: the wheel is built with the build tools, the runtime stage holds
# only the virtualenv. Non-root, and workable with a read-only root filesystem: everything cdb
# writes (SQLite database, spill files, backups) goes to the /var/lib/cdb volume.

# Pinned: a base image moves under a floating tag. Update both stages together.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY cdb_cli ./cdb_cli
COPY commands ./commands
RUN python -m venv /opt/cdb \
    && /opt/cdb/bin/pip install --no-compile . \
    && /opt/cdb/bin/python -m compileall -q /opt/cdb/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="cdb" \
      org.opencontainers.image.description="Claire de Binare: operator toolkit and trading engine for the MEXC spot market"
RUN groupadd --system --gid 10001 cdb \
    && useradd --system --uid 10001 --gid cdb --home-dir /var/lib/cdb --shell /usr/sbin/nologin cdb \
    && install -d -m 0700 -o cdb -g cdb /var/lib/cdb
COPY --from=build /opt/cdb /opt/cdb
ENV PATH=/opt/cdb/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NO_COLOR=1 \
    HOME=/var/lib/cdb \
    XDG_DATA_HOME=/var/lib/cdb \
    CDB_DATABASE_URL=sqlite:////var/lib/cdb/cdb.db \
    CDB_HTTP_HOST=0.0.0.0 \
    CDB_HTTP_PORT=8000
USER 10001:10001
WORKDIR /var/lib/cdb
VOLUME ["/var/lib/cdb"]
EXPOSE 8000
# /health answers 200 while the process serves; /ready says whether it can trade.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CDB_HTTP_PORT', '8000') + '/health', timeout=4)"]
ENTRYPOINT ["cdb"]
CMD ["run", "--paper"]
