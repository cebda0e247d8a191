# The catalog's image: the SDK, the `catalog` CLI (with the service and web UI) and
# the S3 extra. Used by docker-compose.yml's `catalog` service (`catalog serve`).
FROM python:3.11-slim

# A C compiler: the install below compiles the kernel (catalog/_kernel.c: the
# columnar decoder and the Kafka record-batch splitter; hatch_build.py); without
# it projections decode event by event.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md LICENSE cli.py hatch_build.py ./
COPY catalog ./catalog
COPY consumers ./consumers
COPY schemas ./schemas
RUN pip install --no-cache-dir ".[s3]" && rm -rf /src \
    && python -c "from catalog import native; native.kernel()"  # it was built

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
