"""Viewer sessions: signed, expiring, ended by sign-out or a new token; pages refuse framing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.api.deps import VIEWER_COOKIE
from tests.conftest import make_settings

VIEWER = secrets.token_urlsafe(24)


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self) -> None:
        self.at = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def start(tmp_path: Path, clock: Clock) -> Iterator[Any]:
    clients: list[TestClient] = []

    def started(**overrides: Any) -> TestClient:
        values = {"viewer_token": VIEWER, "viewer_session_seconds": 3600, **overrides}
        app = create_app(make_settings(tmp_path, **values), run_worker=False, now=clock)
        client = TestClient(app, base_url="http://testserver").__enter__()
        clients.append(client)
        return client

    yield started
    for client in clients:
        client.__exit__(None, None, None)


def sign_in(client: TestClient, token: str = VIEWER) -> str:
    answer = client.post("/ui/login", data={"token": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    cookie = answer.cookies.get(VIEWER_COOKIE)
    assert cookie
    return cookie


def page(client: TestClient, cookie: str | None) -> int:
    client.cookies.clear()
    if cookie is not None:
        client.cookies.set(VIEWER_COOKIE, cookie)
    return client.get("/ui/incidents", follow_redirects=False).status_code


def test_each_sign_in_gets_its_own_signed_session(start: Any) -> None:
    client = start()
    first, second = sign_in(client), sign_in(client)

    assert first != second
    assert page(client, first) == 200 and page(client, second) == 200
    payload, _, mac = first.rpartition(".")
    version, expires, nonce = payload.split(".")
    forged_later = f"{version}.{int(expires) + 10**6}.{nonce}.{mac}"
    assert page(client, forged_later) == 303  # a longer life cannot be written in by hand
    assert page(client, first[:-1] + ("0" if first[-1] != "0" else "1")) == 303
    assert page(client, "anything") == 303 and page(client, None) == 303
    client.cookies.clear()
    client.cookies.set(VIEWER_COOKIE, first)
    assert client.get("/incidents").status_code == 200  # the review API honours it too


def test_a_session_expires_after_the_configured_time(start: Any, clock: Clock) -> None:
    client = start(viewer_session_seconds=600)
    answer = client.post("/ui/login", data={"token": VIEWER}, follow_redirects=False)
    assert "max-age=600" in answer.headers["set-cookie"].lower()
    cookie = answer.cookies[VIEWER_COOKIE]

    clock.at += timedelta(seconds=599)
    assert page(client, cookie) == 200
    clock.at += timedelta(seconds=1)
    assert page(client, cookie) == 303
    client.cookies.set(VIEWER_COOKIE, cookie)
    assert client.get("/incidents").status_code == 401


def test_sign_out_drops_the_session(start: Any) -> None:
    client = start()
    sign_in(client)  # the client keeps the cookie, as a browser does
    assert client.get("/ui/incidents", follow_redirects=False).status_code == 200

    answer = client.post("/ui/logout", follow_redirects=False)

    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
    assert f'{VIEWER_COOKIE}=""' in answer.headers["set-cookie"]
    assert "max-age=0" in answer.headers["set-cookie"].lower()
    assert client.get("/ui/incidents", follow_redirects=False).status_code == 303


def test_a_new_viewer_token_ends_every_session(start: Any) -> None:
    before = start()
    cookie = sign_in(before)
    assert page(before, cookie) == 200

    rotated = secrets.token_urlsafe(24)
    after = start(viewer_token=rotated)  # the token rotated, same database

    assert page(after, cookie) == 303
    assert page(after, sign_in(after, rotated)) == 200


@pytest.mark.parametrize("path", ["/ui/login", "/ui/incidents", "/ui/incidents/nothing", "/ui"])
def test_every_page_forbids_framing_and_foreign_content(start: Any, path: str) -> None:
    client = start()
    client.cookies.set(VIEWER_COOKIE, sign_in(client))

    answer = client.get(path, follow_redirects=False)

    policy = answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert "script-src" not in policy and "unsafe-inline" not in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_pages_use_no_inline_style(start: Any) -> None:
    client = start()
    client.cookies.set(VIEWER_COOKIE, sign_in(client))
    for path in ("/ui/login", "/ui/incidents"):
        html = client.get(path).text
        assert "<style" not in html and "style=" not in html and "<script" not in html
        assert '<link rel="stylesheet" href="/ui/review.css">' in html
    css = client.get("/ui/review.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "header.top" in css.text
