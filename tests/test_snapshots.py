"""SVG snapshots of the app with a fake controller and a frozen clock (pytest-textual-
snapshot). Regenerate after an intended change with `pytest --snapshot-update`, then look
at the SVGs (tests/__snapshots__/) before committing them."""

from __future__ import annotations

import pytest
from fakes import NOW, FakeController, watched_calls, watched_output, watched_rows
from support import wait_for

from proclab.tui.app import ProclabApp
from proclab.tui.commands.screenshots import steady_cursors

pytestmark = pytest.mark.once  # a fake controller: drawing only, no child process

SIZES = [(80, 24), (160, 48)]


def make_app(cores: int = 2) -> tuple[ProclabApp, FakeController]:
    fake = FakeController(cores=cores)
    return ProclabApp(fake, clock=lambda: NOW), fake


async def _loaded(pilot, fake: FakeController, *, select: int | None = None) -> None:
    fake.emit_history()
    # Until every event is drawn (a fixed pause missed some once under CI's load).
    await wait_for(pilot, lambda: not pilot.app.events_pending(), timeout=30)
    await pilot.pause(0.1)
    if select is not None:
        pilot.app.lab.table.select(select)
        await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_main_screen_mixed_states(snap_compare, size):
    app, fake = make_app()
    assert snap_compare(
        app, terminal_size=size, run_before=lambda pilot: _loaded(pilot, fake, select=6)
    )


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_spawn_form_errors(snap_compare, size):
    app, fake = make_app()

    async def fill(pilot):
        await _loaded(pilot, fake)
        await pilot.press("n")
        form = pilot.app.screen
        form.query_one("#kwargs").value = "{'name': 'jerry'}"
        form.query_one("#count").value = "0"
        form.query_one("#affinity").value = "9-"
        await pilot.press("ctrl+s")
        steady_cursors(form)  # the focused field's cursor, drawn whatever the blink's phase
        await pilot.pause()
        steady_cursors(pilot.app.screen)  # the focused field's cursor, drawn whatever the time
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=fill)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_help(snap_compare, size):
    app, fake = make_app()
    assert snap_compare(
        app, terminal_size=size, press=["question_mark"], run_before=lambda p: _loaded(p, fake)
    )


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_details_of_a_failed_child(snap_compare, size):
    app, fake = make_app()
    assert snap_compare(
        app, terminal_size=size, press=["i"], run_before=lambda p: _loaded(p, fake, select=6)
    )


@pytest.mark.parametrize(
    ("pane", "cores"),
    [("2", 2), ("3", 2), ("3", 64)],
    ids=["output", "cpu-2-cores", "cpu-64-cores"],
)
def test_narrow_panes(snap_compare, pane, cores):
    app, fake = make_app(cores)
    assert snap_compare(
        app, terminal_size=(80, 24), press=[pane], run_before=lambda p: _loaded(p, fake, select=4)
    )


def test_64_cores_wide(snap_compare):
    app, fake = make_app(64)
    assert snap_compare(app, terminal_size=(160, 48), run_before=lambda p: _loaded(p, fake))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_empty_first_screen(snap_compare, size):
    fake = FakeController([])
    assert snap_compare(ProclabApp(fake, clock=lambda: NOW), terminal_size=size)


def test_sort_picker(snap_compare):
    app, fake = make_app()
    assert snap_compare(
        app,
        terminal_size=(80, 24),
        press=["f6", "c", "p", "u"],
        run_before=lambda p: _loaded(p, fake),
    )


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_watched_program_tree(snap_compare, size):
    """proclab watch's table: a program's processes as a tree, their names, an exit status
    only a parent read; the log: their lines under their pids, the calls among them."""
    app, fake = watched_app()
    assert snap_compare(
        app, terminal_size=size, run_before=lambda pilot: _loaded(pilot, fake, select=3)
    )


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_details_of_a_watched_child(snap_compare, size):
    """A multiprocessing child's details: its call, its parent's calls as a timeline."""
    app, fake = watched_app()

    async def open_details(pilot) -> None:
        await _loaded(pilot, fake, select=3)
        await pilot.press("i")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=open_details)


def watched_app() -> tuple[ProclabApp, FakeController]:
    rows = watched_rows()
    fake = FakeController(rows, output=watched_output(rows), calls=watched_calls())
    return ProclabApp(fake, clock=lambda: NOW), fake
