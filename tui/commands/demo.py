"""`proclab demo [SCENARIO.toml]`: check the scenario, then play it in the app."""

from __future__ import annotations

import argparse
import sys

from proclab.core.errors import ProclabError
from proclab.core.scenario import load_scenario
from proclab.tui.commands.app import run_in_terminal
from proclab.tui.terminal import NO_TERMINAL, has_keyboard


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
