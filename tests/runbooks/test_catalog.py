"""The service catalog: the shipped example loads; mistakes are named by file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks.catalog import SHIPPED_CATALOG, load_catalog
from runbooks.loader import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(text)
    return path


GOOD = """\
teams:
  core: {pagerduty_routing_key_env: PD_CORE}
services:
  bot:
    models: [bot-v1]
    team: core
"""


def test_the_shipped_catalog_is_valid() -> None:
    catalog = load_catalog(SHIPPED_CATALOG)
    name, service = catalog.service_for(service=None, model_id="support-bot") or ("", None)
    assert name == "support-bot" and service is not None
    assert service.dependencies.vector_db is not None
    assert service.dependencies.vector_db.owner == "search-platform"


def test_service_is_found_by_name_first_then_by_model(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, GOOD))
    assert catalog.service_for(service="bot", model_id=None) is not None
    assert catalog.service_for(service="unknown", model_id="bot-v1") is not None
    assert catalog.service_for(service=None, model_id="other") is None


def test_an_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "    slack_chanel: C1\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    assert (
        str(caught.value) == f"{path}:7: services.bot.slack_chanel: unknown key (not in the schema)"
    )


def test_a_wrong_type_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("models: [bot-v1]", "models: bot-v1"))
    with pytest.raises(
        ConfigError, match=r"services.yaml:5: services.bot.models: Input should be a valid list"
    ):
        load_catalog(path)


def test_an_unknown_team_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no team 'ghosts'"):
        load_catalog(write(tmp_path, GOOD.replace("team: core", "team: ghosts")))


def test_a_qdrant_dependency_needs_a_collection(tmp_path: Path) -> None:
    text = (
        GOOD
        + "    dependencies:\n      vector_db: {kind: qdrant, url: 'http://q:6333', owner: core}\n"
    )
    with pytest.raises(
        ConfigError,
        match="services.bot.dependencies.vector_db: Value error, a qdrant vector_db needs `coll",
    ):
        load_catalog(write(tmp_path, text))


def test_invalid_yaml_and_missing_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"services.yaml:\d+: not valid YAML"):
        load_catalog(write(tmp_path, "teams:\n  - [unclosed\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalog(tmp_path / "missing.yaml")


GATEWAY = """\
teams:
  core: {{pagerduty_routing_key_env: PD_CORE}}
services:
  bot:
    models: [bot-v1]
    team: core
    endpoint:
      base_url: http://gateway.internal:4000/v1
      model: bot
{route_model}    failover:
      backend: gateway
      gateway_url: http://gateway.internal:4000
      gateway_token_env: GW_TOKEN
      targets: [{{name: backup-region, provider: openai, model: bot-v1, region: us-east-1}}]
"""


def test_an_endpoint_behind_the_switched_gateway_needs_a_way_to_reach_the_primary(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_catalog(write(tmp_path, GATEWAY.format(route_model="")))
    assert "endpoint.route_model is needed" in str(caught.value)

    fixed = GATEWAY.format(route_model="      route_model: '{provider}/{model}@{region}'\n")
    endpoint = load_catalog(write(tmp_path, fixed)).services["bot"].endpoint
    assert endpoint is not None
    assert endpoint.model_for("openai", "bot-v1", "eu-west-1") == "openai/bot-v1@eu-west-1"


@pytest.mark.parametrize("template", ["{colour}", "bot-primary", "{model"])
def test_a_route_model_must_be_a_template_over_the_route(tmp_path: Path, template: str) -> None:
    text = GATEWAY.format(route_model=f"      route_model: '{template}'\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog(write(tmp_path, text))
    assert "route_model" in str(caught.value)
