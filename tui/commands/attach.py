"""`proclab attach PID`: watch a process that already runs, and its descendants.

The same view as `proclab watch`, from /proc alone (no hook: the program was started
without it). Quitting leaves the tree running."""

from __future__ import annotations

import argparse

from proclab.core.errors import ProclabError
from proclab.core.watch.attach import AttachedTree, parse_pid
from proclab.tui.commands.watch import add_view_arguments, refuse, run_watched

HELP = "watch a process that already runs, and its descendants; quitting leaves them running"
DESCRIPTION = (
    "Watch process PID and every process below it, as proclab watch does, from /proc alone:"
    " multiprocessing's own children are told by their command lines, and no exit status is"
    " known (only a process's parent can read it). Signals reach any process of the tree;"
    " quitting leaves the tree running."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_view_arguments(parser)
    parser.add_argument("pid", metavar="PID", help="the process to watch")


def run(ns: argparse.Namespace) -> int:
    prog = "proclab attach"
    try:
        tree = AttachedTree(parse_pid(ns.pid), sample_interval=ns.refresh, grace=ns.grace)
    except ProclabError as exc:
        return refuse(prog, str(exc))
    return run_watched(tree, ns, prog)
