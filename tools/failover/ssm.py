"""Failover on AWS SSM Parameter Store: one String parameter per service holds its route document.

The parameter `<prefix>/<service>` (default prefix `/remediator/routes`) holds the JSON document
described in tools/failover/document.py: the active route and the records of the switches made. One
`put_parameter(Overwrite=True)` per switch or restore, so the parameter's version goes up by exactly
one per change and not at all for a repeated call. Parameter Store has no conditional write: two
writers racing on one service can interleave; the agent's incident lease keeps it to one.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tools.failover.document import DocumentFailover, RouteDocument, StoreError, parse_document
from tools.result import ToolStatus

DEFAULT_PREFIX = "/remediator/routes"
# A Standard-tier parameter value is at most 4 KB; older switch records give way first.
MAX_VALUE_CHARS = 4096


def make_ssm_client(
    region: str,
    *,
    endpoint_url: str | None = None,
    timeout_seconds: float = 5.0,
    max_attempts: int = 3,
    session: boto3.Session | None = None,
) -> Any:
    """Return an SSM client with timeouts and botocore's bounded standard retries.

    `session` carries the credentials (boto3's default chain when None).
    """
    config = Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"max_attempts": max_attempts, "mode": "standard"},
    )
    return (session or boto3.Session()).client(
        "ssm", region_name=region, endpoint_url=endpoint_url, config=config
    )


class SsmFailoverBackend(DocumentFailover):
    """Read and switch service routes kept in SSM Parameter Store."""

    name = "ssm_failover"

    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = prefix.rstrip("/")

    def check(self) -> tuple[bool, str]:
        """Confirm that Parameter Store answers and holds at least one route."""
        try:
            found = self._client.get_parameters_by_path(Path=self._prefix, MaxResults=10)
        except (BotoCoreError, ClientError) as exc:
            return False, f"SSM Parameter Store unreachable: {exc}"
        if not found.get("Parameters"):
            return False, f"no routes stored under {self._prefix}"
        return True, f"routes stored under {self._prefix}"

    def _location(self, service: str) -> str:
        return f"{self._prefix}/{service}"

    def _load(self, service: str) -> RouteDocument | None:
        name = self._location(service)
        try:
            parameter = self._client.get_parameter(Name=name)["Parameter"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise StoreError(f"SSM get_parameter {name} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"SSM unreachable: {exc}", ToolStatus.down) from exc
        try:
            return parse_document(json.loads(parameter["Value"]), int(parameter["Version"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"parameter {name} does not hold a route document: {exc}") from exc

    def _store(self, service: str, document: dict[str, Any], read_version: int) -> int:
        name = self._location(service)
        value = _fit(document)
        try:
            answer = self._client.put_parameter(
                Name=name, Value=value, Type="String", Overwrite=True
            )
        except ClientError as exc:
            raise StoreError(f"SSM put_parameter {name} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"SSM unreachable: {exc}", ToolStatus.down) from exc
        return int(answer["Version"])


def _fit(document: dict[str, Any]) -> str:
    """Return the document as compact JSON, dropping the oldest records until it fits 4 KB."""
    switches = list(document["switches"])
    while True:
        value = json.dumps(dict(document, switches=switches), separators=(",", ":"))
        if len(value) <= MAX_VALUE_CHARS:
            return value
        # The newest record is the one this write needs to be undone; it is never dropped.
        if len(switches) <= 1:
            raise StoreError(f"the route document is over {MAX_VALUE_CHARS} characters")
        switches = switches[1:]
