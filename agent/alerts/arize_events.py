"""What an Arize delivery is: a monitor alert, a prompt version event, or another event.

Arize names the event in header `X-Arize-Webhook-Event` (the body's `event` field carries the
same dotted name). Monitor alerts go to the intake as breaches; `prompt.version.created`,
`prompt.version.labeled` and `prompt.version.unlabeled` are recorded as changes of kind `prompt`;
every other event (`evaluator.version.created`, `online_task.run.failed`, anything unknown) is
audited and never treated as a breach.

What event name a *monitor alert* carries is not documented, so a delivery is an alert when it
names no event, when its event names a monitor (`monitor…`), or when the event is listed in
REMEDIATOR_ARIZE_ALERT_EVENTS. The body of a prompt event is not documented either: its fields
are looked for tolerantly (top level, or under `data`, `payload`, `prompt_version`, …) and the
raw body is kept in the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from agent.alerts.arize import BreachMappingError, as_text, as_time, first_of

PROMPT_EVENTS: dict[str, Literal["created", "labeled", "unlabeled"]] = {
    "prompt.version.created": "created",
    "prompt.version.labeled": "labeled",
    "prompt.version.unlabeled": "unlabeled",
}
OTHER_EVENTS = frozenset({"evaluator.version.created", "online_task.run.failed"})
"""The other events Arize documents: audited, never breaches."""

Kind = Literal["alert", "prompt", "other"]

_BASES = ("", "data.", "payload.", "event_data.", "body.")
_HOLDERS = ("", "prompt_version.", "promptVersion.", "version.")
PROMPT_ID_LENGTH = 512
VERSION_LENGTH = 200
LABEL_LENGTH = 200


def _paths(*names: str) -> list[str]:
    """Return each name under each envelope and holder object, the plainest first."""
    return [f"{base}{holder}{name}" for base in _BASES for holder in _HOLDERS for name in names]


FIELD_PATHS: dict[str, list[str]] = {
    "prompt_id": _paths("prompt_id", "promptId", "prompt.id"),
    "prompt_name": _paths("prompt_name", "promptName", "prompt.name"),
    "version": _paths("version_id", "versionId", "prompt_version_id", "promptVersionId")
    + [
        f"{base}{holder}id"
        for base in _BASES
        for holder in ("prompt_version.", "promptVersion.", "version.")
    ],
    "label": _paths("label", "label_name", "labelName", "label.name"),
    "previous_version": _paths(
        "previous_version_id", "previousVersionId", "previous_version.id", "previous_version"
    ),
    "actor": _paths(
        "actor.email", "actor.name", "user.email", "user.name", "actor", "user", "user_email"
    )
    + _paths("created_by_user_id", "updated_by_user_id"),
    "at": _paths("occurred_at", "occurredAt", "labeled_at", "timestamp", "created_at"),
    "commit_message": _paths("commit_message", "commitMessage"),
}


def event_of(header: str | None, payload: Mapping[str, Any]) -> str | None:
    """Return the delivery's event type: the header's, else the body's when it is documented.

    The body's `event` is read only when it names a documented non-alert event: a monitor
    alert's body is undocumented, and a field of it called `event` must not make it one.
    """
    if header is not None and header.strip():
        return header.strip()
    for path in ("event", "event_type", "eventType"):
        value = as_text(payload.get(path))
        if value and (value in PROMPT_EVENTS or value in OTHER_EVENTS):
            return value
    return None


def kind_of(event: str | None, alert_events: Iterable[str] = ()) -> Kind:
    """Return what a delivery of this event type is."""
    if event is None or event in alert_events or "monitor" in event.casefold():
        return "alert"
    return "prompt" if event in PROMPT_EVENTS else "other"


@dataclass(frozen=True)
class PromptChange:
    """A prompt version event, as far as its body says."""

    action: Literal["created", "labeled", "unlabeled"]
    prompt_id: str | None
    prompt_name: str | None
    version: str
    """The Arize prompt version id."""
    label: str | None
    previous_version: str | None = None
    actor: str | None = None
    at: datetime | None = None
    commit_message: str | None = None

    @property
    def prompt(self) -> str:
        """Return the prompt's identity: its id, else its name."""
        key = self.prompt_id or self.prompt_name
        assert key is not None, "a PromptChange always names its prompt"
        return key


def map_prompt_event(event: str, payload: Mapping[str, Any]) -> PromptChange:
    """Map a prompt version event's body, or raise BreachMappingError naming what is missing."""
    action = PROMPT_EVENTS[event]
    found = {name: _text_at(payload, paths) for name, paths in FIELD_PATHS.items() if name != "at"}
    found["at"] = first_of(payload, FIELD_PATHS["at"])
    prompt_id, holder = _prompt_id(payload)
    version = as_text(found["version"]) or _version_beside(payload, holder)
    label = as_text(found["label"]) or _label_of(payload.get("labels"))
    missing = []
    if prompt_id is None and as_text(found["prompt_name"]) is None:
        missing.append("prompt identity (prompt_id or prompt.name)")
    if version is None:
        missing.append("prompt version id (version_id or prompt_version.id)")
    if action != "created" and label is None:
        missing.append("label (label or label_name)")
    if missing:
        raise BreachMappingError(
            f"{event} delivery is missing: " + "; ".join(missing), missing=missing
        )
    assert version is not None
    change = PromptChange(
        action=action,
        prompt_id=prompt_id,
        prompt_name=as_text(found["prompt_name"]),
        version=version,
        label=label,
        previous_version=as_text(found["previous_version"]),
        actor=as_text(found["actor"]),
        at=_time(found["at"]),
        commit_message=as_text(found["commit_message"]),
    )
    for name, limit in (
        ("prompt_id", PROMPT_ID_LENGTH),
        ("prompt_name", PROMPT_ID_LENGTH),
        ("version", VERSION_LENGTH),
        ("previous_version", VERSION_LENGTH),
        ("label", LABEL_LENGTH),
        ("actor", LABEL_LENGTH),
    ):
        value = getattr(change, name)
        if value is not None and len(value) > limit:
            raise BreachMappingError(f"{name} is longer than the {limit} characters stored")
    return change


def _text_at(payload: Mapping[str, Any], paths: list[str]) -> str | None:
    """Return the text at the first path that holds text (an object there is skipped)."""
    for path in paths:
        text = as_text(first_of(payload, [path]))
        if text is not None:
            return text
    return None


def _prompt_id(payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Return the prompt id and the path of the object that holds it (`` for the top level)."""
    for path in FIELD_PATHS["prompt_id"]:
        value = as_text(first_of(payload, [path]))
        if value is not None:
            holder, _, name = path.rpartition(".")
            if name == "id":  # `prompt.id`: the holder is the prompt object, not a version
                return value, None
            return value, holder
    return None, None


def _version_beside(payload: Mapping[str, Any], holder: str | None) -> str | None:
    """A PromptVersion object carries `id` beside `prompt_id`: that id is the version's."""
    if holder is None:
        return None
    return as_text(first_of(payload, [f"{holder}.id" if holder else "id"]))


def _label_of(labels: Any) -> str | None:
    """Return the one label of a `labels` list (`production` among several), else None."""
    if not isinstance(labels, list):
        return None
    names = [text for text in (as_text(item) for item in labels) if text]
    if len(names) == 1:
        return names[0]
    return next((name for name in names if name.casefold() == "production"), None)


def _time(value: Any) -> datetime | None:
    try:
        return as_time(value)
    except BreachMappingError:
        return None  # an unreadable time is not a reason to refuse: the receipt time is used
