# syntax=docker/dockerfile:1
# aoai-gateway images, two targets from one build:
#
#   docker build -t aoai-gateway .                        # `core` (the default): gateway, emulator, keys, limits
#   docker build --target full -t aoai-gateway:full .     # plus local speech and call analytics (extras [all])
#   docker run -p 8080:8080 -e AZURE_OPENAI_ENDPOINT=https://NAME.openai.azure.com/ \
#     -e AZURE_OPENAI_MODEL_MAPPER=gpt-4o=my-gpt-4o -e AZURE_OPENAI_API_KEY=... aoai-gateway
#
# The install and start steps are run as written by tests/test_deploy.py (in a fresh venv, with the paths below
# replaced): keep each stage's RUN lines plain shell, and the ENV, HEALTHCHECK and CMD lines in exec form.

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# `requirements.lock*`: the lock file is copied when the project has one (a glob that matches nothing is no error).
COPY pyproject.toml README.md requirements.lock* ./
COPY src ./src
RUN python -m venv /opt/venv

FROM builder AS build-core
# The lock file pins every dependency: the image gets the versions CI tested.
RUN --mount=type=cache,target=/root/.cache/pip /opt/venv/bin/pip install -c requirements.lock .

FROM builder AS build-full
RUN --mount=type=cache,target=/root/.cache/pip /opt/venv/bin/pip install -c requirements.lock ".[all]"

FROM python:${PYTHON_VERSION}-slim AS runtime
# A fixed non-root uid (Kubernetes' runAsNonRoot checks a number); /data holds SQLite when no database_url is set.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent gateway \
    && mkdir /data && chown 10001:10001 /data
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LISTEN=0.0.0.0:8080 \
    AOAI_GATEWAY_DATA_DIR=/data
WORKDIR /data
USER 10001:10001
EXPOSE 8080
# The port is LISTEN's, so a container started with another LISTEN stays healthy.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LISTEN', ':8080').rpartition(':')[2], timeout=2)"]
# SIGTERM drains (server.drain_seconds, 30 s): give `docker stop` a longer --time / stop_grace_period.
STOPSIGNAL SIGTERM
CMD ["aoai-gateway", "serve"]

FROM runtime AS full
COPY --from=build-full /opt/venv /opt/venv

FROM runtime AS core
COPY --from=build-core /opt/venv /opt/venv
