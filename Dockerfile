# The catalog's image: the SDK, the `catalog` CLI (with the service and web UI) and
# the S3 extra. Used by docker-compose.yml's `catalog` service (`catalog serve`).
FROM python:3.11-slim

# A C compiler builds the compiled kernel (catalog/_kernel.c: the columnar decoder
# and the Kafka record-batch splitter)
# once, below, into CATALOG_CACHE_DIR; without it projections decode event by event.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV CATALOG_CACHE_DIR=/opt/catalog-cache

WORKDIR /src
COPY pyproject.toml README.md LICENSE cli.py ./
COPY catalog ./catalog
COPY consumers ./consumers
COPY schemas ./schemas
RUN pip install --no-cache-dir ".[s3]" && rm -rf /src \
    && python -c "from catalog import native; native.kernel()"

RUN useradd --create-home --uid 1000 catalog && mkdir -p /data && chown catalog /data
USER catalog
WORKDIR /data
ENV CATALOG_HOME=/data \
    CATALOG_DB=/data/catalog.duckdb \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8765

# Beyond loopback the service needs CATALOG_READ_TOKEN and CATALOG_WRITE_TOKEN.
CMD ["catalog", "serve", "--host", "0.0.0.0", "--port", "8765"]
