"""The `proclab` command: the app, or one of its headless subcommands.

Imports stay lazy: `proclab run` must start fast and never import textual, and spawn
children re-import this module as their main module. Each command's module
(tui/commands/NAME.py) declares its options (`add_arguments`) and carries them out
(`run`); it is imported only when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NamedTuple, NoReturn


class Command(NamedTuple):
    module: str  # its HELP, DESCRIPTION, add_arguments(parser) and run(ns)
    help: str  # the module's HELP, here so that listing the commands imports none


COMMANDS = {
    "run": Command(
        "proclab.tui.commands.run",
        "start children, stream their output, join them, print a summary",
    ),
    "serve": Command(
        "proclab.tui.commands.serve",
        "run the lesson's TCP echo server headless, logging every event",
    ),
    "client": Command(
        "proclab.tui.commands.client",
        "a load generator for the echo server that checks every echo",
    ),
    "screenshots": Command(
        "proclab.tui.commands.screenshots",
        "regenerate the README's SVGs from the recorded scene",
    ),
    "schedule": Command(
        "proclab.tui.commands.schedule",
        "simulate CPU scheduling (FCFS, SJF, SRTF, RR, priority, MLFQ) on jobs from a CSV"
        " file, or run them on the real kernel",
    ),
    "replay": Command(
        "proclab.tui.commands.replay",
        "show a session recorded with --record in the app: pause, step, seek",
    ),
    "web": Command(
        "proclab.tui.commands.web",
        "serve the app to a web browser (textual-serve)",
    ),
    "experiment": Command(
        "proclab.tui.commands.experiment",
        "measure now: parallel vs serial, start-method latency, CPU- vs I/O-bound speed-up",
    ),
    "demo": Command(
        "proclab.tui.commands.demo",
        "play a scripted scenario in the app, paced for a recording",
    ),
    "watch": Command(
        "proclab.tui.commands.watch",
        "run your own program as it is and watch every process it starts",
    ),
    "attach": Command(
        "proclab.tui.commands.attach",
        "watch a process that already runs, and its descendants; quitting leaves them running",
    ),
}

# Commands that start processes in the current folder (None: the app).
STARTS_PROCESSES = (None, "run", "serve", "watch", "experiment", "demo", "web", "schedule")

DESCRIPTION = "A terminal lab for operating-system processes and Python's multiprocessing."


class _Parser(argparse.ArgumentParser):
    """A wrong option is said in one line, with where to read the rest: argparse put its
    usage above it, five lines for the app's options. Escaped: argparse quotes what was
    typed, and an escape sequence in it reached the terminal."""

    commands: dict[str, _Parser]  # the headless commands' own parsers

    def error(self, message: str) -> NoReturn:
        from proclab.core.output import escape_controls

        said = escape_controls(message, tabs=True)
        self.exit(2, f"{self.prog}: error: {said} (see {self.prog} --help)\n")


def build_app_parser() -> argparse.ArgumentParser:
    """`proclab [TARGET] [options]`: the interactive app, optionally starting children."""
    from proclab.tui.commands.options import add_app_arguments, add_spawn_arguments

    parser = _Parser(
        prog="proclab",
        description=f"{DESCRIPTION} With a TARGET, the app opens with those children already"
        f" started. Headless commands: {', '.join(COMMANDS)} (proclab COMMAND --help).",
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


def command_module(name: str) -> ModuleType:
    """The module that carries out command `name`."""
    return importlib.import_module(COMMANDS[name].module)


def build_parser(command: str | None = None) -> _Parser:
    """The headless commands' parser. With `command`, only that command's module is imported
    for its options: `proclab run` must not pay for the simulator or the web server."""
    parser = _Parser(prog="proclab", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = sub.choices
    for name, entry in COMMANDS.items():
        command_parser = sub.add_parser(name, help=entry.help)
        if command in (None, name):
            module = command_module(name)
            command_parser.description = module.DESCRIPTION
            module.add_arguments(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Ctrl+C where a command had nothing of its own to end (its imports, schedule
        # reading a FIFO, a check before anything started): a traceback would say
        # nothing more.
        return 130  # 128 + SIGINT, as a shell says


def _main(argv: Sequence[str] | None) -> int:
    from proclab.core.methods import forget_main_script

    if argv is None:  # the `proclab` command itself, not a caller in its own process
        from proclab.core.family import claim_process

        claim_process()
    argv = list(sys.argv[1:] if argv is None else argv)
    forget_main_script()
    from proclab.tui.closed_output import guard_output, reopen_missing

    command = argv[0] if argv and argv[0] in COMMANDS else None
    if "stdout" in reopen_missing():
        # What a command shows is its point: nothing is started for no one to read.
        print(
            f"proclab{f' {command}' if command else ''}: stdout is closed; send it to"
            " /dev/null to run without it",
            file=sys.stderr,
        )
        return 2
    try:
        if command in STARTS_PROCESSES:
            os.getcwd()
    except OSError as exc:  # deleted under the shell (every target, every child starts there)
        print(
            f"proclab{f' {command}' if command else ''}: the current folder cannot be read"
            f" ({exc.strerror}); cd to one that exists",
            file=sys.stderr,
        )
        return 2
    with guard_output("proclab" if command is None else f"proclab {command}") as failed:
        try:
            status = _command(command, argv)
        except SystemExit as exc:  # argparse, after --help or a usage error
            # `--help > /dev/full` printed nothing: its status must say so, not 0.
            if isinstance(exc.code, str):  # said as Python says it: on stderr, status 1
                print(exc.code, file=sys.stderr)
            status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return failed() or status


def _command(command: str | None, argv: list[str]) -> int:
    if command is None:
        from proclab.tui.commands.app import run_app

        return run_app(build_app_parser().parse_args(argv))
    parser = build_parser(command)
    ns, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's parser: `proclab run: ... (see proclab run --help)`
        parser.commands[command].error(f"unrecognized arguments: {' '.join(extra)}")
    return command_module(command).run(ns)


if __name__ == "__main__":
    sys.exit(main())
