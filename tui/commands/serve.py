"""`proclab serve`: the echo server, headless, one log line (or JSON object) per event.
Ctrl+C or SIGTERM stops it: handlers are ended, none is left."""

from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time

from proclab.core.controller import Controller
from proclab.core.defaults import DEFAULT_MAX_PROCS, DEFAULT_METHOD, SERVER_WORKERS
from proclab.core.errors import ProclabError
from proclab.core.model import Event, Notice, ServerEvent
from proclab.core.output import escape_controls
from proclab.core.recording import encode, record_into
from proclab.core.server.tcp import ServerConfig, ServerError, describe_event
from proclab.tui.closed_output import write_whole
from proclab.tui.commands.options import (
    add_grace_argument,
    add_record_argument,
    add_server_arguments,
    process_limit,
)
from proclab.tui.commands.run import stop_signals

HELP = "run the lesson's TCP echo server headless, logging every event"
DESCRIPTION = (
    "The lesson's concurrent TCP server, done right: echoes every byte upper-cased."
    " One log line (or JSON object) per event; Ctrl+C or SIGTERM stops it and ends every handler."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument(
        "--log",
        choices=("all", "connections", "errors"),
        default="all",
        help="what to log: every chunk in and out (all, the default), connections only, or errors only (for load tests)",
    )
    parser.add_argument(
        "--max-procs",
        type=process_limit,
        default=DEFAULT_MAX_PROCS,
        metavar="N",
        help=f"most children at once (default {DEFAULT_MAX_PROCS})",
    )
    add_grace_argument(parser, "for handlers")
    add_record_argument(parser)


def config_from(ns: argparse.Namespace) -> ServerConfig:
    """The server asked for; ServerError for an option its mode would take and not use
    (`--mode thread --method spawn` ran threads, and said nothing)."""
    if ns.method is not None and ns.mode == "thread":
        raise ServerError("--method: thread mode starts no process; it is for process and pool")
    if ns.workers is not None and ns.mode != "pool":
        raise ServerError(f"--workers: {ns.mode} mode has no workers; it is for --mode pool")
    return ServerConfig(
        host=ns.host,
        port=ns.port,
        mode=ns.mode,
        workers=SERVER_WORKERS if ns.workers is None else ns.workers,
        max_clients=ns.max_clients,
        idle_timeout=ns.idle_timeout,
        lifetime=ns.lifetime,
        method=DEFAULT_METHOD if ns.method is None else ns.method,
        public=ns.public,
        log=ns.log,
    )


FLUSH_EVERY_S = 0.05  # a line reaches the console at most this long after its event


class Console:
    """stdout for a log that may run at thousands of lines a second (a pool under load):
    lines gather here and go out together, one write per FLUSH_EVERY_S, instead of one
    write (and one flush) per event. Measured: printing was a quarter of the server
    thread's time with --log all (benchmarks/tcp.py)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the lines gathered
        self._writing = threading.Lock()  # lines of two flushes never interleave
        self._lines: list[str] = []

    def add(self, line: str) -> None:
        """Never waits on stdout: the server's thread, reading every handler's events,
        calls it. Held while a flush wrote to a stalled stdout (a paused terminal, a pipe
        nobody read), it stopped reading them, and a stop then lost connections' lines."""
        with self._lock:
            self._lines.append(line)

    def flush(self) -> None:
        with self._writing:
            with self._lock:
                lines, self._lines = self._lines, []
            if lines:
                write_whole("\n".join(lines) + "\n")


def run(ns: argparse.Namespace) -> int:
    try:
        config = config_from(ns)  # before anything is made
    except ProclabError as exc:
        print(f"proclab serve: {exc}", file=sys.stderr)
        return 2
    console = Console()

    def show(event: Event) -> None:
        if isinstance(event, ServerEvent):
            line = (
                json.dumps({"type": "server", **encode(event)})
                if ns.json
                else _stamp(event.time) + escape_controls(describe_event(event))
            )
        elif isinstance(event, Notice):
            line = (
                json.dumps({"type": "notice", **encode(event)})
                if ns.json
                else _stamp(event.time) + f"proclab: {escape_controls(event.text)}"
            )
        else:
            return
        console.add(line)

    controller = Controller(max_procs=ns.max_procs, grace=ns.grace)
    try:
        stop_recording = record_into(controller, ns.record)
    except ProclabError as exc:
        print(f"proclab serve: {exc}", file=sys.stderr)
        return 2
    controller.subscribe(show)
    cut_short: str | None = None
    with stop_signals() as received:
        try:
            controller.start()
            try:
                controller.server.start(config)
            except ProclabError as exc:
                print(f"proclab serve: {exc}", file=sys.stderr)
                return 2
            while not received:
                time.sleep(FLUSH_EVERY_S)
                console.flush()
                if not controller.server.running:  # it stopped itself: its log says why
                    return 1
        finally:
            controller.close()  # stops the server: every handler is ended
            cut_short = stop_recording()
            console.flush()
            if cut_short is not None:
                print(f"proclab serve: {cut_short}", file=sys.stderr)
    return 0 if cut_short is None else 1  # as `run`: a script would go on to use half a file


def _stamp(wall: float) -> str:
    return _clock(int(wall)) + f".{int(wall % 1 * 1000):03d} "


@functools.lru_cache(maxsize=4)
def _clock(second: int) -> str:
    """HH:MM:SS, once per second rather than once per line (strftime and localtime were
    a seventh of the server thread's time under load)."""
    return time.strftime("%H:%M:%S", time.localtime(second))
