"""Benchmark: accepted alerts/s and ack latency of POST /webhooks/arize, against peers.

In one run, the same keep-alive HTTP/1.1 client posts N distinct alerts (default 5,000) over 64
connections to three servers, one after the other, each a subprocess on 127.0.0.1:
(a) `remediator serve --no-worker` on a fresh SQLite file: the worker is off, so only the durable
    ack path is measured (one transaction: the alert row and its `alert.received` audit event);
(b) the baseline, a bare FastAPI endpoint that reads the body and answers 202, run by uvicorn with
    the settings `serve` uses (log level info, access log on);
(c) Prometheus Alertmanager 0.25 (Debian's prometheus-alertmanager), one alert per POST to
    /api/v2/alerts, kept in memory; skipped with a message when it is not installed.
Each server first gets a warm-up of 256 requests that are not counted.
Targets: (a) accepts at least 0.5x (b)'s throughput, with a p99 at most 2x (b)'s.

This file also holds the harness the other benchmarks share: server subprocesses, the load
driver and the table.

    .venv/bin/python bench/ingest.py [--alerts N] [--connections C]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox.demo import SAMPLE

Row = tuple[str, str, str, str, str]
HEADER: Row = ("benchmark", "measured", "target", "baseline (same run)", "verdict")
READY_TIMEOUT = 60.0
ANSWER_TIMEOUT = 30.0
WARMUP = 256
BASE_PAYLOAD: dict[str, Any] = json.loads(SAMPLE.read_text())


def print_table(rows: Sequence[Row]) -> None:
    """Print rows under HEADER in aligned columns."""
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    for row in [HEADER, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def load_average() -> str:
    """Describe the machine's load, to print beside the figures."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def say(bench: str, text: str) -> None:
    """Print one progress line of a benchmark."""
    print(f"[{bench}] {text}", flush=True)


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_env() -> dict[str, str]:
    """Return this environment without proxies or REMEDIATOR_* settings (the bench sets those)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and not k.startswith("REMEDIATOR_")
    }


def arize_body(
    seq: int, *, monitor: str | None = None, triggered_at: datetime | None = None
) -> bytes:
    """Return the sample Arize alert made distinct by `seq` (so none is a re-delivery)."""
    payload = dict(BASE_PAYLOAD, current_value=4870 + seq, bench_seq=seq)
    if monitor is not None:
        payload["monitor_id"] = monitor
    if triggered_at is not None:
        payload["triggered_at"] = triggered_at.isoformat().replace("+00:00", "Z")
    return json.dumps(payload).encode()


class Server:
    """A server subprocess on a loopback port, with its log file and memory figures."""

    def __init__(
        self, name: str, argv: list[str], env: Mapping[str, str], port: int, workdir: Path
    ) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        # The working directory is the bench's own, so no .env file is picked up.
        self.process = subprocess.Popen(
            argv, env=dict(env), cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, path: str) -> Self:
        """Poll `path` until it answers 200; raise with the log's tail if it never does."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}): {self.tail()}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready within {READY_TIMEOUT:.0f}s: {self.tail()}")

    def tail(self) -> str:
        """Return the last lines of the server's log."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])

    def memory_kb(self, field_name: str) -> int:
        """Return a /proc status figure in kB: VmRSS now, or VmHWM, the peak resident set."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field_name} in /proc/{self.process.pid}/status")

    def stop(self) -> None:
        """Ask the server to stop; kill it if it does not within 30 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Service(Server):
    """`remediator serve` on a fresh SQLite file in `workdir`."""

    def __init__(self, workdir: Path, *, worker: bool, extra_env: Mapping[str, str]) -> None:
        port = free_port()
        self.token = secrets.token_urlsafe(24)
        self.database_url = f"sqlite:///{workdir / 'remediator.db'}"
        env = base_env()
        env.update(
            {
                "REMEDIATOR_ENV": "dev",
                "REMEDIATOR_DATABASE_URL": self.database_url,
                "REMEDIATOR_WEBHOOK_TOKEN": self.token,
                "REMEDIATOR_AUDIT_KEY": secrets.token_urlsafe(32),
                "REMEDIATOR_HOST": "127.0.0.1",
                "REMEDIATOR_PORT": str(port),
                **extra_env,
            }
        )
        argv = [sys.executable, "-m", "agent", "serve", "--worker" if worker else "--no-worker"]
        super().__init__("remediator", argv, env, port, workdir)
        self.headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.token}",
        }


@dataclass
class LoadResult:
    """What a load run saw: answers by status, ack latencies in seconds, and its wall time."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    seconds: float = 0.0

    def rate(self, status: int) -> float:
        """Return the answers of this status per second of the run."""
        return self.statuses[status] / self.seconds if self.seconds else 0.0

    def percentile_ms(self, share: float) -> float:
        """Return a latency percentile (nearest rank) in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        rank = max(1, -(-len(ordered) * share // 1))
        return ordered[int(rank) - 1] * 1000

    def problems(self, expected: int) -> str:
        """Describe answers other than `expected` and transport errors; empty when none."""
        other = {s: n for s, n in self.statuses.items() if s != expected}
        parts = [f"{n} answered {s}" for s, n in sorted(other.items())]
        if self.errors:
            parts.append(f"{len(self.errors)} errors (first: {self.errors[0]})")
        return "; ".join(parts)


def drive(
    url: str,
    path: str,
    headers: Mapping[str, str],
    bodies: Sequence[bytes],
    *,
    connections: int = 64,
    over_seconds: float = 0.0,
    keep_bodies: bool = False,
) -> LoadResult:
    """POST every body once over keep-alive connections, spread over `over_seconds` if set."""
    return asyncio.run(_drive(url, path, headers, bodies, connections, over_seconds, keep_bodies))


async def _drive(
    url: str,
    path: str,
    headers: Mapping[str, str],
    bodies: Sequence[bytes],
    connections: int,
    over_seconds: float,
    keep_bodies: bool,
) -> LoadResult:
    # A minimal HTTP/1.1 client: a general one (httpx) would cost more CPU than the bare
    # server, and the baseline would measure the client.
    host, port = url.removeprefix("http://").split(":")
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    queue = iter(enumerate(bodies))
    interval = over_seconds / len(bodies) if over_seconds and bodies else 0.0
    result = LoadResult()
    started = time.perf_counter()

    async def connection() -> None:
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        # The iterator is shared: each connection takes the next request when it is free.
        for index, body in queue:
            if interval:
                await asyncio.sleep(max(0.0, started + index * interval - time.perf_counter()))
            request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
            try:
                if streams is None:
                    streams = await asyncio.open_connection(host, int(port))
                sent = time.perf_counter()
                streams[1].write(request)
                status, answer, close = await asyncio.wait_for(
                    _read_answer(streams[0]), ANSWER_TIMEOUT
                )
                result.latencies.append(time.perf_counter() - sent)
                result.statuses[status] += 1
                if keep_bodies:
                    result.bodies.append(answer)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                result.errors.append(f"{type(exc).__name__}: {exc}")
                close = True
            if close and streams is not None:
                streams[1].close()
                streams = None
        if streams is not None:
            streams[1].close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one HTTP/1.1 answer: status, body, and whether the server closes the connection."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip().lower()
    if "content-length" in fields:
        body = await reader.readexactly(int(fields["content-length"]))
    elif fields.get("transfer-encoding") == "chunked":
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])
        await reader.readuntil(b"\r\n")
        body = b"".join(chunks)
    else:
        raise ValueError(f"answer {status} has neither Content-Length nor chunks")
    return status, body, fields.get("connection") == "close"


def serve_bare(port: int) -> None:
    """Serve the baseline: a FastAPI endpoint that reads the body and answers 202."""
    app = FastAPI()

    @app.post("/webhooks/arize")
    async def accept(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"status": "accepted", "bytes": len(body)}, status_code=202)

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    # The same uvicorn settings as `remediator serve` (its default log level is info).
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info", timeout_graceful_shutdown=30)


def alertmanager_binary() -> str | None:
    """Return the Alertmanager executable, if installed."""
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def start_alertmanager(binary: str, workdir: Path) -> Server:
    """Start Alertmanager on a free loopback port with a config that notifies no one."""
    config = workdir / "alertmanager.yml"
    config.write_text("route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n")
    (workdir / "alertmanager-data").mkdir()
    port = free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: single instance, loopback only
        "--log.level=warn",
    ]
    return Server("alertmanager", argv, base_env(), port, workdir).wait_ready("/-/ready")


def alertmanager_body(seq: int) -> bytes:
    """Return one firing alert for /api/v2/alerts, made distinct by `seq`."""
    alert = {
        "labels": {
            "alertname": "LatencyP95High",
            "model": "support-bot",
            "environment": "production",
            "monitor": "mon-support-bot-latency-p95",
            "seq": str(seq),
        },
        "annotations": {"summary": f"support-bot p95 latency {4870 + seq} ms > 2000 ms"},
        "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "generatorURL": "http://127.0.0.1/monitors/mon-support-bot-latency-p95",
    }
    return json.dumps([alert]).encode()


def _measure(
    server: Server, path: str, headers: Mapping[str, str], bodies: list[bytes], connections: int
) -> LoadResult:
    drive(server.url, path, headers, bodies[:WARMUP], connections=connections)
    result = drive(server.url, path, headers, bodies[WARMUP:], connections=connections)
    rate = max(result.statuses.values(), default=0) / result.seconds
    say("ingest", f"{server.name}: {rate:,.0f}/s, p99 {result.percentile_ms(0.99):.1f} ms")
    return result


def run(alerts: int = 5_000, connections: int = 64) -> list[Row]:
    """Measure (a), (b) and (c) in this order and return the table's rows."""
    arize = [arize_body(i) for i in range(WARMUP + alerts)]
    json_headers = {"Content-Type": "application/json"}
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder).resolve()
        port = free_port()
        argv = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(port)]
        with Server("bare", argv, base_env(), port, workdir).wait_ready("/readyz") as bare:
            base = _measure(bare, "/webhooks/arize", json_headers, arize, connections)
        (workdir / "ours").mkdir()
        with Service(workdir / "ours", worker=False, extra_env={}).wait_ready("/readyz") as ours:
            mine = _measure(ours, "/webhooks/arize", ours.headers, arize, connections)
        binary = alertmanager_binary()
        peer = None
        if binary is None:
            say(
                "ingest",
                "Alertmanager skipped: not installed (apt-get install -y prometheus-alertmanager)",
            )
        else:
            bodies = [alertmanager_body(i) for i in range(WARMUP + alerts)]
            with start_alertmanager(binary, workdir) as manager:
                peer = _measure(manager, "/api/v2/alerts", json_headers, bodies, connections)
    return _rows(mine, base, peer, alerts, connections)


