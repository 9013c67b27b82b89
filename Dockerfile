# Undersigned: the same `undersigned serve` as ./dev serve, without the demo data.
# SQLite in the /data volume by default; set DATABASE_URL=postgresql://USER:PASSWORD@HOST/DB for
# PostgreSQL. The schema is brought to the newest migration at start.

# The wheel, built from the source; it carries the migrations (pyproject.toml, docs/install.md).
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY migrations ./migrations
COPY app ./app
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////data/undersigned.db

RUN groupadd --system undersigned \
    && useradd --system --gid undersigned --home-dir /srv/undersigned --shell /usr/sbin/nologin undersigned \
    && mkdir -p /data /srv/undersigned \
    && chown undersigned:undersigned /data /srv/undersigned

WORKDIR /srv/undersigned

# The locked dependencies first, exactly the versions tested: a change to the code alone reuses
# this layer.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes -r /tmp/requirements.lock && rm /tmp/requirements.lock

COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels && pip check

USER undersigned
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]

CMD ["undersigned", "serve", "--host", "0.0.0.0", "--port", "8000"]
