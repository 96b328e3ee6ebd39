# The example Dagster project (examples/dagster_project: the package acme_dagster and its
# pyproject.toml) as a Tether code location of kind dagster, on `tether-sdk[dagster]` (the
# SDK, the code server and the run worker, with dagster; none of the agent's packages).
# The project is /app, the working directory: its pyproject.toml's [tool.dagster] names the
# module, and `--module acme_dagster.definitions` (TETHER_MODULE) names it as well. Deploy it
# as a location of kind `dagster` with this image and that module.
# The agent's Docker launcher runs `tether code-server` and `tether run-worker` in it, with
# the location's settings in TETHER_* variables. By hand:
#   docker run --rm -p 127.0.0.1:4000:4000 -e TETHER_LOCATION_KIND=dagster \
#       -e TETHER_MODULE=acme_dagster.definitions -e TETHER_CODE_SERVER_HOST=0.0.0.0 \
#       tether-dagster-example:TAG
#
# Built offline by scripts/build-images.sh from a small context: wheels/ (tether-sdk, dagster
# and their dependencies) and dagster_project/. BASE_IMAGE: see tether.Dockerfile.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS install
COPY wheels /wheels
RUN python3 -m venv /opt/tether \
 && /opt/tether/bin/pip install --no-cache-dir --no-index --find-links /wheels \
        "tether-sdk[dagster]" \
 && rm -rf /wheels

FROM ${BASE_IMAGE}
# /var/lib/tether-dagster: where the Docker launcher mounts a Dagster location's storage (a
# named volume, which takes this folder's owner when Docker first fills it), so the user can
# write it. A Dagster image of your own needs the same folder, owned by its user.
RUN groupadd --system --gid 10001 tether \
 && useradd --system --uid 10001 --gid tether --home-dir /app --shell /usr/sbin/nologin tether \
 && mkdir -p /var/lib/tether-dagster \
 && chown tether:tether /var/lib/tether-dagster
COPY --from=install /opt/tether /opt/tether
COPY dagster_project /app
ENV PATH=/opt/tether/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER tether
EXPOSE 4000
CMD ["tether", "code-server"]