def _rows(
    ours: LoadResult, base: LoadResult, peer: LoadResult | None, alerts: int, connections: int
) -> list[Row]:
    rate, base_rate = ours.rate(202), base.rate(202)
    p99, base_p99 = ours.percentile_ms(0.99), base.percentile_ms(0.99)
    trouble = ours.problems(202) or base.problems(202)
    where = f"{alerts:,} alerts, {connections} conns"
    rows: list[Row] = [
        (
            f"ingest throughput ({where})",
            f"{rate:,.0f} alerts/s" + (f" [{trouble}]" if trouble else ""),
            ">= 0.5x bare",
            f"bare FastAPI 202 {base_rate:,.0f}/s; ours {rate / base_rate:.2f}x",
            "PASS" if rate >= 0.5 * base_rate and not trouble else "MISS",
        ),
        (
            "ingest ack latency",
            f"p50 {ours.percentile_ms(0.5):.1f} ms, p99 {p99:.1f} ms",
            "p99 <= 2x bare p99",
            f"bare p50 {base.percentile_ms(0.5):.1f} ms, p99 {base_p99:.1f} ms; "
            f"ours {p99 / base_p99:.2f}x",
            "PASS" if p99 <= 2 * base_p99 else "MISS",
        ),
    ]
    if peer is None:
        rows.append(("Alertmanager 0.25 ingest", "skipped: not installed", "peer", "-", "skip"))
    else:
        note = peer.problems(200)
        rows.append(
            (
                "Alertmanager 0.25 ingest (in memory)",
                f"{peer.rate(200):,.0f} alerts/s, p50 {peer.percentile_ms(0.5):.1f} ms, "
                f"p99 {peer.percentile_ms(0.99):.1f} ms" + (f" [{note}]" if note else ""),
                "peer, no target",
                f"ours {rate / peer.rate(200):.2f}x its throughput, "
                f"{p99 / peer.percentile_ms(0.99):.2f}x its p99",
                "info",
            )
        )
    return rows


def main() -> None:
    """Run the ingest benchmark and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=5_000, help="measured requests per server")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare is not None:
        serve_bare(args.serve_bare)
        return
    rows = run(args.alerts, args.connections)
    print(load_average())
    print_table(rows)


if __name__ == "__main__":
    main()
