"""`proclab demo [SCENARIO.toml]`: check the scenario, then play it in the app."""

from __future__ import annotations

import argparse
import sys

from proclab.core.defaults import DEFAULT_MAX_PROCS, DEFAULT_METHOD
from proclab.core.errors import ProclabError
from proclab.core.scenario import load_scenario
from proclab.tui.commands.app import run_in_terminal
from proclab.tui.commands.options import add_app_arguments, positive_float
from proclab.tui.terminal import NO_TERMINAL, has_keyboard

HELP = "play a scripted scenario in the app, paced for a recording"
DESCRIPTION = (
    "Play SCENARIO.toml (default: the built-in lesson, about 75 s) in the real"
    " app: any key pauses and resumes, q ends it and leaves nothing running. The built-in"
    " scenario is proclab/core/scenarios/lesson.toml: copy it and change it."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario", nargs="?", default=None, metavar="SCENARIO.toml", help="the steps to play"
    )
    parser.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        metavar="X",
        help="play X times as fast (every wait divided by X; default 1)",
    )
    add_app_arguments(parser)
    parser.set_defaults(method=DEFAULT_METHOD, max_procs=DEFAULT_MAX_PROCS)


def run(ns: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(ns.scenario)
    except ProclabError as exc:
        print(f"proclab demo: {exc}", file=sys.stderr)
        return 2
    if not has_keyboard():
        print(f"proclab demo: {NO_TERMINAL} (over ssh: ssh -t)", file=sys.stderr)
        return 2
    from proclab.tui.screens.demo import DemoApp  # textual only once the scenario is good

    return run_in_terminal(
        ns,
        lambda controller: DemoApp(
            controller, scenario, speed=ns.speed, refresh=ns.refresh, method=ns.method
        ),
    )
