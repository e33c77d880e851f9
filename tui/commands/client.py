"""`proclab client`: a load generator for the echo server that checks every echo."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from proclab.core.errors import ProclabError
from proclab.core.server.echo_client import check_load, run_load


def run(ns: argparse.Namespace) -> int:
    try:
        check_load(ns.clients, ns.size)
    except ProclabError as exc:
        print(f"proclab client: {exc}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(
            run_load(ns.host, ns.port, ns.clients, ns.messages, ns.size, ns.connections, ns.timeout)
        )
    except KeyboardInterrupt:
        return 130
    summary = result.summary()
    if ns.json:
        print(json.dumps(summary))
    else:
        print(
            f"{summary['connections']} connections, {summary['messages']} messages of {ns.size} B"
            f" in {summary['elapsed_s']} s: {summary['conn_per_s']} conn/s, {summary['msg_per_s']} messages/s"
        )
        if result.latencies:
            print(
                f"latency per message: p50 {summary['latency_p50_ms']} ms, p99 {summary['latency_p99_ms']} ms"
            )
        if result.busy:
            print(f"{result.busy} turned away with 'busy'")
        print(
            f"{len(result.errors)} errors"
            + (": " + "; ".join(result.errors[:3]) if result.errors else "")
        )
    if (
        result.errors
        and all(e.startswith("connect:") for e in result.errors)
        and not result.connections
    ):
        print(
            f"proclab client: cannot connect to {ns.host}:{ns.port}: is the server running?",
            file=sys.stderr,
        )
        return 2
    return 1 if result.errors else 0
