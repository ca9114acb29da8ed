"""The tolerant Arize mapping: many shapes in, one typed Breach out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.alerts.arize import (
    DEFAULT_FIELD_PATHS,
    BreachMappingError,
    load_field_paths,
    map_arize_payload,
)
from tests.sample import SAMPLE


def test_shipped_sample_maps_every_field() -> None:
    breach = map_arize_payload(json.loads(SAMPLE.read_text()), DEFAULT_FIELD_PATHS)

    assert breach.monitor_id == "mon-support-bot-latency-p95"
    assert breach.status == "triggered"
    assert breach.metric == "latency_p95_ms"
    assert (breach.threshold, breach.operator, breach.value) == (2000.0, ">", 4870.0)
    assert (breach.model_id, breach.model_version) == ("support-bot", "2026-11-20")
    assert breach.environment == "production"
    assert breach.segment == {"region": "eu-west-1"}
    assert breach.triggered_at == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    assert breach.url is not None and breach.url.startswith("https://app.arize.com/")


def test_nested_camel_case_shape_maps_too() -> None:
    payload = {
        "monitor": {"id": 42, "name": "cost per query", "status": "No Data"},
        "model": {"name": "rag-answerer", "version": "v7", "environment": "staging"},
        "metricValue": "0.031",
        "thresholdValue": 0.02,
        "dimensions": [{"name": "cohort", "value": "enterprise"}, {"key": "region", "value": "us"}],
        "timestamp": 1764208800000,
    }

    breach = map_arize_payload(payload, DEFAULT_FIELD_PATHS)

    assert breach.monitor_id == "42"
    assert breach.status == "no_data"
    assert breach.model_id == "rag-answerer"
    assert breach.value == pytest.approx(0.031)
    assert breach.segment == {"cohort": "enterprise", "region": "us"}
    assert breach.triggered_at == datetime.fromtimestamp(1764208800, UTC)


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("Triggered", "triggered"),
        ("firing", "triggered"),
        ("Healthy", "resolved"),
        ("RESOLVED", "resolved"),
        ("no_data", "no_data"),
        ("No Data", "no_data"),
    ],
)
def test_status_words(word: str, status: str) -> None:
    assert (
        map_arize_payload({"monitor_name": "m", "status": word}, DEFAULT_FIELD_PATHS).status
        == status
    )


def test_fingerprint_ignores_values_but_not_segment() -> None:
    base = {"monitor_id": "m", "status": "triggered", "model_id": "a", "environment": "prod"}
    one = map_arize_payload(
        dict(base, current_value=1, dimensions={"region": "eu"}), DEFAULT_FIELD_PATHS
    )
    two = map_arize_payload(
        dict(base, current_value=9, dimensions={"region": "eu"}), DEFAULT_FIELD_PATHS
    )
    other = map_arize_payload(dict(base, dimensions={"region": "us"}), DEFAULT_FIELD_PATHS)

    assert one.fingerprint() == two.fingerprint()
    assert one.fingerprint() != other.fingerprint()


def test_missing_identity_and_status_are_both_named() -> None:
    with pytest.raises(BreachMappingError) as caught:
        map_arize_payload({"metric": "latency"}, DEFAULT_FIELD_PATHS)

    assert caught.value.missing == ["monitor identity (monitor_id or monitor_name)", "status"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"threshold": True}, "threshold must be a number"),
        ({"current_value": "1e999"}, "value must be a finite number"),
        ({"dimensions": "region=eu"}, "segment must be an object"),
        ({"dimensions": [{"value": "eu"}]}, "name and value"),
        ({"triggered_at": "yesterday"}, "triggered_at is not a time"),
    ],
)
def test_wrong_kinds_of_values_are_refused(changes: dict[str, object], words: str) -> None:
    with pytest.raises(BreachMappingError, match=words):
        map_arize_payload(
            {"monitor_id": "m", "status": "triggered", **changes}, DEFAULT_FIELD_PATHS
        )


def test_field_map_file_adds_paths_tried_first(tmp_path: Path) -> None:
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"model_id": "payload.llm.name", "status": ["payload.state"]}))
    paths = load_field_paths(mapping)
    payload = {
        "monitor_id": "m",
        "status": "ignored-because-payload-state-wins",
        "model_id": "fallback",
        "payload": {"llm": {"name": "captured-model"}, "state": "Triggered"},
    }

    breach = map_arize_payload(payload, paths)

    assert breach.model_id == "captured-model"
    assert breach.status == "triggered"
    assert "model_id" in paths["model_id"]


def test_field_map_file_with_unknown_field_is_refused(tmp_path: Path) -> None:
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"modle_id": ["x"]}))

    with pytest.raises(ValueError, match="unknown field 'modle_id'"):
        load_field_paths(mapping)
