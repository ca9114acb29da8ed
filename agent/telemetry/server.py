"""A metrics endpoint of its own for processes without the API (`remediator worker`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from sqlalchemy import Engine

from agent.settings import Settings
from agent.telemetry.collector import ScrapeCollector
from agent.telemetry.routes import metrics_token_ok

StartResponse = Callable[..., Any]


@dataclass
class MetricsServer:
    """A running metrics server; `stop()` closes it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """Return the port it listens on."""
        return int(self.server.server_address[1])

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: a scrape every few seconds is not news."""


def start_metrics_server(settings: Settings, engine: Engine | None = None) -> MetricsServer | None:
    """Serve /metrics on REMEDIATOR_HOST:REMEDIATOR_METRICS_PORT in a thread; None when unset.

    With an engine, the scrape includes the incidents-by-state gauge read from the database.
    REMEDIATOR_METRICS_TOKEN, when set, is required as a bearer token as on the API's /metrics.
    """
    if settings.metrics_port is None:
        return None
    exposition = make_wsgi_app(ScrapeCollector(engine))

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not metrics_token_ok(settings, environ.get("HTTP_AUTHORIZATION")):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"send 'Authorization: Bearer <metrics token>'\n"]
        body: Iterable[bytes] = exposition(environ, start_response)
        return body

    server = make_server(settings.host, settings.metrics_port, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
