"""Build the official Arize SDK client from plain connection settings.

The SDK is an optional extra (`pip install 'llm-remediator[arize]'`): it brings pandas, pyarrow,
numpy and grpcio, and takes over a second to import, so it is imported here, on first use, never
at module load (the intake's writer process must start in a moment).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arize import ArizeClient

SCHEMES = ("http", "https")


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
