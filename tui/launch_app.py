"""`proclab [TARGET ...]`: check the request, start the controller, run the app, and end
every child whatever way the app ends."""

from __future__ import annotations

import argparse
import sys

from proclab.core.controller import Controller
from proclab.core.errors import ProclabError
from proclab.core.model import ProcessSpec
from proclab.core.spec import build_spec
from proclab.tui.terminal import private_terminal


def run_app(ns: argparse.Namespace) -> int:
    startup: tuple[ProcessSpec, int] | None = None
    if ns.target:
        try:
            spec = build_spec(
                ns.target,
                ns.args,
                ns.kwargs,
                name=ns.name,
                daemon=ns.daemon,
                method=ns.method,
                affinity=ns.affinity,
            )
        except ProclabError as exc:
            print(f"proclab: {exc}", file=sys.stderr)
            return 2
        startup = (spec, ns.count)

    from proclab.tui.app import ProclabApp  # textual is imported only for the app

    controller = Controller(max_procs=ns.max_procs, sample_interval=ns.refresh, grace=ns.grace)
    with private_terminal():
        try:
            controller.start()
            app = ProclabApp(controller, refresh=ns.refresh, method=ns.method, startup=startup)
            app.run()
        finally:
            # Whatever ended the app (quit, a signal, an exception): no child survives it.
            controller.close()
    return app.return_code or 0
