# Waybill web image: Gunicorn serving app:create_app() with gunicorn.conf.py.
# Base images come from the public ECR mirror of Docker Hub's official images (no Docker Hub rate limits).
# Build with BuildKit (the default since Docker 23; CodeBuild: DOCKER_BUILDKIT=1): docker build -t waybill .
# The streams service (server-sent events) is this image too, with SSE_STREAMS=true and GUNICORN_WORKER_CLASS=gevent
# (deploy/service.yml, docs/deploy.md section 12).
# The release step (migrations, then the admin) is a one-off command, never part of start-up:
#   docker run --rm ... flask --app app deploy

ARG PYTHON_IMAGE=public.ecr.aws/docker/library/python:3.11-slim

# --- build: every runtime dependency as a wheel (nothing from requirements-dev.txt), slimmed ------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /build
# strip (binutils) takes the debug information out of the wheels' shared libraries; it stays in this stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt constraints.txt deploy/slim_wheels.py ./
# slim_wheels.py: only the AWS service models the app calls (S3, SNS, STS), no test suites, no debug information.
RUN pip wheel --wheel-dir /wheels -r requirements.txt -c constraints.txt \
    && python slim_wheels.py /wheels

# --- runtime: the wheels installed from the build stage, the app, a non-root user -------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    WAYBILL_ENV=production \
    PORT=8000
RUN groupadd --system --gid 10001 waybill \
    && useradd --system --uid 10001 --gid waybill --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin waybill
WORKDIR /srv/waybill
COPY requirements.txt .
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --no-compile --find-links=/wheels -r requirements.txt
COPY gunicorn.conf.py ./
COPY migrations ./migrations
COPY app ./app
COPY translations ./translations
# Byte-code is compiled now, as root, because the running container never writes it (read-only root filesystem):
# without it every worker compiles its imports at each start (4-8 s of CPU). Only for code the app loads: not
# SQLAlchemy's test helpers and dialects for other databases, dnspython (email deliverability checks, unused) or
# the base image's pip. The dependencies keep only their byte-code (compiled in place, `-b`, then the source is
# removed): one copy of each module instead of two, which keeps the image near 200 MB; their frames in a
# traceback show file and line without the source text. The app's own code keeps its source.
# The translation catalogues are compiled here (the .mo files are build output, not in the repository).
RUN pybabel -q compile -d translations \
    && site="$(python -c 'import site; print(site.getsitepackages()[0])')" \
    && python -m compileall -q -j 0 -b \
        -x '/(tests?|testing|dns|pip|setuptools|wheel|_distutils_hack|pkg_resources)/|/sqlalchemy/dialects/(mssql|mysql|oracle)/' \
        "$site" \
    && find "$site" -name '*.py' -exec sh -c 'for source; do [ ! -f "${source}c" ] || rm "$source"; done' sh {} + \
    && python -m compileall -q -j 0 app migrations gunicorn.conf.py \
    && mkdir -p instance \
    && chown waybill:waybill instance
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
