"""AWS for the sandbox: moto's threaded server, with CloudWatch log lines seeded for the demo."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

SANDBOX_REGION = "us-east-1"
# moto accepts any credentials; these keep boto3 from searching the machine for real ones.
SANDBOX_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def start_moto(host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadedMotoServer, str]:
    """Start moto's server on a thread; return it and its endpoint URL."""
    # moto's werkzeug server logs every request line; the sandbox keeps its output readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def logs_client(endpoint_url: str) -> Any:
    """Return a CloudWatch Logs client bound to the sandbox endpoint."""
    return boto3.client(
        "logs",
        region_name=SANDBOX_REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id=SANDBOX_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SANDBOX_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def seed_log_lines(
    endpoint_url: str,
    group: str,
    stream: str,
    lines: Sequence[tuple[datetime, str]],
) -> None:
    """Create the group and stream if needed and write the lines (time, message) to it."""
    client = logs_client(endpoint_url)
    groups = client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    if not any(found["logGroupName"] == group for found in groups):
        client.create_log_group(logGroupName=group)
    streams = client.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)
    if not any(found["logStreamName"] == stream for found in streams["logStreams"]):
        client.create_log_stream(logGroupName=group, logStreamName=stream)
    events = [
        {"timestamp": int(moment.timestamp() * 1000), "message": message}
        for moment, message in sorted(lines)
    ]
    if events:
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def demo_log_lines(model_id: str, version: str, around: datetime) -> list[tuple[datetime, str]]:
    """Return a few minutes of gateway logs in which the vector store times out for one model."""
    lines: list[tuple[datetime, str]] = []
    for i in range(24):
        moment = around - timedelta(minutes=12) + timedelta(seconds=30 * i)
        request = {
            "model": model_id,
            "version": version,
            "path": "/v1/chat",
            "request": f"r-{i:04d}",
        }
        if i % 3 == 0:
            record = dict(
                request,
                level="ERROR",
                latency_ms=3100 + i,
                msg="retrieval failed: vector store query timed out after 3000 ms",
            )
        elif i % 5 == 0:
            record = dict(
                request, level="ERROR", latency_ms=120, msg="upstream 503 from embeddings service"
            )
        else:
            record = dict(request, level="INFO", latency_ms=900 + 7 * i, msg="completed")
        lines.append((moment, json.dumps(record)))
    lines.append(
        (
            around - timedelta(minutes=3),
            json.dumps(
                {"model": "other-bot", "version": "1", "level": "ERROR", "msg": "unrelated failure"}
            ),
        )
    )
    return lines
