"""htop's habits: F9 kills, F10 quits, signals that end a process ask first, and a second
Ctrl+C at the quit question quits. Against the fake controller: what matters is which
command reaches it, and when."""

from __future__ import annotations

import pytest
from fakes import NOW, FakeController

from proclab.core.errors import ProclabError
from proclab.tui.app import ProclabApp
from proclab.tui.screens.dialogs import ConfirmScreen

pytestmark = pytest.mark.once

RUNNING = 2  # ForkProcess-3 in the fake's rows


def make_app() -> tuple[ProclabApp, FakeController]:
    fake = FakeController()
    return ProclabApp(fake, clock=lambda: NOW), fake


@pytest.mark.parametrize(("key", "command"), [("t", "terminate"), ("k", "kill"), ("f9", "kill")])
async def test_signals_that_end_a_process_ask_first(key: str, command: str) -> None:
    app, fake = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.lab.table.select(RUNNING)
        await pilot.press(key)
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen), f"{key} should ask first"
        assert "ForkProcess-3 (41002)" in str(app.screen.query_one(".question").render())
        await pilot.press("n")
        await pilot.pause()
        assert (command, RUNNING) not in fake.calls
        await pilot.press(key, "y")
        await pilot.pause()
        assert (command, RUNNING) in fake.calls


async def test_pause_does_not_ask_and_names_the_pid() -> None:
    app, fake = make_app()
    said: list[str] = []
    notify = app.notify

    def spy(message: str, **options: object) -> None:
        said.append(message)
        notify(message, **options)  # type: ignore[arg-type]

    app.notify = spy  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        app.lab.table.select(RUNNING)
        await pilot.press("p")
        await pilot.pause()
        assert ("pause", RUNNING) in fake.calls
        # (a toast lasts 3 s: on a loaded machine it could be gone before it was looked at)
        assert "SIGSTOP sent to ForkProcess-3 (41002)" in said


async def test_a_refused_pause_leaves_the_next_p_a_pause() -> None:
    """A pause the source refused was still taken as asked: the next p within 3 s sent
    SIGCONT to a running child, saying so (a reviewer's)."""
    app, fake = make_app()
    refusals = [ProclabError("ForkProcess-3 is still starting")]

    def pause(rec_id: int) -> None:
        if refusals:
            raise refusals.pop()
        fake.calls.append(("pause", rec_id))

    fake.pause = pause  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        app.lab.table.select(RUNNING)
        await pilot.press("p")
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        assert ("pause", RUNNING) in fake.calls and ("resume", RUNNING) not in fake.calls


@pytest.mark.parametrize(
    "keys", [("ctrl+c", "ctrl+c"), ("f10", "f10"), ("q", "q"), ("q", "ctrl+c")]
)
async def test_a_second_quit_key_at_the_quit_question_quits(keys: tuple[str, str]) -> None:
    app, fake = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(keys[0])
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen), "children run: quitting asks first"
        await pilot.press(keys[1])
        await pilot.pause(0.5)
    assert ("shutdown", fake.grace) in fake.calls
    assert app.return_code == 0


async def test_escape_clears_a_filter_after_enter_left_it_for_the_table() -> None:
    """Typed, then Enter: the table said "No process matches 'zzz' (Escape clears the
    filter)", and Escape there did nothing (only Escape in the box cleared it)."""
    app, fake = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        fake.emit_history()
        table = app.lab.table
        await pilot.pause()
        every = table.row_count
        assert every > 0
        await pilot.press("slash", *"zzz", "enter")
        await pilot.pause()
        assert table.has_focus and table.row_count == 0 and table.filter_text == "zzz"
        await pilot.press("escape")
        await pilot.pause()
        assert table.filter_text == "" and table.row_count == every
        assert not app.lab.query_one("#filter").display
