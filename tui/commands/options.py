"""Options more than one command takes, and the argument types they check with.

Cheap to import (no controller, no textual): every command's module imports it to declare
its options, and `proclab --help` builds the app's from it.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys

from proclab.core.defaults import (
    DEFAULT_GRACE_S,
    DEFAULT_INTERVAL_S,
    DEFAULT_MAX_PROCS,
    DEFAULT_METHOD,
    METHODS,
    MIN_INTERVAL_S,
    SERVER_HOST,
    SERVER_IDLE_S,
    SERVER_LIFETIME_S,
    SERVER_MAX_CLIENTS,
    SERVER_MODE,
    SERVER_MODES,
    SERVER_PORT,
    SERVER_WORKERS,
)
from proclab.core.errors import clipped
from proclab.core.model import ProcessSpec
from proclab.core.spec import build_spec
from proclab.core.typed import N, ascii_number


def _read(text: str, kind: type[N], what: str) -> N:
    """`text` as `kind` (core.typed: ASCII digits), said back cut short if it is not one
    (a 5,000-digit --count made a 5,088-character error)."""
    try:
        return ascii_number(text, kind)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{clipped(text)!r} is not {what}") from None


def positive_int(text: str) -> int:
    value = _read(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {clipped(str(value))}")
    return value


# The largest seconds (or speed factor) an option takes: 11 days. Past about 25 days a
# timeout no longer fits the clocks it is given to (epoll's milliseconds, a lock's wait):
# `--grace inf` ended `proclab run` in an OverflowError traceback.
LARGEST = 1_000_000


def positive_float(text: str) -> float:
    value = _read(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {clipped(text)}")
    if not value <= LARGEST:  # inf too
        raise argparse.ArgumentTypeError(f"must be at most {LARGEST:,}, got {clipped(text)}")
    return value


def refresh_seconds(text: str) -> float:
    """A sampling interval: at least MIN_INTERVAL_S."""
    value = positive_float(text)
    if value < MIN_INTERVAL_S:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_INTERVAL_S:g} (CPU time is counted in 10 ms ticks: a"
            f" shorter tick's CPU figures are mostly 0 or a jump), got {text}"
        )
    return value


def add_refresh_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--refresh",
        type=refresh_seconds,
        default=DEFAULT_INTERVAL_S,
        metavar="S",
        help=f"seconds between {what} (default {DEFAULT_INTERVAL_S:g}, at least {MIN_INTERVAL_S:g})",
    )


def seconds_from_start(text: str) -> float:
    """A moment into a recording: 0 or more seconds (nan and -5 were taken as 0)."""
    value = _read(text, float, "a number")
    if not 0 <= value <= LARGEST:  # nan and inf too
        raise argparse.ArgumentTypeError(f"must be from 0 to {LARGEST:,}, got {clipped(text)}")
    return value


def process_limit(text: str) -> int:
    """--max-procs: at most the processes the kernel can number (pid_max)."""
    value = positive_int(text)
    most = pid_max()
    if value > most:
        raise argparse.ArgumentTypeError(
            f"must be at most {most:,}, the kernel's pid_max, got {clipped(f'{value:,}')}"
        )
    return value


def pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 4_194_304  # the kernel's own ceiling for pid_max


def port(text: str, lowest: int = 0) -> int:
    value = _read(text, int, "a port number")
    if not lowest <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"{clipped(str(value))} is not a port number ({lowest}-65535)"
        )
    return value


def fixed_port(text: str) -> int:
    """A port to tell people about: 0 (any free one) is not allowed."""
    return port(text, lowest=1)


def add_spawn_arguments(parser: argparse.ArgumentParser, *, target_required: bool) -> None:
    """The options that describe children to start: shared by `run` and the app."""
    parser.add_argument(
        "target",
        nargs=None if target_required else "?",
        help="module:function or path/to/file.py:function (e.g. proclab.core.tasks:sleep)",
    )
    parser.add_argument(
        "--args", default="", metavar="LIT", help="positional args, a Python tuple literal: '(1,)'"
    )
    parser.add_argument(
        "--kwargs",
        default="",
        metavar="LIT",
        help="keyword args, a Python dict literal: \"{'name': 'jerry'}\"",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="process name (default: multiprocessing's, e.g. ForkServerProcess-1)",
    )
    parser.add_argument(
        "--count", type=positive_int, default=1, metavar="N", help="start N copies at once"
    )
    parser.add_argument("--daemon", action="store_true", help="start them as daemon processes")
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help=f"start method (default {DEFAULT_METHOD})",
    )
    parser.add_argument(
        "--affinity", default="", metavar="CPUS", help="pin to these CPUs, e.g. 0 or 0,2-3"
    )
    parser.add_argument(
        "--max-procs",
        type=process_limit,
        default=DEFAULT_MAX_PROCS,
        metavar="N",
        help=f"refuse to run more than N children at once (default {DEFAULT_MAX_PROCS})",
    )


def spec_from_arguments(ns: argparse.Namespace) -> ProcessSpec:
    """The checked spec for the options add_spawn_arguments defined; raises ProclabError."""
    return build_spec(
        ns.target,
        ns.args,
        ns.kwargs,
        name=ns.name,
        daemon=ns.daemon,
        method=ns.method,
        affinity=ns.affinity,
    )


def add_grace_argument(parser: argparse.ArgumentParser, whom: str = "when ending children") -> None:
    parser.add_argument(
        "--grace",
        type=positive_float,
        default=DEFAULT_GRACE_S,
        metavar="S",
        help=f"seconds between SIGTERM and SIGKILL {whom} (default {DEFAULT_GRACE_S:g})",
    )


def add_record_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--record",
        default=None,
        metavar="FILE.jsonl",
        help="write every event (spawns, state changes, exits, samples, calls, server events, output"
        " lines) to FILE as JSON lines; `proclab replay FILE` shows it again",
    )


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """How the app samples, ends children and records: the app's and the demo's."""
    add_refresh_argument(parser, "samples and redraws")
    add_grace_argument(parser)
    add_record_argument(parser)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=SERVER_HOST, help=f"address to listen on (default {SERVER_HOST})"
    )
    parser.add_argument(
        "--port",
        type=port,
        default=SERVER_PORT,
        help=f"port (default {SERVER_PORT}, as in the lesson; 0 picks a free one)",
    )
    parser.add_argument(
        "--mode",
        choices=SERVER_MODES,
        default=SERVER_MODE,
        help="process per connection (default), pre-started pool, or thread per connection",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,  # given or not: only pool mode has workers (config_from)
        metavar="N",
        help=f"pool mode: worker processes (default {SERVER_WORKERS})",
    )
    parser.add_argument(
        "--max-clients",
        type=positive_int,
        default=SERVER_MAX_CLIENTS,
        metavar="N",
        help=f"clients served at once; more get 'busy' (default {SERVER_MAX_CLIENTS})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=positive_float,
        default=SERVER_IDLE_S,
        metavar="S",
        help=f"close a connection idle this long (default {SERVER_IDLE_S:g})",
    )
    parser.add_argument(
        "--lifetime",
        type=positive_float,
        default=SERVER_LIFETIME_S,
        metavar="S",
        help=f"close any connection after this long (default {SERVER_LIFETIME_S:g})",
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=None,  # given or not: thread mode starts no process (config_from)
        help=f"start method of handler processes (default {DEFAULT_METHOD})",
    )
    parser.add_argument(
        "--public",
        action="store_true",
        help="allow a host other machines can reach (the server has no authentication)",
    )


def say_if_fifo(command: str, path: str, *, writing: bool = False) -> None:
    """A FIFO blocks its reader until something writes to it (its writer until something
    reads it): said, rather than a silence that looks like a hang."""
    try:
        fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    except (OSError, ValueError):  # missing, or a NUL in the name: its reader says so
        return
    if fifo:
        from proclab.core.output import escape_controls

        print(
            f"proclab {command}: {escape_controls(path, tabs=True)} is a FIFO: waiting for"
            f" something to {'read' if writing else 'write to'} it (Ctrl+C to stop)",
            file=sys.stderr,
            flush=True,
        )
