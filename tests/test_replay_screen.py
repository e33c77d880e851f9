"""A replay at 80x24 says where it is (paused or playing, and how far into how long) in its
status line, and its server pane never invites a person to press Start: a recording is
read-only. Drawing only, from the README's recorded scene."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import wait_for
from textual.geometry import Region

from proclab.core.recording import Replay
from proclab.tui.app import ProclabApp
from proclab.tui.commands.replay import replay_app

pytestmark = pytest.mark.once

SCENE = Path(__file__).resolve().parent.parent / "screenshots" / "scene.jsonl"


def status_line(app: ProclabApp) -> str:
    status = app.lab.query_one("#status")
    return status.render_lines(Region(0, 0, status.size.width, 1))[0].text


async def test_the_status_line_says_where_the_replay_is_at_80_columns() -> None:
    replay = Replay.load(SCENE)
    length = replay.end - replay.start
    app = replay_app(replay, at=2.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.lab.playing)
        await pilot.press("space")
        await wait_for(pilot, lambda: not app.lab.playing)
        line = status_line(app)
        assert "paused" in line and f"of {length:.1f} s" in line, line


@pytest.mark.parametrize("pane", ["1", "2", "3", "4"])
async def test_a_replays_footer_shows_every_key_at_80_columns(pane: str) -> None:
    """It ran past 80 columns: "<" shown without what it does, ">" and End gone (with the
    output pane's "f Only selected" in it too)."""
    app = replay_app(Replay.load(SCENE))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.lab.playing)
        await pilot.press(pane)
        await pilot.pause(0.3)
        footer = app.screen._compositor.render_strips()[-1].text
        for shown in ("space Play", ". Step", "[] ±10s", "<> Ends", "? Help", "^p palette"):
            assert shown in footer, footer


async def test_a_recorded_server_pane_is_read_only() -> None:
    app = replay_app(Replay.load(SCENE))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.lab.playing)
        await pilot.press("space", "less_than_sign", "4")  # paused, at the start
        await pilot.pause(0.3)
        pane = app.lab.query_one("#server-pane")
        assert not app.source.server.running
        text = str(pane.query_one("#server-status").render())
        assert "press Start" not in text and "recording" in text
        assert pane.query_one("#server-toggle").disabled
        # no fields and no Start drawn, greyed, as if there were a server to set up
        assert not any(row.display for row in pane.query(".server-row"))
        assert not pane.query_one("#server-toggle").region  # not on screen
        await pilot.press("space")  # play on: the recorded server starts listening
        await wait_for(pilot, lambda: app.source.server.running, timeout=20)
        await pilot.pause(0.3)
        text = str(pane.query_one("#server-status").render())
        assert "listening on" in text and pane.query_one("#server-toggle").disabled


async def test_a_replays_help_lists_only_the_keys_it_answers() -> None:
    """Its help listed n (spawn), k (kill), ^t (the server) and "q: ends every child
    first", all of which a recording refuses or does not do."""
    from proclab.tui.screens.help import HelpScreen

    app = replay_app(Replay.load(SCENE))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        keys = app.screen.query_one("#help-keys")
        width, height = keys.size
        text = "\n".join(s.text for s in keys.render_lines(Region(0, 0, width, height)))
        assert "Pause or resume the replay" in text and "Filter the table" in text
        for refused in ("Start processes", "Kill the selected", "TCP echo server", "Rename"):
            assert refused not in text, refused
        assert "ends every child" not in text and "Quit: ends no process" in text
