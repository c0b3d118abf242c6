# One image for the API, the worker and the one-shot migration (docker-compose.yml picks the
# command). Dependencies are installed from pyproject.toml before the sources are copied, so
# editing code does not reinstall them.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    OPTBENCH_DATA_DIR=/data

WORKDIR /app

COPY pyproject.toml README.md ./
RUN mkdir -p engine analysis client api worker \
    && touch engine/__init__.py analysis/__init__.py client/__init__.py api/__init__.py \
       worker/__init__.py \
    && pip install '.[server]' \
    && pip uninstall -y optbench \
    && rm -rf engine analysis client api worker build *.egg-info

COPY engine ./engine
COPY analysis ./analysis
COPY api ./api
COPY worker ./worker
COPY web ./web
COPY migrations ./migrations
COPY alembic.ini ./
# PYTHONDONTWRITEBYTECODE keeps the running containers from writing .pyc files, so the sources are
# compiled once here: otherwise every CLI or worker start recompiles the engine (~0.1 s of CPU).
RUN python -m compileall -q engine analysis api worker

RUN useradd --system --uid 10001 --home-dir /app optbench \
    && mkdir -p /data && chown optbench /data
USER optbench

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

CMD ["uvicorn", "--factory", "api.main:create_app", "--host", "0.0.0.0", "--port", "8000"]
