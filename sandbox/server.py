"""Run an ASGI app (an emulator, or the service in tests) on a thread, on a loopback port."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn


class Upstream:
    """One keep-alive HTTP client per event loop for a proxy's calls upstream.

    A client per request would build an SSL context each time (tens of milliseconds of CPU on
    the proxy's one event loop): under load the proxy, not what it forwards to, would set the
    pace. The client belongs to the loop it was made on; a server started anew gets its own.
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self._timeout = timeout
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._lock = threading.Lock()

    def client(self) -> httpx.AsyncClient:
        """Return the running loop's client, made on first use."""
        loop = asyncio.get_running_loop()
        with self._lock:
            for old in [other for other in self._clients if other.is_closed()]:
                del self._clients[old]  # a stopped server's: its connections went with it
            found = self._clients.get(loop)
            if found is None:
                found = self._clients[loop] = httpx.AsyncClient(timeout=self._timeout)
            return found


class EmulatorServer:
    """One emulator app served by uvicorn in a thread; HTTPS when given a certificate."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        lifespan: Literal["on", "off"] = "off",
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this; without it, keep-alive answers wait ~40 ms on
        # Nagle's algorithm meeting the client's delayed ACK.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port = self._socket.getsockname()[1]
        self.scheme = "https" if certfile else "http"
        config = uvicorn.Config(
            app,
            log_level="warning",
            log_config=None,  # leave logging to the host process (tests, eval, demo)
            access_log=False,
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
            lifespan=lifespan,
            # Clients keep connections alive; stopping should not wait on them.
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        """Return the base URL, e.g. https://127.0.0.1:43121."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> EmulatorServer:
        """Start serving and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"emulator on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
