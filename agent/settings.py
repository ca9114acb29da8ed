"""The service's one settings object, read from REMEDIATOR_* variables and an optional .env file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values that people copy from examples; refused as secrets outside development.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changethis", "changeme", "secret", "password", "token", "test"}
)
MIN_SECRET_LENGTH = 16


class Settings(BaseSettings):
    """Configuration for the API, the worker and every integration."""

    model_config = SettingsConfigDict(
        env_prefix="REMEDIATOR_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["dev", "production"] = Field(
        "production",
        description="`dev` allows placeholder secrets; anything real runs `production`.",
    )
    database_url: str = Field(
        "sqlite:///./var/remediator.db",
        description="SQLAlchemy URL: a SQLite file (default) or postgresql+psycopg://…",
    )
    auto_migrate: bool = Field(True, description="Run database migrations when the service starts.")
    webhook_token: SecretStr = Field(
        SecretStr("changethis"),
        description="Bearer token Arize (or any sender) must present on POST /webhooks/*.",
    )
    audit_key: SecretStr = Field(
        SecretStr("changethis"),
        description="HMAC key of the audit chain; keep it outside the database.",
    )
    audit_signing_key_file: Path = Field(
        Path("var/audit-signing-key.pem"),
        description="Ed25519 private key (PEM) that signs audit checkpoints and exports; made on "
        "first use with REMEDIATOR_ENV=dev, required otherwise (unless KMS signs).",
    )
    audit_kms_key_id: str | None = Field(
        None,
        description="AWS KMS asymmetric signing key (id, ARN or alias) that signs audit "
        "checkpoints and exports instead of the file; unset: the file.",
    )
    audit_public_keys: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated PEM files of earlier signing keys' public keys: their "
        "checkpoints keep verifying after a key rotation.",
    )
    viewer_token: SecretStr | None = Field(
        None,
        description="Bearer token of the `viewer` role (review API, pages); unset disables them.",
    )
    viewer_session_seconds: float = Field(
        8 * 3600,
        gt=0,
        description="How long a review-page sign-in lasts; rotating the viewer token ends every "
        "session at once.",
    )
    audit_checkpoint_file: Path | None = Field(
        None,
        description="Also append signed audit checkpoints to this file (keep it off the DB host).",
    )
    audit_checkpoint_seconds: float = Field(
        300,
        ge=0,
        description="How often the worker signs a checkpoint of the audit chain (0: never).",
    )
    redact_fields: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated extra field names whose values are masked before storage.",
    )
    payload_policy: Literal["full", "hash", "none"] = Field(
        "hash",
        description="How prompts and responses are kept in the audit trail: full (redacted), "
        "hash (sha256 and length) or none.",
    )
    max_body_bytes: int = Field(
        256 * 1024,
        gt=0,
        description="Largest accepted body of a webhook and of POST /events/deployments.",
    )
    max_json_depth: int = Field(
        64,
        ge=2,
        le=200,
        description="Deepest nesting of arrays and objects accepted in a webhook body; deeper "
        "is refused with 400 before it is parsed.",
    )
    host: str = Field(
        "127.0.0.1",
        description="Address `remediator serve` (and a worker's metrics server) listens on.",
    )
    port: int = Field(8080, ge=0, le=65535, description="Port `remediator serve` listens on.")
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of the metrics server of a process without the API (`remediator "
        "worker`); unset: none. The API serves GET /metrics on its own port.",
    )
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token Prometheus must send to read /metrics; unset: open."
    )
    log_format: Literal["console", "json"] = Field("console", description="Log renderer.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level."
    )

    intake_writer: Literal["auto", "process", "thread"] = Field(
        "auto",
        description="Where the API stores accepted alerts: `process`, a writer process of its "
        "own (the event loop keeps a core to itself: a higher ack rate, ~75 MB more memory), "
        "`thread`, a thread of the API process, or `auto`: `process` for `serve --no-worker` "
        "(API replicas), `thread` when `serve` runs the worker too.",
    )
    intake_lock_timeout_seconds: float = Field(
        10,
        gt=0,
        description="How long storing accepted alerts may wait for a database lock (another "
        "transaction holding the `alert` table or SQLite's write lock); then the alerts of "
        "that commit are answered 503, to be retried.",
    )
    worker_poll_seconds: float = Field(
        0.5, gt=0, description="Idle worker's database poll interval."
    )
    malloc_arenas: int = Field(
        2,
        ge=0,
        le=64,
        description="glibc malloc arenas for `serve` and `worker` (its MALLOC_ARENA_MAX): each "
        "thread that allocates would otherwise keep one of its own; 0 leaves glibc's default. "
        "A MALLOC_ARENA_MAX in the environment wins.",
    )
    serve_worker_loops: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker loops (threads) `serve --worker` runs; more let a storm's incidents "
        "run side by side (`remediator worker --concurrency` for worker processes).",
    )
    worker_lease_seconds: float = Field(
        300,
        gt=0,
        description="How long a claim (an alert, an incident's run) outlives its worker's last "
        "heartbeat; the worker renews it every third of this while it works.",
    )
    worker_max_attempts: int = Field(
        5, ge=1, description="Claims of one alert before it is failed."
    )
    worker_shutdown_seconds: float = Field(
        20,
        ge=0,
        description="On SIGTERM, how long a worker may finish the work in hand before it gives "
        "the lease back and exits.",
    )

    catalog_file: Path | None = Field(
        None, description="Service catalog YAML (see runbooks/services.yaml); unset: none."
    )
    runbooks_dir: Path | None = Field(
        None, description="Folder of runbook YAML files; unset: the shipped runbooks/library."
    )
    analyst_base_url: str | None = Field(
        None, description="OpenAI-compatible base URL of the optional LLM analyst; unset: off."
    )
    analyst_model: str = Field("gpt-4o-mini", description="Model of the LLM analyst.")
    analyst_api_key: SecretStr | None = Field(None, description="API key of the LLM analyst.")
    group_wait_seconds: float = Field(
        0,
        ge=0,
        description="A new incident's investigation waits this long for its alerts to group.",
    )
    repeat_interval_seconds: float = Field(
        3600, gt=0, description="A breach still firing this long after the last notice is re-sent."
    )
    cause_window_seconds: float = Field(
        300,
        ge=0,
        description="Incidents opened within this many seconds of a cause's first incident, with "
        "the same diagnosis on the same dependency and owner, share one page and one Slack "
        "thread (0: every incident pages on its own).",
    )
    arize_field_map: Path | None = Field(
        None, description="JSON file adding field paths to the Arize payload mapping."
    )
    arize_auth: Literal["bearer", "hmac", "header"] = Field(
        "bearer",
        description="How POST /webhooks/arize authenticates Arize: `bearer` (the Authorization "
        "header is REMEDIATOR_WEBHOOK_TOKEN, with or without `Bearer `), `hmac` (Arize's "
        "X-Arize-Webhook-Signature with REMEDIATOR_ARIZE_SIGNING_SECRET) or `header` (a custom "
        "header REMEDIATOR_ARIZE_HEADER_NAME carrying REMEDIATOR_ARIZE_HEADER_SECRET).",
    )
    arize_signing_secret: SecretStr | None = Field(
        None,
        description="The webhook's signing secret as Arize showed it (`whsec_…`); required by "
        "REMEDIATOR_ARIZE_AUTH=hmac.",
    )
    arize_header_name: str = Field(
        "X-Remediator-Webhook-Secret",
        pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$",
        description="The custom header Arize sends with REMEDIATOR_ARIZE_AUTH=header.",
    )
    arize_header_secret: SecretStr | None = Field(
        None,
        description="The value of that custom header; required by REMEDIATOR_ARIZE_AUTH=header.",
    )
    arize_alert_events: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated X-Arize-Webhook-Event values that are monitor alerts, besides "
        "any naming `monitor` (and none at all); other events are audited, never breaches.",
    )
    page_severity: Literal["critical", "error", "warning", "info"] = Field(
        "critical", description="PagerDuty severity of the built-in page-on-breach rule."
    )
    public_url: str | None = Field(
        None, description="Where reviewers reach this service (for links)."
    )

    arize_api_key: SecretStr | None = Field(
        None,
        description="Arize API key: breaches are enriched from their monitor, open incidents "
        "re-read it (CLEARED resolves) and it is tagged, prompt versions can be rolled back; "
        "unset: none of that (prompt rollbacks are dry-run; needs the `arize` extra).",
    )
    arize_api_host: str = Field(
        "api.arize.com", description="Arize REST API host name (no scheme: see the next one)."
    )
    arize_api_scheme: Literal["http", "https"] = Field(
        "https", description="Scheme of the Arize REST API."
    )
    arize_api_port: int | None = Field(
        None, ge=1, le=65535, description="Port of the Arize REST API; unset: the scheme's own."
    )
    arize_space_id: str | None = Field(
        None,
        description="Arize space the incident tags are created in; unset: monitors are not tagged.",
    )
    arize_monitor_poll_seconds: float = Field(
        60,
        ge=0,
        description="How often an open incident's Arize monitor is re-read (CLEARED resolves "
        "it, NO_DATA is reported); 0: never.",
    )
    arize_tagging: bool = Field(
        True,
        description="Tag the Arize monitor `remediator-incident-<short id>` while its incident "
        "is open.",
    )
    arize_deadline_seconds: float = Field(
        5,
        gt=0,
        le=60,
        description="Deadline of one Arize API call (enrichment, poll, tags, prompts); past it "
        "the agent goes on without the answer.",
    )

    aws_region: str = Field("us-east-1", description="AWS region for CloudWatch Logs.")
    aws_endpoint_url: str | None = Field(
        None, description="Override AWS endpoint (moto in the sandbox)."
    )
    cloudwatch_log_groups: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated CloudWatch log groups to investigate."
    )
    logs_lookback_minutes: int = Field(30, gt=0, description="Log window before the breach time.")
    logs_query_timeout_seconds: float = Field(10, gt=0, description="Deadline of one log query.")

    pagerduty_routing_key: SecretStr | None = Field(
        None, description="Events API v2 integration key; unset means pages are dry-run."
    )
    pagerduty_events_url: str = Field(
        "https://events.pagerduty.com", description="Events API base."
    )
    pagerduty_ca_bundle: Path | None = Field(
        None, description="CA file to trust for PagerDuty (the sandbox's self-signed certificate)."
    )
    pagerduty_timeout_seconds: float = Field(
        10, gt=0, description="Read timeout per PagerDuty call."
    )

    pagerduty_api_key: SecretStr | None = Field(
        None, description="REST API key: the agent adds a note to the incident it paged."
    )
    pagerduty_from_email: str | None = Field(
        None, description="The PagerDuty user e-mail REST writes are made as (From header)."
    )
    pagerduty_rest_url: str = Field("https://api.pagerduty.com", description="REST API base.")
    pagerduty_events_per_minute: int = Field(
        120,
        ge=1,
        description="Events v2 sends at most this many events a minute per routing key "
        "(PagerDuty's documented limit is about 120); beyond it, triggers wait their turn.",
    )

    slack_bot_token: SecretStr | None = Field(
        None, description="Bot token (xoxb-…); unset means Slack messages are dry-run."
    )
    slack_base_url: str = Field("https://slack.com/api/", description="Slack Web API base.")
    slack_channel: str | None = Field(None, description="Channel id for incident threads.")
    slack_timeout_seconds: float = Field(10, gt=0, description="Timeout per Slack call.")
    slack_min_interval_seconds: float = Field(
        1.0, ge=0, description="Messages to one channel are paced this far apart (Slack: ~1/s)."
    )
    slack_burst: int = Field(
        5, ge=1, description="Messages a quiet channel takes at once before the outbox paces it."
    )
    slack_outbox_poll_seconds: float = Field(
        0.25, gt=0, description="How often the outbox sender looks for messages to send."
    )
    slack_outbox_lease_seconds: float = Field(
        30, gt=0, description="A channel's sender holds it this long between renewals."
    )
    slack_digest_after: int = Field(
        5,
        ge=0,
        description="New incidents per channel per minute beyond which they go into the "
        "channel's digest (one message a minute, edited in place); 0 turns the digest off.",
    )
    slack_digest_edit_seconds: float = Field(
        10, gt=0, description="A digest is edited at most this often as incidents join it."
    )

    slack_signing_secret: SecretStr | None = Field(
        None,
        description="The Slack app's signing secret; unset means POST /slack/interactions is off.",
    )
    approver_token: SecretStr | None = Field(
        None,
        description="Bearer token of POST /approvals/{id} (approvals without Slack); "
        "unset means that route is off.",
    )

    @field_validator(
        "cloudwatch_log_groups",
        "redact_fields",
        "audit_public_keys",
        "arize_alert_events",
        mode="before",
    )
    @classmethod
    def _split_groups(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("arize_api_host")
    @classmethod
    def _host_without_scheme(cls, value: str) -> str:
        if "://" in value or "/" in value or not value.strip():
            raise ValueError(
                "REMEDIATOR_ARIZE_API_HOST is a host name only (e.g. api.arize.com): put the "
                "scheme in REMEDIATOR_ARIZE_API_SCHEME"
            )
        return value.strip()

    @model_validator(mode="after")
    def _arize_auth_complete(self) -> Settings:
        needed = {"hmac": "arize_signing_secret", "header": "arize_header_secret"}
        name = needed.get(self.arize_auth)
        secret = getattr(self, name) if name else None
        if name and (secret is None or not secret.get_secret_value().strip()):
            what = {
                "hmac": "the webhook's signing secret as Arize showed it (whsec_…)",
                "header": "the value Arize sends in REMEDIATOR_ARIZE_HEADER_NAME",
            }[self.arize_auth]
            raise ValueError(
                f"REMEDIATOR_ARIZE_AUTH={self.arize_auth} needs REMEDIATOR_{name.upper()}: {what}"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.env == "dev":
            return self
        secrets = (
            "webhook_token",
            "audit_key",
            "viewer_token",
            "approver_token",
            "metrics_token",
            "arize_header_secret",
        )
        for name in secrets:
            secret = getattr(self, name)
            if secret is None:
                continue
            value = secret.get_secret_value()
            if value.lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"REMEDIATOR_{name.upper()} is a placeholder or shorter than "
                    f"{MIN_SECRET_LENGTH} characters; set a real secret "
                    "(or REMEDIATOR_ENV=dev for local use)"
                )
        return self

    @property
    def sqlite_path(self) -> Path | None:
        """Return the SQLite file of the database URL, or None for other databases."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        return Path(self.database_url[len(prefix) :])
