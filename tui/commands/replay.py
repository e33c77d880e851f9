"""`proclab replay FILE.jsonl`: a recorded session (`--record`) shown in the app, with
pause, step and seek. Every figure on screen was measured when it was recorded; nothing can
be started or signalled, and the keys that would say so.

Seeking back rebuilds the session from its first event (what keeps a history, the output
and server logs, the CPU pane and the timeline, starts again empty and is fed up to that
moment).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import ClassVar

from textual.binding import Binding, BindingType

from proclab.core.errors import ProclabError
from proclab.core.recording import Replay
from proclab.tui.app import ProclabApp
from proclab.tui.commands.options import positive_float
from proclab.tui.terminal import NO_TERMINAL, has_keyboard
from proclab.tui.widgets.line_list import LineList

HELP = "show a session recorded with --record in the app: pause, step, seek"
DESCRIPTION = (
    "Show a recorded session (--record FILE.jsonl) in the app, read-only: space"
    " pauses and resumes, . steps to the next event, [ and ] seek 10 s, < and > jump to the"
    " start and the end."
)
TICK_S = 0.1  # how often playing moves the replay on
SEEK_S = 10.0
READ_ONLY = ("spawn", "join", "join_timeout", "terminate", "kill", "pause", "rename", "restart")
READ_ONLY += ("clear", "server", "join_all")

REPLAY_BINDINGS: list[BindingType] = [
    Binding("space", "play", "Play/pause", tooltip="Pause or resume the replay"),
    Binding("full_stop", "step", "Step", tooltip="Pause, and move to the next recorded event"),
    Binding(
        "left_square_bracket", "seek(-1)", "-10s", tooltip=f"Back {SEEK_S:g} s in the recording"
    ),
    Binding(
        "right_square_bracket",
        "seek(1)",
        "+10s",
        tooltip=f"Forward {SEEK_S:g} s in the recording",
    ),
    Binding("less_than_sign", "seek_to(0)", "Start", show=False, tooltip="Back to the start"),
    Binding(
        "greater_than_sign", "seek_to(-1)", "End", show=False, tooltip="To the end of the recording"
    ),
]


def _hidden(binding: BindingType) -> BindingType:
    """The app's binding, kept (it answers that a replay is read-only) but not in the footer."""
    if isinstance(binding, Binding) and binding.action in READ_ONLY:
        return dataclasses.replace(binding, show=False)
    return binding


class ReplayApp(ProclabApp):
    """The app on a Replay instead of a controller."""

    EMPTY_TABLE = "No process at this moment of the recording: space plays, > goes to the end."

    BINDINGS: ClassVar[list[BindingType]] = [
        *REPLAY_BINDINGS,
        *(_hidden(b) for b in ProclabApp.BINDINGS),
    ]

    def __init__(self, replay: Replay, *, speed: float = 1.0, at: float = 0.0) -> None:
        super().__init__(replay, refresh=replay.sample_interval, clock=replay.clock)
        self.replay = replay
        self.speed = speed
        self._start_at = at
        self.playing = False
        self._last_tick = 0.0

    def on_mount(self) -> None:
        # Runs before ProclabApp.on_mount (subscribes the app): the first events are handed
        # out once it has, by the first tick.
        self.set_interval(TICK_S, self._tick)
        self.call_after_refresh(self._begin)

    def _begin(self) -> None:
        if self.replay.cut_line is not None:
            self.notify(
                f"The recording's last line ({self.replay.cut_line}) was cut off mid-way"
                " (proclab stopped while writing it): the replay ends before it.",
                severity="warning",
            )
        if self._start_at:
            self.seek_to(self.replay.start + self._start_at)
        self._set_playing(True)

    # Playing --------------------------------------------------------------------------------

    def _tick(self) -> None:
        if not self.playing or self._going():
            return
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        self.replay.play_to(self.replay.now + elapsed * self.speed)
        if self.replay.now >= self.replay.end:
            self._set_playing(False)
        else:
            self._update_status()

    def _going(self) -> bool:
        """The app is on its way out (its panes may be gone already)."""
        return self._exit or not self.screen_stack or not self.main.query("#status")

    def _set_playing(self, playing: bool) -> None:
        at_end = self.replay.now >= self.replay.end
        self.playing = playing and not at_end
        self._last_tick = time.monotonic()
        rate = "" if self.speed == 1 else f" {self.speed:g}x"
        self.replay.state_label = (
            f"▶ playing{rate}" if self.playing else "■ end" if at_end else "‖ paused"
        )
        if not self._going():
            self._update_status()

    def action_play(self) -> None:
        if not self.playing and self.replay.now >= self.replay.end:
            self.seek_to(self.replay.start)  # play again from the start
        self._set_playing(not self.playing)

    def action_step(self) -> None:
        self.replay.step()
        self._set_playing(False)

    def action_seek(self, direction: int) -> None:
        self.seek_to(self.replay.now + direction * SEEK_S)

    def action_seek_to(self, where: int) -> None:
        self.seek_to(self.replay.start if where == 0 else self.replay.end)

    def seek_to(self, wall: float) -> None:
        wall = max(self.replay.start, min(wall, self.replay.end))
        if wall < self.replay.now:
            self._forget_history()
        self.replay.play_to(wall)
        self._set_playing(self.playing)
        self._refresh_rows()

    def _forget_history(self) -> None:
        """Seeking back: the replay hands out every event again from its first one."""
        self._forget_pending()
        self.output_log.reset()
        self.cpu_pane.reset()
        self.timeline.clear()
        self.main.query_one("#server-log", LineList).clear()

    # Read-only ------------------------------------------------------------------------------

    def _read_only(self, *_args: object) -> None:
        self.notify(
            "This is a recorded session (a replay is read-only): nothing can be started,"
            " signalled or changed. Space plays/pauses, . steps, [ ] seek.",
            severity="warning",
            timeout=4,
        )


for _name in READ_ONLY:  # every control the live app has answers with the same notice
    setattr(ReplayApp, f"action_{_name}", ReplayApp._read_only)


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
        type=float,
        default=0.0,
        metavar="S",
        help="start S seconds into the recording (default 0)",
    )


def run(ns: argparse.Namespace) -> int:
    try:
        replay = Replay.load(ns.file)
    except ProclabError as exc:
        print(f"proclab replay: {exc}", file=sys.stderr)
        return 2
    if not has_keyboard():
        print(f"proclab replay: {NO_TERMINAL} (over ssh: ssh -t)", file=sys.stderr)
        return 2
    app = ReplayApp(replay, speed=ns.speed, at=ns.at)
    app.run()
    return app.return_code or 0
