# The bundled example code location (tether_sdk/examples/quickstart.py as the module
# `quickstart`) on the SDK distribution alone: `pip install tether-sdk` (tether_api and
# tether_sdk; none of the agent's packages). Deploy it with
#   tether deploy quickstart --image tether-example:TAG --module quickstart
# The agent's Docker launcher runs `tether code-server` and `tether run-worker` in it, with
# the location's settings in TETHER_* variables. By hand:
#   docker run --rm -p 127.0.0.1:4000:4000 -e TETHER_MODULE=quickstart \
#       -e TETHER_CODE_SERVER_HOST=0.0.0.0 tether-example:TAG   # then GET :4000/snapshot
#
# Built offline by scripts/build-images.sh from a small context: wheels/ (tether-sdk and
# its dependencies) and quickstart.py. BASE_IMAGE: see tether.Dockerfile.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS install
COPY wheels /wheels
RUN python3 -m venv /opt/tether \
 && /opt/tether/bin/pip install --no-cache-dir --no-index --find-links /wheels tether-sdk \
 && rm -rf /wheels

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 tether \
 && useradd --system --uid 10001 --gid tether --home-dir /app --shell /usr/sbin/nologin tether
COPY --from=install /opt/tether /opt/tether
COPY quickstart.py /app/quickstart.py
ENV PATH=/opt/tether/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER tether
EXPOSE 4000
CMD ["tether", "code-server"]
