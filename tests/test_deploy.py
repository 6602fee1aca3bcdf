"""What can be checked of the Docker deployment without Docker: the compose file, the Dockerfile, the wheel."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from worker.config import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_farm_services(compose):
    assert {"redis", "postgres", "worker", "flower", "cli"} <= set(compose["services"])
    worker = compose["services"]["worker"]
    # `--scale worker=N` needs generated container names and no fixed host ports.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert any(v.endswith(":/scans:ro") for v in worker["volumes"])
    assert compose["services"]["cli"]["volumes"][0].split(":")[-2] == "/scans"


def test_compose_environment_is_understood_by_digitflow(compose):
    known = {f"DIGITFLOW_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        unknown = {k for k in env if k.startswith("DIGITFLOW_")} - known
        assert not unknown, f"{name}: variables digitflow does not read: {unknown}"
    env = compose["services"]["worker"]["environment"]
    settings = Settings(
        **{k.removeprefix("DIGITFLOW_").lower(): v for k, v in env.items() if "${" not in str(v)}
    )  # also runs the time-limit check
    assert settings.broker_url == "redis://redis:6379/0"
    assert "@postgres:5432/" in settings.database_url
    flower = " ".join(compose["services"]["flower"]["command"])
    assert settings.broker_url in flower


def test_compose_commands_are_digitflow_commands(compose):
    runner = CliRunner()
    command = compose["services"]["worker"]["command"]
    assert runner.invoke(app, [command[0], "--help"]).exit_code == 0
    for line in (ROOT / "docker-compose.yml").read_text().splitlines():
        match = re.match(r"#\s+docker compose run --rm cli (\w+)", line)
        if match:
            assert runner.invoke(app, [match.group(1), "--help"]).exit_code == 0, line


def test_dockerfile_copies_what_exists_and_runs_digitflow():
    text = (ROOT / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), line
    assert 'ENTRYPOINT ["digitflow"]' in text
    assert re.search(r"^FROM python:3\.11", text, re.M)


@pytest.mark.slow
def test_the_wheel_the_image_installs_holds_models_and_migrations(tmp_path):
    # Built from a copy without build outputs: a stale build/ of the working tree would hide a missing glob.
    source = tmp_path / "src"
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".venv", "build", "*.egg-info", ".git", "__pycache__", "*.db")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    names = set(zipfile.ZipFile(next(tmp_path.glob("digitflow-*.whl"))).namelist())
    # Every shipped model file, whatever kinds are added later.
    shipped = [f"ocr/models/{p.name}" for p in (ROOT / "ocr" / "models").iterdir() if p.is_file()]
    assert "ocr/models/touching.npz" in shipped
    for required in (
        "cli.py",
        *shipped,
        "db/migrations/env.py",
        "db/migrations/script.py.mako",
        "db/migrations/versions/0001_initial_schema.py",
        "worker/tasks.py",
    ):
        assert required in names
