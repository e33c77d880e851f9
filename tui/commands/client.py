"""`proclab client`: a load generator for the echo server that checks every echo."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from proclab.core.defaults import SERVER_HOST, SERVER_PORT
from proclab.core.errors import ProclabError
from proclab.core.server.echo_client import check_load, run_load
from proclab.core.server.hosts import host_problem
from proclab.core.words import plural
from proclab.tui.commands.options import port, positive_float, positive_int

HELP = "a load generator for the echo server that checks every echo"
DESCRIPTION = (
    "C clients at once, N connections in all, M messages of B random bytes each;"
    " every echo is checked; prints conn/s, messages/s, p50/p99 latency and errors."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=SERVER_HOST, help=f"the server's address (default {SERVER_HOST})"
    )
    parser.add_argument(
        "--port", type=port, default=SERVER_PORT, help=f"the server's port (default {SERVER_PORT})"
    )
    parser.add_argument(
        "--clients", type=positive_int, default=8, metavar="C", help="clients at once (default 8)"
    )
    parser.add_argument(
        "--connections",
        type=positive_int,
        default=None,
        metavar="N",
        help="connections in all (default: one per client)",
    )
    parser.add_argument(
        "--messages",
        type=positive_int,
        default=10,
        metavar="M",
        help="messages per connection (default 10)",
    )
    parser.add_argument(
        "--size",
        type=positive_int,
        default=64,
        metavar="B",
        help="bytes per message, at most 16 MiB (default 64)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="seconds one exchange may take: connecting, or sending a message while reading"
        " its whole echo (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def run(ns: argparse.Namespace) -> int:
    try:
        check_load(ns.clients, ns.size, ns.connections, ns.messages)
        problem = host_problem(ns.host)
        if problem is not None:
            raise ProclabError(problem)
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
    # Not one connection made: the one line below says why, and a summary of zeros would
    # say nothing more.
    unreachable = (
        bool(result.errors)
        and all(e.startswith("connect:") for e in result.errors)
        and not result.connections
    )
    if ns.json:
        print(json.dumps(summary))
    elif not unreachable:
        print(
            f"{plural(result.connections, 'connection')}, {plural(result.messages, 'message')}"
            f" of {ns.size} B"
            f" in {summary['elapsed_s']} s: {summary['conn_per_s']} conn/s, {summary['msg_per_s']} messages/s"
        )
        if result.latencies:
            print(
                f"latency per message: p50 {summary['latency_p50_ms']} ms, p99 {summary['latency_p99_ms']} ms"
            )
        if result.busy:
            print(f"{result.busy} turned away with 'busy'")
        print(
            plural(result.error_count, "error")
            + (": " + "; ".join(result.errors[:3]) if result.errors else "")
        )
        if result.not_made:
            print(f"{plural(result.not_made, 'connection')} not made: the load stopped there")
    if unreachable:
        unknown = all("gaierror" in e for e in result.errors)  # the name did not resolve
        # Out of fds (ulimit -n below --clients) is the client's own limit, not the server.
        no_fds = sum("Too many open files" in e for e in result.errors)
        timed_out = all("TimeoutError" in e for e in result.errors)
        host = ns.host or repr(ns.host)  # an empty --host said as one
        if unknown:
            why = f"no address for {host}"
        elif timed_out:  # not "is the server running?" of one that answers too slowly
            why = f"no answer within --timeout {ns.timeout:g} s"
        elif no_fds == len(result.errors):
            why = "this process ran out of open files (ulimit -n): use fewer --clients"
        else:
            why = "is the server running?"
            if no_fds:
                why += f" ({no_fds} of the connects ran out of open files: ulimit -n)"
        print(f"proclab client: cannot connect to {host}:{ns.port}: {why}", file=sys.stderr)
        return 2
    # Every client turned away ("busy") exchanged nothing: not a success
    return 1 if result.errors or not result.connections else 0
