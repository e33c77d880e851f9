"""`proclab replay FILE.jsonl`: a recorded session (`--record`) shown in the app, with
pause, step and seek (tui/screens/replay.py). Textual is imported only once the recording
has been read.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from proclab.core.errors import ProclabError
from proclab.core.recording import Replay
from proclab.tui.commands.options import positive_float, say_if_fifo, seconds_from_start
from proclab.tui.terminal import NO_TERMINAL, has_keyboard, private_terminal

if TYPE_CHECKING:
    from proclab.tui.app import ProclabApp

HELP = "show a session recorded with --record in the app: pause, step, seek"
DESCRIPTION = (
    "Show a recorded session (--record FILE.jsonl) in the app, read-only: space"
    " pauses and resumes, . steps to the next event, [ and ] seek 10 s, < and > jump to the"
    " start and the end."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.jsonl", help="a recording made with --record")
    parser.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        metavar="X",
        help="play X times as fast as recorded (default 1)",
    )
    parser.add_argument(
        "--at",
        type=seconds_from_start,
        default=0.0,
        metavar="S",
        help="start S seconds into the recording (default 0)",
    )


def replay_app(replay: Replay, *, speed: float = 1.0, at: float = 0.0) -> ProclabApp:
    """The app on a recording: the lab screen that plays it."""
    from proclab.tui.app import ProclabApp
    from proclab.tui.screens.replay import ReplayScreen

    screen = ReplayScreen(replay, speed=speed, at=at)
    return ProclabApp(replay, refresh=replay.sample_interval, lab=screen)


def run(ns: argparse.Namespace) -> int:
    say_if_fifo("replay", ns.file)
    try:
        replay = Replay.load(ns.file)
    except ProclabError as exc:
        print(f"proclab replay: {exc}", file=sys.stderr)
        return 2
    if not has_keyboard():
        print(f"proclab replay: {NO_TERMINAL} (over ssh: ssh -t)", file=sys.stderr)
        return 2
    app = replay_app(replay, speed=ns.speed, at=ns.at)
    with private_terminal():  # as every app command: the terminal is the app's alone
        app.run()
    return app.return_code or 0
