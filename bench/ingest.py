"""Benchmark: accepted alerts/s and ack latency of POST /webhooks/arize, against peers.

In one run, the same keep-alive HTTP/1.1 client posts N distinct alerts (default 5,000) over 64
connections to three servers, one after the other, each a subprocess on 127.0.0.1:
(a) `remediator serve --no-worker` on a fresh SQLite file: the worker is off, so only the durable
    ack path is measured. Requests queue their alert; one writer stores what is queued (up to
    256 alerts) with their `alert.received` audit events in one transaction, and each request is
    answered 202 only once that transaction is committed (group commit, agent/alerts/intake.py).
    Without the worker the writer is a process of its own (REMEDIATOR_INTAKE_WRITER=auto); the
    same server with the writer on a thread (what `serve` uses beside its worker) is measured
    too, as an info row;
(b) the baseline, a bare FastAPI endpoint that reads the body and answers 202, run by
    `uvicorn.run` with exactly the settings `serve` passes: log level info (so the access log is
    on, one line per request, for both), a 30 s graceful shutdown, and uvicorn's own choice of
    event loop and HTTP parser (the same two for both: plain asyncio and h11 unless uvloop and
    httptools are installed). Turning the access log off would flatter neither side's ratio: it
    costs both the same per request;
(c) Prometheus Alertmanager 0.25 (Debian's prometheus-alertmanager), one alert per POST to
    /api/v2/alerts, kept in memory; skipped with a message when it is not installed.
The baseline runs twice, before and after (a), and its two runs count as one, so that a drift of
the machine's speed during the run (shared cores) does not fall on one side only.
Each server first gets a warm-up of 256 requests that are not counted, on the same connections
as the measured requests that follow them without a pause (steady state, not 64 connections
opening at once).
Targets: (a) accepts at least 0.5x (b)'s throughput, with a p99 at most 2x (b)'s.
The shared harness (servers, load driver, table) is in bench/harness.py.

    .venv/bin/python bench/ingest.py [--alerts N] [--connections C]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from harness import (
    WARMUP,
    LoadResult,
    Row,
    Server,
    Service,
    arize_body,
    base_env,
    drive,
    free_port,
    load_average,
    print_table,
    say,
)


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
    result = drive(server.url, path, headers, bodies, connections=connections, warmup=WARMUP)
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
            # The baseline runs before and after ours, and counts as one: the machine's speed
            # drifts over a run (shared cores), and ours is measured between its two halves.
            before = _measure(bare, "/webhooks/arize", json_headers, arize, connections)
            (workdir / "ours").mkdir()
            with Service(workdir / "ours", worker=False, extra_env={}).wait_ready(
                "/readyz"
            ) as ours:
                mine = _measure(ours, "/webhooks/arize", ours.headers, arize, connections)
            after = _measure(bare, "/webhooks/arize", json_headers, arize, connections)
            base = before.pooled(after)
        (workdir / "thread").mkdir()
        on_thread = {"REMEDIATOR_INTAKE_WRITER": "thread"}
        with Service(workdir / "thread", worker=False, extra_env=on_thread).wait_ready(
            "/readyz"
        ) as ours:
            threaded = _measure(ours, "/webhooks/arize", ours.headers, arize, connections)
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
    return _rows(mine, threaded, base, peer, alerts, connections)


def _rows(
    ours: LoadResult,
    threaded: LoadResult,
    base: LoadResult,
    peer: LoadResult | None,
    alerts: int,
    connections: int,
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
            f"bare FastAPI 202 {base_rate:,.0f}/s (before and after ours); "
            f"ours {rate / base_rate:.2f}x",
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
        (
            "ingest, writer on a thread (as beside the worker)",
            f"{threaded.rate(202):,.0f} alerts/s, p99 {threaded.percentile_ms(0.99):.1f} ms"
            + (f" [{threaded.problems(202)}]" if threaded.problems(202) else ""),
            "no target",
            f"{threaded.rate(202) / base_rate:.2f}x bare throughput, "
            f"{threaded.percentile_ms(0.99) / base_p99:.2f}x bare p99",
            "info",
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
