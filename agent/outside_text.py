"""Text from outside (alerts, log lines, model answers, other systems' errors) made inert.

Whatever an alert or a log line says is data: in Slack mrkdwn it can neither mention anyone
(`<!channel>`, `<@U…>`, `<!subteam^…>`) nor make a link (`<url|label>`); in HTML and Markdown
it is text, never markup; a link is built only from an http(s) URL, and a URL cannot break out
of the link the service builds around it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

_MRKDWN = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# In a Slack link target: `|` would end the URL and start the label, `<` `>` end the link.
_LINK_TARGET = str.maketrans({"&": "&amp;", "<": "%3C", ">": "%3E", "|": "%7C"})
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f\"'`\\]")
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,20}")
_SLACK_GROUP = re.compile(r"S[A-Z0-9]{2,20}")


def mrkdwn(value: object) -> str:
    """Return text for Slack mrkdwn: `&`, `<` and `>` escaped, so nothing in it is markup."""
    return str(value).translate(_MRKDWN)


def http_url(value: object) -> str | None:
    """Return `value` when it is an absolute http(s) URL with a host, else None.

    `javascript:`, `data:`, relative and scheme-less URLs are refused, and so is any URL holding
    whitespace, quotes, backslashes or control characters (which browsers and Slack treat
    differently from what a reader sees).
    """
    if not isinstance(value, str) or _UNSAFE_IN_URL.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


def mrkdwn_link(url: object, label: str) -> str:
    """Return a Slack link to an http(s) URL, or the escaped label alone for any other URL."""
    target = http_url(url)
    if target is None:
        return mrkdwn(label)
    return f"<{target.translate(_LINK_TARGET)}|{mrkdwn(label)}>"


def slack_mention(user_or_group: str) -> str:
    """Return a mention of a Slack user (U…/W…) or user group (S…); anything else as text."""
    if _SLACK_GROUP.fullmatch(user_or_group):
        return f"<!subteam^{user_or_group}>"
    if _SLACK_USER.fullmatch(user_or_group):
        return f"<@{user_or_group}>"
    return mrkdwn(user_or_group)


_PLAIN = str.maketrans({"<": "\u2039", ">": "\u203a"})


def plain(value: object) -> str:
    """Return text for a plain-text system that may forward it to chat (PagerDuty): `<` and `>`
    become ‹ and ›, so no `<!channel>` or `<url|label>` survives, and no entity shows."""
    return str(value).translate(_PLAIN)


def plain_value(value: Any) -> Any:
    """Return `value` with every text in it (nested dicts and lists too) made `plain`."""
    if isinstance(value, str):
        return plain(value)
    if isinstance(value, dict):
        return {plain_value(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    return value
