"""The harness the benchmarks share: server subprocesses, the load driver and the table."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

# The benches drive the harness (`sandbox/`), which runs from the checkout and is not installed
# with the product: `python bench/<name>.py` puts only bench/ on the path, so add the checkout.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sandbox.demo import SAMPLE  # noqa: E402  (after the checkout is on the path)

Row = tuple[str, str, str, str, str]
HEADER: Row = ("benchmark", "measured", "target", "baseline (same run)", "verdict")
READY_TIMEOUT = 120.0  # a busy 2-core machine takes ~45 s to start a 13-service catalog
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
        """Return a /proc status figure in kB (VmRSS now, or VmHWM, the peak resident set),
        summed over the server and every process it started (`serve`'s writer process).

        Summed peaks may not have coincided: the figure errs high, never low.
        """
        return sum(_status_kb(pid, field_name) for pid in _tree(self.process.pid))

    def cpu_seconds(self) -> float:
        """Return the CPU time (user + system) the server and its processes have used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in _tree(self.process.pid):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return total / ticks

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

    def pooled(self, other: LoadResult) -> LoadResult:
        """Return this run and `other` counted as one (answers, latencies and time added up)."""
        return LoadResult(
            statuses=self.statuses + other.statuses,
            latencies=self.latencies + other.latencies,
            errors=self.errors + other.errors,
            bodies=self.bodies + other.bodies,
            seconds=self.seconds + other.seconds,
        )

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
    warmup: int = 0,
) -> LoadResult:
    """POST every body once over keep-alive connections, spread over `over_seconds` if set.

    The first `warmup` bodies warm the server up on the same connections and are not counted:
    the measured requests follow without a pause, so they see the server in its steady state
    rather than 64 connections opening at once.
    """
    return asyncio.run(
        _drive(url, path, headers, bodies, connections, over_seconds, keep_bodies, warmup)
    )


async def _drive(
    url: str,
    path: str,
    headers: Mapping[str, str],
    bodies: Sequence[bytes],
    connections: int,
    over_seconds: float,
    keep_bodies: bool,
    warmup: int,
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
    measured_from: list[float] = []  # when the first counted request was sent

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
                if index == warmup:
                    measured_from.append(sent)
                streams[1].write(request)
                status, answer, close = await asyncio.wait_for(
                    _read_answer(streams[0]), ANSWER_TIMEOUT
                )
                if index >= warmup:
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
    result.seconds = time.perf_counter() - (measured_from[0] if measured_from else started)
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


def _tree(pid: int) -> list[int]:
    """Return `pid` and its descendants, from /proc."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            found.extend(_tree(int(child)))
    return found


def _status_kb(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field_name} in /proc/{pid}/status")
