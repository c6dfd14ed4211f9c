# Waybill web image: Gunicorn serving app:create_app() with gunicorn.conf.py.
# Base images come from the public ECR mirror of Docker Hub's official images (no Docker Hub rate limits).
# Build with BuildKit (the default since Docker 23; CodeBuild: DOCKER_BUILDKIT=1): docker build -t waybill .
# The release step (migrations, then the admin) is a one-off command, never part of start-up:
#   docker run --rm ... flask --app app deploy

ARG PYTHON_IMAGE=public.ecr.aws/docker/library/python:3.11-slim

# --- build: every runtime dependency as a wheel (nothing from requirements-dev.txt) --------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --wheel-dir /wheels -r requirements.txt

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
# without it every worker compiles its imports at each start (4-8 s of CPU). Only for code the app loads: not the
# dependencies' test suites, SQLAlchemy's dialects for other databases or dnspython (email deliverability checks,
# unused), which keeps the image under 200 MB.
# The translation catalogues are compiled here (the .mo files are build output, not in the repository).
RUN pybabel compile -q -d translations \
    && python -m compileall -q -j 0 -x '/(tests?|testing|dns)/|/sqlalchemy/dialects/(mssql|mysql|oracle)/' \
        "$(python -c 'import site; print(site.getsitepackages()[0])')" app migrations gunicorn.conf.py \
    && mkdir -p instance \
    && chown waybill:waybill instance
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
