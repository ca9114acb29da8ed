"""Settings refuse placeholder secrets outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.settings import Settings

STRONG = "k" * 32


def build(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_production_refuses_the_placeholder_webhook_token() -> None:
    with pytest.raises(ValidationError, match="REMEDIATOR_WEBHOOK_TOKEN is a placeholder"):
        build(audit_key=STRONG)


def test_production_refuses_a_short_audit_key() -> None:
    with pytest.raises(ValidationError, match="REMEDIATOR_AUDIT_KEY"):
        build(webhook_token=STRONG, audit_key="short")


def test_production_accepts_real_secrets_and_dev_accepts_placeholders() -> None:
    assert build(webhook_token=STRONG, audit_key=STRONG).env == "production"
    assert build(env="dev").webhook_token.get_secret_value() == "changethis"


def test_secrets_do_not_show_in_repr() -> None:
    settings = build(webhook_token=STRONG, audit_key=STRONG)
    assert STRONG not in repr(settings)


def test_log_groups_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMEDIATOR_CLOUDWATCH_LOG_GROUPS", "/a, /b ,")
    monkeypatch.setenv("REMEDIATOR_ENV", "dev")
    assert build().cloudwatch_log_groups == ["/a", "/b"]


def test_sqlite_path_is_derived_from_the_url() -> None:
    assert str(build(env="dev", database_url="sqlite:///var/x.db").sqlite_path) == "var/x.db"
    assert build(env="dev", database_url="postgresql+psycopg://h/db").sqlite_path is None
