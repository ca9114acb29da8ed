"""Invented Arize alert bodies for tests (Arize does not publish its webhook JSON)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).parents[1] / "sandbox" / "samples" / "arize_breach.json"


def arize_alert(**changes: Any) -> dict[str, Any]:
    """Return the shipped sample with a fresh trigger time, a unique model, and the changes."""
    payload: dict[str, Any] = json.loads(SAMPLE.read_text())
    payload["triggered_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    payload["model_id"] = f"support-bot-{uuid.uuid4().hex[:8]}"
    payload.update(changes)
    return payload
