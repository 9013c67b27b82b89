# Undersigned: the same `undersigned serve` as ./dev serve, without the demo data.
# SQLite in the /data volume by default; set DATABASE_URL=postgresql://USER:PASSWORD@HOST/DB for
# PostgreSQL. The schema is brought to the newest migration at start.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite:////data/undersigned.db

RUN groupadd --system undersigned \
    && useradd --system --gid undersigned --home-dir /srv/undersigned --shell /usr/sbin/nologin undersigned \
    && mkdir -p /data \
    && chown undersigned:undersigned /data

WORKDIR /srv/undersigned

# Dependencies first, so a change to the code alone reuses this layer.
COPY pyproject.toml README.md ./
RUN mkdir -p app && touch app/__init__.py && pip install . && pip uninstall -y undersigned && rm -rf app build *.egg-info

# Editable: app/migrate.py finds migrations/ and alembic.ini next to the package.
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
RUN pip install --no-deps -e . && chown -R undersigned:undersigned /srv/undersigned

USER undersigned
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]

CMD ["undersigned", "serve", "--host", "0.0.0.0", "--port", "8000"]
