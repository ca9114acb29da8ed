"""Block Kit as Slack documents it: which blocks a message may hold, and every text in them."""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50
HEADER_TEXT = 150
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
CONTEXT_ELEMENTS = 10
KNOWN = {"header", "section", "context", "divider", "actions"}


def texts(text: str, blocks: list[dict[str, Any]]) -> list[str]:
    """Return the fallback text and every text object's text in the blocks, nested ones too."""
    found = [text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                found.append(node["text"])
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


def problems(blocks: list[dict[str, Any]]) -> list[str]:
    """Return what Slack would refuse in these blocks (empty: Slack accepts them)."""
    found = []
    if not 0 < len(blocks) <= MAX_BLOCKS:
        found.append(f"{len(blocks)} blocks (1 to {MAX_BLOCKS})")
    for index, block in enumerate(blocks):
        kind = block.get("type")
        where = f"block {index} ({kind})"
        if kind not in KNOWN:
            found.append(f"{where}: unknown type")
        if kind == "header":
            text = block.get("text", {})
            if text.get("type") != "plain_text" or not 0 < len(text.get("text", "")) <= HEADER_TEXT:
                found.append(f"{where}: needs plain_text of 1 to {HEADER_TEXT} characters")
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                found.append(f"{where}: needs text or fields")
            if text is not None and not 0 < len(text.get("text", "")) <= SECTION_TEXT:
                found.append(f"{where}: text of 1 to {SECTION_TEXT} characters")
            if fields is not None and not (
                0 < len(fields) <= MAX_FIELDS
                and all(0 < len(f.get("text", "")) <= FIELD_TEXT for f in fields)
            ):
                found.append(f"{where}: 1 to {MAX_FIELDS} fields of at most {FIELD_TEXT}")
        if kind == "context":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= CONTEXT_ELEMENTS:
                found.append(f"{where}: 1 to {CONTEXT_ELEMENTS} elements")
            for element in elements:
                if element.get("type") not in ("mrkdwn", "plain_text", "image"):
                    found.append(f"{where}: element of type {element.get('type')}")
                elif element.get("type") != "image" and not element.get("text"):
                    found.append(f"{where}: empty text element")
        for value in (block.get("text"), *(block.get("fields") or [])):
            if isinstance(value, dict) and value.get("type") not in ("mrkdwn", "plain_text"):
                found.append(f"{where}: text object of type {value.get('type')}")
    return found
