"""The compose files are hardened (issue 27): authentication on Redis and PostgreSQL, images
pinned to exact versions, all capabilities dropped, no new privileges, read-only root
filesystems, ports on 127.0.0.1 only, and no password written in the repository."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FILES = [REPO / "docker-compose.yml", REPO / "deploy" / "docker-compose.monitoring.yml"]
EXACT = re.compile(r"^[\w./-]+:v?\d+\.\d+(\.\d+)?(-[\w.]+)?$")  # a release, not `15` or `7`
INTERPOLATED = re.compile(r"\$\{\w+:\?[^}]+\}")


def services(path: Path) -> dict[str, dict[str, Any]]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded["services"]


@pytest.fixture(params=FILES, ids=lambda p: p.name)
def compose(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    return services(request.param)


def test_images_are_pinned_to_exact_versions(compose: dict[str, dict[str, Any]]) -> None:
    pulled = {name: s["image"] for name, s in compose.items() if "build" not in s}
    assert pulled
    loose = {name: image for name, image in pulled.items() if not EXACT.match(image)}
    assert loose == {}


def test_every_container_drops_capabilities_and_privileges(
    compose: dict[str, dict[str, Any]],
) -> None:
    for name, service in compose.items():
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["read_only"] is True, name
    # only PostgreSQL's entrypoint gets some back, to hand its data folder to its own user
    added = {name: s["cap_add"] for name, s in compose.items() if "cap_add" in s}
    assert set(added) <= {"postgres"}
    assert not {"SYS_ADMIN", "NET_ADMIN", "ALL"} & set(added.get("postgres", []))


def test_ports_are_bound_to_localhost_only(compose: dict[str, dict[str, Any]]) -> None:
    for name, service in compose.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        if "ports" not in service:
            assert service.get("network_mode") == "host", name  # binds 127.0.0.1 itself


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def test_no_password_is_written_in_the_repository(compose: dict[str, dict[str, Any]]) -> None:
    for name, service in compose.items():
        environment = service.get("environment", {})
        for key, value in environment.items():
            if re.search(r"PASSWORD|SECRET|REDISCLI_AUTH", key):
                assert INTERPOLATED.fullmatch(str(value)), (name, key)
        for text in _strings([environment, service.get("command", [])]):
            for userinfo in re.findall(r"://[^/@\s]*:([^@/\s]+)@", text):  # URL passwords
                assert INTERPOLATED.fullmatch(userinfo), (name, text)
            for secret in re.findall(r"(?:^|\s)>(\$\{[^}]*\}|\S+)", text):  # Redis ACL passwords
                assert INTERPOLATED.fullmatch(secret), (name, text)


def test_redis_and_postgresql_require_authentication() -> None:
    compose = services(FILES[0])
    command = compose["redis"]["command"]
    users = [command[i + 1] for i, arg in enumerate(command) if arg == "--user"]
    assert "default off" in users  # nobody without a password
    (cdb,) = [u for u in users if u.startswith("cdb ")]
    assert "~cdb:*" in cdb.split()
    assert "-@dangerous" in cdb.split()
    assert compose["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${")
    script = (REPO / "deploy" / "postgres" / "init-cdb.sh").read_text()
    assert "CREATE ROLE cdb LOGIN PASSWORD :'cdb_password' NOSUPERUSER" in script
    assert "CREATE DATABASE cdb OWNER cdb" in script
    grafana = services(FILES[1])["grafana"]["environment"]
    assert INTERPOLATED.fullmatch(grafana["GF_SECURITY_ADMIN_PASSWORD"])


def test_the_example_env_file_names_every_password_and_holds_none() -> None:
    example = (REPO / "deploy" / "compose.env.example").read_text()
    names = {line.split("=")[0] for line in example.splitlines() if "=" in line}
    needed = {
        match.group(1) for path in FILES for match in re.finditer(r"\$\{(\w+):\?", path.read_text())
    }
    assert needed == names
    assert all(line.endswith("=") for line in example.splitlines() if "=" in line)
    assert "deploy/compose.env" in (REPO / ".gitignore").read_text().split()


SPEC = REPO / "tests" / "deploy" / "resources" / "compose-spec" / "compose-spec.json"
"""The Compose Specification's schema (github.com/compose-spec/compose-spec, schema/, Apache 2.0,
commit 170098b of 2026-06-23): what `docker compose` validates a file against."""


def _interpolated(path: Path) -> Any:
    """The file as compose reads it, each ``${NAME:?…}`` given a value."""
    text = re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: f"x-{m.group(1).lower()}", path.read_text())
    return yaml.safe_load(text)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_files_follow_the_compose_specification(path: Path) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SPEC.read_text()))
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(_interpolated(path))]
    assert errors == []
    # and the schema does catch a mistake: a misspelt key, a port that is not a port list
    broken = _interpolated(path)
    name = next(iter(broken["services"]))
    broken["services"][name]["cap_drops"] = ["ALL"]
    assert list(validator.iter_errors(broken))


def test_docker_compose_config_validates(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    probe = subprocess.run(
        [docker or "docker", "compose", "version"], capture_output=True, check=False
    ) if docker else None  # fmt: skip
    if probe is None or probe.returncode != 0:
        pytest.skip("docker compose is not installed here")
    env = tmp_path / "compose.env"
    env.write_text("".join(f"{name}=x{i}\n" for i, name in enumerate(
        ["POSTGRES_ADMIN_PASSWORD", "CDB_POSTGRES_PASSWORD", "CDB_REDIS_PASSWORD",
         "GRAFANA_ADMIN_PASSWORD"])))  # fmt: skip
    for path in FILES:
        result = subprocess.run(
            ["docker", "compose", "--env-file", str(env), "-f", str(path), "config", "-q"],
            capture_output=True, text=True, check=False, cwd=REPO,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
