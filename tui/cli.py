"""The `proclab` command: the app, or one of its headless subcommands.

Imports stay lazy: `proclab run` must start fast and never import textual, and spawn
children re-import this module as their main module.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from proclab.core.defaults import (
    DEFAULT_GRACE_S,
    DEFAULT_INTERVAL_S,
    DEFAULT_MAX_PROCS,
    DEFAULT_METHOD,
    METHODS,
    SERVER_HOST,
    SERVER_IDLE_S,
    SERVER_LIFETIME_S,
    SERVER_MAX_CLIENTS,
    SERVER_MODE,
    SERVER_MODES,
    SERVER_PORT,
    SERVER_WORKERS,
)
from proclab.core.model import ProcessSpec
from proclab.core.spec import build_spec

# Each headless command and the module whose run(ns) carries it out, imported only when
# that command runs.
SUBCOMMANDS = {
    "run": "proclab.tui.commands.run",
    "serve": "proclab.tui.commands.serve",
    "client": "proclab.tui.commands.client",
    "screenshots": "proclab.tui.commands.screenshots",
    "schedule": "proclab.tui.commands.schedule",
    "replay": "proclab.tui.commands.replay",
    "web": "proclab.tui.commands.web",
    "experiment": "proclab.tui.commands.experiment",
    "demo": "proclab.tui.commands.demo",
}


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
        "--count", type=_positive_int, default=1, metavar="N", help="start N copies at once"
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
        type=_positive_int,
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def add_record_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--record",
        default=None,
        metavar="FILE.jsonl",
        help="write every event (spawns, state changes, exits, samples, server events, output"
        " lines) to FILE as JSON lines; `proclab replay FILE` shows it again",
    )


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=SERVER_HOST, help=f"address to listen on (default {SERVER_HOST})"
    )
    parser.add_argument(
        "--port",
        type=_port,
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
        type=_positive_int,
        default=SERVER_WORKERS,
        metavar="N",
        help=f"pool mode: worker processes (default {SERVER_WORKERS})",
    )
    parser.add_argument(
        "--max-clients",
        type=_positive_int,
        default=SERVER_MAX_CLIENTS,
        metavar="N",
        help=f"clients served at once; more get 'busy' (default {SERVER_MAX_CLIENTS})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_positive_float,
        default=SERVER_IDLE_S,
        metavar="S",
        help=f"close a connection idle this long (default {SERVER_IDLE_S:g})",
    )
    parser.add_argument(
        "--lifetime",
        type=_positive_float,
        default=SERVER_LIFETIME_S,
        metavar="S",
        help=f"close any connection after this long (default {SERVER_LIFETIME_S:g})",
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help=f"start method of handler processes (default {DEFAULT_METHOD})",
    )
    parser.add_argument(
        "--public",
        action="store_true",
        help="allow a host other machines can reach (the server has no authentication)",
    )


def _port(text: str, lowest: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not lowest <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number ({lowest}-65535)")
    return value


def fixed_port(text: str) -> int:
    """A port to tell people about: 0 (any free one) is not allowed."""
    return _port(text, lowest=1)


def build_app_parser() -> argparse.ArgumentParser:
    """`proclab [TARGET] [options]`: the interactive app, optionally starting children."""
    parser = argparse.ArgumentParser(
        prog="proclab",
        description="A terminal lab for operating-system processes and Python's multiprocessing."
        " With a TARGET, the app opens with those children already started."
        f" Headless commands: {', '.join(SUBCOMMANDS)} (proclab COMMAND --help).",
    )
    add_spawn_arguments(parser, target_required=False)
    parser.add_argument(
        "--serve",
        default=None,
        metavar="[HOST:]PORT",
        help="start the TCP echo server at launch (process per connection, --method's start method)",
    )
    add_app_arguments(parser)
    return parser


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """How the app samples, ends children and records: the app's and the demo's."""
    parser.add_argument(
        "--refresh",
        type=_positive_float,
        default=DEFAULT_INTERVAL_S,
        metavar="S",
        help=f"seconds between samples and redraws (default {DEFAULT_INTERVAL_S:g})",
    )
    parser.add_argument(
        "--grace",
        type=_positive_float,
        default=DEFAULT_GRACE_S,
        metavar="S",
        help=f"seconds between SIGTERM and SIGKILL when ending children (default {DEFAULT_GRACE_S:g})",
    )
    add_record_argument(parser)


def _command_module(command: str) -> ModuleType:
    """The module that carries out `command`. Importing one imports no textual (the
    simulator, textual-serve, the experiments load when their command runs)."""
    return importlib.import_module(SUBCOMMANDS[command])


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The headless commands' parser. With `command`, only that command's module is imported
    for its options: `proclab run` must not pay for the simulator or the web server."""

    def wanted(name: str) -> bool:
        return command is None or command == name

    parser = argparse.ArgumentParser(
        prog="proclab",
        description="A terminal lab for operating-system processes and Python's multiprocessing.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="start children, stream their output, join them, print a summary",
        description="Start N children of a Python function, stream their output, join them all"
        " and print how long they took: the lesson's 'start ten, join them, print the total time'.",
    )
    add_spawn_arguments(run, target_required=True)
    run.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        metavar="S",
        help="end the children still running after S seconds",
    )
    run.add_argument(
        "--grace",
        type=_positive_float,
        default=DEFAULT_GRACE_S,
        metavar="S",
        help=f"seconds between SIGTERM and SIGKILL when ending children (default {DEFAULT_GRACE_S:g})",
    )
    add_record_argument(run)
    serve = sub.add_parser(
        "serve",
        help="run the lesson's TCP echo server headless, logging every event",
        description="The lesson's concurrent TCP server, done right: echoes every byte upper-cased."
        " One log line (or JSON object) per event; Ctrl+C or SIGTERM stops it and ends every handler.",
    )
    add_server_arguments(serve)
    serve.add_argument("--json", action="store_true", help="one JSON object per event")
    serve.add_argument(
        "--log",
        choices=("all", "connections", "errors"),
        default="all",
        help="what to log: every chunk in and out (all, the default), connections only, or errors only (for load tests)",
    )
    serve.add_argument(
        "--max-procs",
        type=_positive_int,
        default=DEFAULT_MAX_PROCS,
        metavar="N",
        help=f"most children at once (default {DEFAULT_MAX_PROCS})",
    )
    serve.add_argument(
        "--grace",
        type=_positive_float,
        default=DEFAULT_GRACE_S,
        metavar="S",
        help=f"seconds between SIGTERM and SIGKILL for handlers (default {DEFAULT_GRACE_S:g})",
    )
    add_record_argument(serve)
    client = sub.add_parser(
        "client",
        help="a load generator for the echo server that checks every echo",
        description="C clients at once, N connections in all, M messages of B random bytes each;"
        " every echo is checked; prints conn/s, messages/s, p50/p99 latency and errors.",
    )
    client.add_argument("--host", default=SERVER_HOST)
    client.add_argument("--port", type=_port, default=SERVER_PORT)
    client.add_argument(
        "--clients", type=_positive_int, default=8, metavar="C", help="clients at once (default 8)"
    )
    client.add_argument(
        "--connections",
        type=_positive_int,
        default=None,
        metavar="N",
        help="connections in all (default: one per client)",
    )
    client.add_argument(
        "--messages",
        type=_positive_int,
        default=10,
        metavar="M",
        help="messages per connection (default 10)",
    )
    client.add_argument(
        "--size",
        type=_positive_int,
        default=64,
        metavar="B",
        help="bytes per message, at most 16 MiB (default 64)",
    )
    client.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="seconds one exchange may take: connecting, or sending a message while reading"
        " its whole echo (default 10)",
    )
    client.add_argument("--json", action="store_true", help="print the results as one JSON object")
    shots = sub.add_parser(
        "screenshots",
        help="regenerate the README's SVGs from the recorded scene",
        description="Regenerate every SVG in screenshots/ by replaying a recorded session (frozen clock,"
        " fixed sizes): the same recording always gives the same pictures.",
    )
    shots.add_argument(
        "--out",
        default="screenshots",
        metavar="DIR",
        help="where the SVGs go (default screenshots/)",
    )
    shots.add_argument(
        "--scene",
        default=None,
        metavar="FILE",
        help="the recording to replay (default: the repository's screenshots/scene.jsonl;"
        " with --record-scene, DIR/scene.jsonl)",
    )
    shots.add_argument(
        "--record-scene",
        action="store_true",
        help="first record the scene again, with real children",
    )
    shots.add_argument(
        "--seconds",
        type=_positive_float,
        default=8.0,
        metavar="S",
        help="length of a new recording (default 8)",
    )
    schedule = sub.add_parser(
        "schedule",
        help="simulate CPU scheduling (FCFS, SJF, SRTF, RR, priority, MLFQ) on jobs from a CSV"
        " file, or run them on the real kernel",
        description="Run FCFS, SJF, SRTF, round robin, priority or MLFQ on the jobs in JOBS.csv"
        " (header name,arrival,burst[,priority]) and print the Gantt chart and each job's"
        " start, completion, turnaround, waiting and response times; --algo all compares them."
        " --real runs the jobs as real processes under SCHED_FIFO, SCHED_RR or SCHED_OTHER"
        " and prints the measured chart beside the simulation.",
    )
    if wanted("schedule"):
        _command_module("schedule").add_arguments(schedule)
    replay = sub.add_parser(
        "replay",
        help="show a session recorded with --record in the app: pause, step, seek",
        description="Show a recorded session (--record FILE.jsonl) in the app, read-only: space"
        " pauses and resumes, . steps to the next event, [ and ] seek 10 s, < and > jump to the"
        " start and the end.",
    )
    replay.add_argument("file", metavar="FILE.jsonl", help="a recording made with --record")
    replay.add_argument(
        "--speed",
        type=_positive_float,
        default=1.0,
        metavar="X",
        help="play X times as fast as recorded (default 1)",
    )
    replay.add_argument(
        "--at",
        type=float,
        default=0.0,
        metavar="S",
        help="start S seconds into the recording (default 0)",
    )
    web = sub.add_parser(
        "web",
        help="serve the app to a web browser (textual-serve)",
        description="Serve the app through textual-serve: every browser tab that opens the page"
        " gets its own proclab, which ends its children when the tab closes. Options after --"
        " are the app's (e.g. -- proclab.core.tasks:sleep --args '(5,)' --count 3).",
    )
    if wanted("web"):
        _command_module("web").add_arguments(web)
    experiment = sub.add_parser(
        "experiment",
        help="measure now: parallel vs serial, start-method latency, CPU- vs I/O-bound speed-up",
        description="Run one experiment with real processes and print its result table and chart"
        " (or --json); --csv FILE also writes it as CSV.",
    )
    if wanted("experiment"):
        _command_module("experiment").add_arguments(experiment)
    demo = sub.add_parser(
        "demo",
        help="play a scripted scenario in the app, paced for a recording",
        description="Play SCENARIO.toml (default: the built-in lesson, about 75 s) in the real"
        " app: any key pauses and resumes, q ends it and leaves nothing running. The built-in"
        " scenario is proclab/core/scenarios/lesson.toml: copy it and change it.",
    )
    demo.add_argument(
        "scenario", nargs="?", default=None, metavar="SCENARIO.toml", help="the steps to play"
    )
    demo.add_argument(
        "--speed",
        type=_positive_float,
        default=1.0,
        metavar="X",
        help="play X times as fast (every wait divided by X; default 1)",
    )
    add_app_arguments(demo)
    demo.set_defaults(method=DEFAULT_METHOD, max_procs=DEFAULT_MAX_PROCS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from proclab.core.methods import forget_main_script

    if argv is None:  # the `proclab` command itself, not a caller in its own process
        from proclab.core.family import claim_process

        claim_process()
    argv = list(sys.argv[1:] if argv is None else argv)
    forget_main_script()
    from proclab.tui.closed_output import CLOSED_STATUS, guard_output

    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    with guard_output("proclab" if command is None else f"proclab {command}") as closed:
        if command is None:
            from proclab.tui.commands.app import run_app

            status = run_app(build_app_parser().parse_args(argv))
        else:
            ns = build_parser(command).parse_args(argv)
            status = _command_module(command).run(ns)
    return CLOSED_STATUS if closed() else status


if __name__ == "__main__":
    sys.exit(main())
