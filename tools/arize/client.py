"""Build the official Arize SDK client from plain connection settings, and make one SDK call
under a deadline (`call_with_deadline`: what the monitors and prompts adapters share).

The SDK is an optional extra (`pip install 'llm-remediator[arize]'`): it brings pandas, pyarrow,
numpy and grpcio, and takes over a second to import, so it is imported here, on first use, never
at module load (the intake's writer process must start in a moment).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from arize import ArizeClient

SCHEMES = ("http", "https")
T = TypeVar("T")


class ArizeUnavailable(RuntimeError):
    """The SDK is not installed (the `arize` extra)."""


@dataclass(frozen=True)
class ArizeConnection:
    """Where the REST v2 API is and the key to call it with (ARIZE.md §2)."""

    api_key: str
    host: str = "api.arize.com"
    """A host name only: the scheme goes in `scheme` (in the host, the SDK builds https://http://…)."""
    scheme: str = "https"
    port: int | None = None
    space_id: str | None = None
    """The space new tags are created in."""

    def __post_init__(self) -> None:
        if "://" in self.host or "/" in self.host:
            raise ValueError(
                f"Arize API host {self.host!r} must be a host name, without a scheme or a path"
            )
        if self.scheme not in SCHEMES:
            raise ValueError(f"Arize API scheme must be http or https, not {self.scheme!r}")

    @property
    def base_url(self) -> str:
        """Return the REST API's base URL, as the SDK builds it."""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{self.host}{port}"


def load_sdk() -> Any:
    """Import the SDK (once per process), with its INFO logging off; raise ArizeUnavailable."""
    os.environ.setdefault("ARIZE_LOG_ENABLE", "false")
    try:
        import arize
    except ImportError as exc:
        raise ArizeUnavailable(
            "the Arize SDK is not installed: pip install 'llm-remediator[arize]'"
        ) from exc
    return arize


def make_client(connection: ArizeConnection) -> ArizeClient:
    """Return an ArizeClient for this connection (keyword arguments only, no environment)."""
    arize = load_sdk()
    kwargs: dict[str, Any] = {
        "api_key": connection.api_key,
        "api_host": connection.host,
        "api_scheme": connection.scheme,
    }
    if connection.port:
        kwargs["api_port"] = connection.port
    client: ArizeClient = arize.ArizeClient(**kwargs)
    return client


def generated_api_client(client: ArizeClient) -> Any:
    """Return the SDK's generated REST client (what MonitorsApi and TagsApi are built on)."""
    return client._gen_client_factory.get_client()


@dataclass(frozen=True)
class SdkFailure:
    """Why one SDK call gave no answer, for an adapter to word as its ToolResult."""

    kind: str
    """`deadline`: no answer within it; `http`: Arize answered an error status; `unreachable`: no
    answer at all (refused, reset, urllib3 gave up); `unreadable`: the SDK's strict models refused
    what Arize answered; `error`: anything else."""
    http_status: int | None = None
    detail: str = ""
    """`http`: the problem's detail (else title, else the HTTP reason); otherwise empty."""
    exception: BaseException | None = None

    @property
    def name(self) -> str:
        """Return the exception's type name ("" past the deadline)."""
        return type(self.exception).__name__ if self.exception is not None else ""


def call_with_deadline(
    work: Callable[[], T], seconds: float, *, pool: concurrent.futures.Executor | None = None
) -> T | SdkFailure:
    """Run one SDK call on `pool` (else on a daemon thread of its own) and wait `seconds` at most;
    return its answer, or the SdkFailure saying why there is none. Never raises: a call past the
    deadline is abandoned (the SDK has no default timeout and may never return; a write
    abandoned that way may still land)."""
    future = pool.submit(work) if pool is not None else _in_daemon_thread(work)
    try:
        return future.result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        future.cancel()
        return SdkFailure("deadline")
    except Exception as exc:  # every SDK failure becomes an SdkFailure, never a crash
        return describe_failure(exc)


def describe_failure(exc: BaseException) -> SdkFailure:
    """Return what kind of failure an exception from an SDK call is."""
    from urllib3.exceptions import HTTPError

    http_status = getattr(exc, "status", None)
    if isinstance(http_status, int) and http_status >= 400:
        reason = getattr(exc, "reason", None)
        detail = problem_detail(getattr(exc, "body", None)) or str(reason or "")
        return SdkFailure("http", http_status, detail, exc)
    if isinstance(exc, HTTPError | OSError):  # MaxRetryError after timeouts, refused, reset, …
        return SdkFailure("unreachable", exception=exc)
    if isinstance(exc, ValueError | TypeError):  # pydantic's ValidationError is a ValueError
        return SdkFailure("unreadable", exception=exc)
    return SdkFailure("error", exception=exc)


def problem_detail(body: Any) -> str | None:
    """Return the `detail` (else `title`) of an RFC 7807 problem body, if the body is one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    text = data.get("detail") or data.get("title")
    return str(text)[:300] if text else None


def _in_daemon_thread(work: Callable[[], T]) -> concurrent.futures.Future[T]:
    """Run `work` on a daemon thread of its own: a call abandoned at the deadline (the SDK may
    never return) neither holds a pool's worker nor keeps the process from exiting."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as exc:  # handed to the caller through the future
            future.set_exception(exc)

    threading.Thread(target=run, name="arize-call", daemon=True).start()
    return future
