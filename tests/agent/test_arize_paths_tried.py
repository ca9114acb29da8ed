"""The 422 for an Arize body that cannot be mapped lists the key paths tried for each field."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from agent.alerts.arize import BreachMappingError, load_field_paths, map_arize_payload
from tests.conftest import RunningService, ServiceFactory


def test_each_missing_field_names_every_path_tried_in_order(tmp_path: Path) -> None:
    field_map = tmp_path / "map.json"
    field_map.write_text(json.dumps({"status": ["payload.alert.state"]}))
    paths = load_field_paths(field_map)

    with pytest.raises(BreachMappingError) as caught:
        map_arize_payload({"payload": {"monitor": "m"}}, paths)

    message = str(caught.value)
    for field in ("monitor_id", "monitor_name", "status"):
        assert f"{field} at {', '.join(paths[field])}" in message
    assert "status at payload.alert.state, status," in message  # the deployment's own first
    assert caught.value.missing == ["monitor identity (monitor_id or monitor_name)", "status"]


def test_only_the_missing_fields_are_listed() -> None:
    paths = load_field_paths(None)
    with pytest.raises(BreachMappingError) as caught:
        map_arize_payload({"monitorName": "p95 of bot"}, paths)
    message = str(caught.value)
    assert "status at status, monitor_status," in message
    assert "monitor_id at" not in message and "monitor_name at" not in message


@pytest.fixture
def bare(start_service: ServiceFactory) -> RunningService:
    return start_service()


def test_the_webhook_answers_422_with_the_paths(bare: RunningService) -> None:
    answer = httpx.post(
        f"{bare.url}/webhooks/arize", json={"alert": {"what": "?"}}, headers=bare.auth, timeout=10
    )
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert "Key paths tried: monitor_id at monitor_id, monitorId, monitor.id" in detail
    assert "status at status, monitor_status, monitorStatus, state" in detail
    assert "REMEDIATOR_ARIZE_FIELD_MAP" in detail
    assert bare.rows() == (0, 0)
