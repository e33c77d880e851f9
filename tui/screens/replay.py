"""A recorded session in the lab: the same screen, with the keys that pause, step and seek.

Every figure on screen was measured when it was recorded. Nothing can be started or
signalled: the recording's capabilities say so, and the lab's keys for them answer why.
Seeking back rebuilds the session from its first event (what keeps a history, the output
and server logs, the CPU pane and the timeline, starts again empty and is fed up to that
moment).
"""

from __future__ import annotations

import time
from typing import ClassVar

from textual.binding import Binding, BindingType

from proclab.core.recording import Replay
from proclab.tui.screens.lab import LabScreen
from proclab.tui.screens.lab_keys import LAB_BINDINGS
from proclab.tui.widgets.line_list import LineList

TICK_S = 0.1  # how often playing moves the replay on
SEEK_S = 10.0

# Keys that go in pairs share one label in the footer: each with its own, the footer ran
# past 80 columns and cut off the last ("<" without what it does, ">" gone).
_SEEK = Binding.Group(f"±{SEEK_S:g}s", compact=True)
_ENDS = Binding.Group("Ends", compact=True)

REPLAY_BINDINGS: list[BindingType] = [
    # "Play": space pauses too (its tooltip says so); "Play/pause" and "Start/End" ran the
    # footer past 80 columns with the output pane's "f Only selected" in it.
    Binding("space", "play", "Play", tooltip="Pause or resume the replay"),
    Binding("full_stop", "step", "Step", tooltip="Pause, and move to the next recorded event"),
    Binding(
        "left_square_bracket",
        "seek(-1)",
        "-10s",
        tooltip=f"Back {SEEK_S:g} s in the recording",
        group=_SEEK,
    ),
    Binding(
        "right_square_bracket",
        "seek(1)",
        "+10s",
        tooltip=f"Forward {SEEK_S:g} s in the recording",
        group=_SEEK,
    ),
    # In the footer with the others: a replay's keys are few, and these two were missing.
    Binding("less_than_sign", "seek_to(0)", "Start", tooltip="Back to the start", group=_ENDS),
    Binding(
        "greater_than_sign",
        "seek_to(-1)",
        "End",
        tooltip="To the end of the recording",
        group=_ENDS,
    ),
]


class ReplayScreen(LabScreen):
    """The lab on a Replay, playing it."""

    EMPTY_TABLE = "No process at this moment of the recording: space plays, > goes to the end."
    BINDINGS: ClassVar[list[BindingType]] = [*REPLAY_BINDINGS, *LAB_BINDINGS]
    COMPACT_FOOTER = True  # its keys and the lab's, in 80 columns

    def __init__(self, replay: Replay, *, speed: float = 1.0, at: float = 0.0) -> None:
        super().__init__(replay, clock=replay.clock)
        self.replay = replay
        self.speed = speed
        self._start_at = at
        self.playing = False
        self._last_tick = 0.0

    def on_mount(self) -> None:
        # Runs before LabScreen.on_mount: the first events are handed out by the first tick.
        self.set_interval(TICK_S, self._tick)
        self.call_after_refresh(self._begin)

    def _begin(self) -> None:
        if self.replay.cut_line is not None:
            self.notify(
                f"The recording's last line ({self.replay.cut_line}) was cut off mid-way"
                " (its writing stopped there: proclab was killed, or the disk was full): the"
                " replay ends before it, each process as the recording last saw it.",
                severity="warning",
                markup=False,
            )
        if self._start_at:
            self.seek_to(self.replay.start + self._start_at)
        self._set_playing(True)

    def refuse(self, action: str) -> None:
        self.notify(
            "This is a recorded session (a replay is read-only): nothing can be started,"
            " signalled or changed. Space plays/pauses, . steps, [ ] seek.",
            severity="warning",
            timeout=4,
            markup=False,
        )

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
            self.update_status()

    def _going(self) -> bool:
        """The app is on its way out (the panes may be gone already)."""
        return self.closing or not self.query("#status")

    def _set_playing(self, playing: bool) -> None:
        at_end = self.replay.now >= self.replay.end
        self.playing = playing and not at_end
        self._last_tick = time.monotonic()
        rate = "" if self.speed == 1 else f" {self.speed:g}x"
        self.replay.state_label = (
            f"▶ playing{rate}" if self.playing else "■ end" if at_end else "‖ paused"
        )
        if not self._going():
            self.update_status()

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
        self.refresh_rows()

    def _forget_history(self) -> None:
        """Seeking back: the replay hands out every event again from its first one."""
        from proclab.tui.app import ProclabApp

        if isinstance(self.app, ProclabApp):  # what it queued and did not draw yet goes
            self.app.forget_pending()
        self.output_log.reset()
        self.cpu_pane.reset()
        self.timeline.clear()
        self.calls.clear()
        self.query_one("#server-log", LineList).clear()
