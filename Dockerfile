# The catalog's image: the SDK, the `catalog` CLI and the S3 extra.
# Used by docker-compose.yml's projector (`catalog consume --follow`).
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md cli.py ./
COPY catalog ./catalog
COPY consumers ./consumers
COPY schemas ./schemas
RUN pip install --no-cache-dir ".[s3]" && rm -rf /src

RUN useradd --create-home --uid 1000 catalog && mkdir -p /data && chown catalog /data
USER catalog
WORKDIR /data
ENV CATALOG_HOME=/data \
    CATALOG_DB=/data/catalog.duckdb \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]

CMD ["catalog", "consume", "--follow"]
