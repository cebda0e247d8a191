"""docker-compose.yml, the Dockerfile and the README agree.

The Docker engine is not available where this suite runs (no daemon, no
registry for images), so ``docker compose up`` itself is not exercised here.
What is checked: the compose file parses, names the services the README and
docs/operations.md describe (Kafka in KRaft mode, MinIO with its bucket created
by an init container, both MinIO images pinned, the catalog service built from
this repository running ``catalog serve`` on its own volume, with read and write
tokens), with health checks and named volumes; the ports, bucket, credentials and
service URL the README tells users to export are the ones the compose file
publishes; and the settings the service gets are valid catalog settings.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog.log.kafka import parse_url

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def readme_env() -> dict[str, str]:
    """The variables the README's "Running with Kafka and S3" section exports."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Running with Kafka and S3", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    env = {}
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            for word in words[1:]:
                name, _, value = word.partition("=")
                env[name] = value
    assert "docker compose up -d" in block
    return env


def published(service: dict[str, Any]) -> set[int]:
    return {int(str(p).split(":")[0]) for p in service.get("ports", [])}


def test_services_and_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "minio", "minio-init", "catalog"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    for name, image in (("minio", "minio/minio:RELEASE."), ("minio-init", "minio/mc:RELEASE.")):
        assert services[name]["image"].startswith(image), f"{name}: pin a release"
    assert services["catalog"]["build"] == "."
    for name in ("kafka", "minio", "catalog"):
        assert "test" in services[name]["healthcheck"], name
    volumes = set(compose["volumes"])
    for name in ("kafka", "minio", "catalog"):
        for mount in services[name]["volumes"]:
            assert mount.split(":")[0] in volumes, f"{name}: {mount} is not a named volume"


def test_kafka_runs_in_kraft_mode(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    assert "ZOOKEEPER" not in " ".join(env)
    listeners = dict(x.split("://") for x in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert listeners["EXTERNAL"] == "localhost:9092" and listeners["INTERNAL"] == "kafka:29092"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # the catalog creates its topic


def test_minio_bucket_is_created_at_start(compose: dict[str, Any]) -> None:
    services = compose["services"]
    init = services["minio-init"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert "mc mb --ignore-existing local/catalog" in " ".join(init["entrypoint"])
    user = services["minio"]["environment"]["MINIO_ROOT_USER"]
    password = services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
    assert init["environment"]["MC_HOST_local"] == f"http://{user}:{password}@minio:9000"


def test_the_catalog_service_serves_its_own_projection(compose: dict[str, Any]) -> None:
    service = compose["services"]["catalog"]
    command = service["command"]
    assert command[:2] == ["catalog", "serve"]
    host = command[command.index("--host") + 1]
    port = int(command[command.index("--port") + 1])
    assert host == "0.0.0.0" and port in published(service)
    assert service["stop_signal"] == "SIGTERM"
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert service["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert f"127.0.0.1:{port}/api/v1/health" in " ".join(service["healthcheck"]["test"])
    env = service["environment"]
    settings = parse_url(env["CATALOG_LOG"])
    assert settings.bootstrap == ("kafka:29092",)
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert env["CATALOG_ARTIFACT_PATH"].startswith("s3://catalog/")
    assert env["CATALOG_DB"].startswith("/data/")
    # beyond loopback it needs both tokens (catalog serve refuses to start otherwise)
    from catalog.server import check_bind
    from catalog.web.security import Guard, load_tokens

    tokens = {
        name: re.sub(r"\$\{\w+:-(.*)\}", r"\1", env[name])
        for name in ("CATALOG_READ_TOKEN", "CATALOG_WRITE_TOKEN")
    }
    read, write = load_tokens(environ=tokens)
    check_bind(host, Guard(read_tokens=read, write_tokens=write))
    # its projection is a volume nothing else mounts (one writing process per file)
    mount = service["volumes"][0].split(":")[0]
    others = [
        m for n, s in compose["services"].items() if n != "catalog" for m in s.get("volumes", [])
    ]
    assert not any(m.split(":")[0] == mount for m in others)


def test_readme_matches_the_compose_file(
    compose: dict[str, Any], readme_env: dict[str, str]
) -> None:
    services = compose["services"]
    projector = services["catalog"]["environment"]
    # The host-side log URL: the broker's published port, the projector's topic.
    host_log = parse_url(readme_env["CATALOG_LOG"])
    [host_broker] = host_log.bootstrap
    assert host_broker == "localhost:9092" and 9092 in published(services["kafka"])
    assert host_log.topic == parse_url(projector["CATALOG_LOG"]).topic
    # The same bucket, credentials and region; the endpoint is MinIO's published port.
    assert readme_env["CATALOG_ARTIFACT_PATH"] == projector["CATALOG_ARTIFACT_PATH"]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        assert readme_env[name] == projector[name], name
    endpoint = re.fullmatch(r"http://localhost:(\d+)", readme_env["AWS_ENDPOINT_URL"])
    assert endpoint is not None and int(endpoint[1]) in published(services["minio"])
    # reads go to the catalog service's published port
    api = re.fullmatch(r"http://localhost:(\d+)", readme_env["CATALOG_API"])
    assert api is not None and int(api[1]) in published(services["catalog"])


def test_dockerfile_installs_the_s3_extra_and_runs_the_cli() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.M)
    assert "pip install" in text and '".[s3]"' in text
    for path in ("catalog", "consumers", "schemas", "cli.py", "pyproject.toml", "LICENSE"):
        assert path in text, path
    assert 'CMD ["catalog", "serve", "--host", "0.0.0.0", "--port", "8765"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_the_single_server_setup_needs_no_kafka_and_no_bucket() -> None:
    """docker-compose.single.yml: one service, the embedded log, a local store and the
    managed tokens on one volume (issue 25, item 4)."""
    single = yaml.safe_load((ROOT / "docker-compose.single.yml").read_text())
    assert set(single["services"]) == {"catalog"}
    service = single["services"]["catalog"]
    command = service["command"]
    assert command[:2] == ["catalog", "serve"] and service["stop_signal"] == "SIGTERM"
    port = int(command[command.index("--port") + 1])
    assert port in published(service)
    env = service["environment"]
    mount = service["volumes"][0].split(":")[1]
    assert env["CATALOG_LOG"] == f"file://{mount}/events.db"
    for name in ("CATALOG_DB", "CATALOG_ARTIFACT_PATH", "CATALOG_ACCESS_FILE"):
        assert env[name].startswith(mount + "/"), name
    assert "{{project}}" in env["CATALOG_ARTIFACT_PATH"]  # a store per project
    assert not any(name.startswith("AWS_") for name in env)
    from catalog.server import check_bind
    from catalog.web.security import Guard, load_tokens

    tokens = {
        name: re.sub(r"\$\{\w+:-(.*)\}", r"\1", env[name])
        for name in ("CATALOG_READ_TOKEN", "CATALOG_WRITE_TOKEN")
    }
    read, write = load_tokens(environ=tokens)
    check_bind(command[command.index("--host") + 1], Guard(read_tokens=read, write_tokens=write))
    readme = (ROOT / "README.md").read_text()
    assert "docker compose -f docker-compose.single.yml up -d" in readme
