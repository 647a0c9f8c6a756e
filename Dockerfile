# syntax=docker/dockerfile:1
# fluxwatch: the exporter, the notification bridge and the CLI in one small image.
#
#   docker build -t fluxwatch:0.1.0 .
#   docker run --read-only --tmpfs /tmp -v fluxwatch-state:/var/lib/fluxwatch fluxwatch:0.1.0 \
#     bridge --listen 0.0.0.0:9095 --state-dir /var/lib/fluxwatch
#
# The run stage needs no network and no writable root filesystem: everything is installed and
# byte-compiled at build time; /tmp and the bridge's state directory are the only writable paths
# (volumes). Probes: GET /healthz (liveness) and /readyz (readiness) on the listen port.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/fluxwatch
COPY pyproject.toml README.md ./
COPY catalogue ./catalogue
COPY plumbing ./plumbing
COPY exporter ./exporter
COPY notifiers ./notifiers
COPY simulator ./simulator
COPY dashboards ./dashboards
COPY alerts ./alerts
COPY fluxwatch ./fluxwatch
# A non-editable install of the project and its runtime dependencies only (no [dev] extras),
# byte-compiled now because the run stage's filesystem is read-only.
RUN /opt/fluxwatch/bin/pip install --no-compile . \
    && /opt/fluxwatch/bin/python -m compileall -q /opt/fluxwatch/lib \
    && /opt/fluxwatch/bin/fluxwatch --version

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="fluxwatch" \
      org.opencontainers.image.description="Fleet-wide Flux CD status metrics and a durable notification bridge" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/fluxwatch/fluxwatch" \
      org.opencontainers.image.documentation="https://github.com/fluxwatch/fluxwatch/blob/main/docs/deploy.md"
# A fixed numeric user so Kubernetes can verify runAsNonRoot without a passwd lookup.
RUN groupadd --system --gid 65532 fluxwatch \
    && useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/fluxwatch \
       --no-create-home --shell /usr/sbin/nologin fluxwatch \
    && install -d -o 65532 -g 65532 -m 0750 /var/lib/fluxwatch
COPY --from=build /opt/fluxwatch /opt/fluxwatch
ENV PATH=/opt/fluxwatch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp
VOLUME ["/var/lib/fluxwatch", "/tmp"]
WORKDIR /var/lib/fluxwatch
USER 65532:65532
# 9797: exporter metrics and probes; 9095: bridge intake, metrics and probes.
EXPOSE 9797 9095
ENTRYPOINT ["fluxwatch"]
CMD ["--help"]
