"""The app driven as a person drives it (Textual's Pilot), against a real controller and
real child processes."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from dataclasses import replace
from typing import Any

import psutil
import pytest
from fakes import NOW, FakeController, mixed_rows
from support import TASKS, handlers, wait_for
from textual.app import App, ComposeResult
from textual.widgets import Static

from proclab.core import family, signals
from proclab.core.controller import Controller
from proclab.core.model import ProcState
from proclab.core.spec import build_spec
from proclab.tui.app import ProclabApp
from proclab.tui.screens.details import DetailsScreen
from proclab.tui.screens.dialogs import ConfirmScreen, PromptScreen
from proclab.tui.screens.help import HelpScreen
from proclab.tui.screens.spawn_form import SpawnScreen
from proclab.tui.widgets.process_table import ProcessTable
from proclab.tui.widgets.status_bar import StatusBar

SIZE = (120, 40)


@pytest.fixture
def live_controller():
    c = Controller(sample_interval=0.2, grace=0.5).start()
    yield c
    c.close()


def table(app: ProclabApp) -> ProcessTable:
    return app.lab.table


def cell(app: ProclabApp, rec_id: int, column: str) -> str:
    return table(app).cell_text(rec_id, column).strip()


async def spawn_from_form(
    pilot, target: str, args: str = "", kwargs: str = "", **fields: str
) -> None:
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SpawnScreen))
    await wait_for(pilot, lambda: pilot.app.screen.query("#spawn"))  # composed (slow under load)
    form = pilot.app.screen
    for field, value in {"target": target, "args": args, "kwargs": kwargs, **fields}.items():
        form.query_one(f"#{field}").value = value
    await pilot.press("ctrl+s")
    await pilot.pause()


async def test_greet_from_the_form_then_terminate(live_controller):
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await spawn_from_form(
            pilot,
            f"{TASKS}:greet",
            kwargs="{'name': 'jerry', 'age': 20, 'gender': 'male', 'seconds': 30}",
        )
        assert not isinstance(app.screen, SpawnScreen), "the form should close after a valid spawn"
        (row,) = live_controller.rows()
        await wait_for(pilot, lambda: cell(app, row.id, "pid") != "")
        pid = live_controller.row(row.id).pid
        assert cell(app, row.id, "pid") == str(pid)
        log = app.lab.output_log
        await wait_for(pilot, lambda: any("jerry 20 male" in line for line in log.lines_shown()))
        assert f"{row.name} {pid} jerry 20 male" in log.lines_shown()
        await pilot.press("t", "y")  # it asks first
        await wait_for(pilot, lambda: cell(app, row.id, "state") == "terminated")
        assert cell(app, row.id, "exit") == "-15 SIGTERM"


async def test_form_errors_show_beside_the_field_and_start_nothing(live_controller):
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await spawn_from_form(pilot, f"{TASKS}:greet", kwargs="{'name': 'jerry'}")
        form = app.screen
        assert isinstance(form, SpawnScreen)
        error = form.query_one("#error-args")
        assert "missing a required argument: 'age'" in str(error.render())
        assert form.query_one("#args").has_class("-invalid-field")
        form.query_one("#args").value = "(1"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "not a Python literal" in str(form.query_one("#error-args").render())
        form.query_one("#args").value = ""
        form.query_one("#count").value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "whole number" in str(form.query_one("#error-count").render())
        assert live_controller.rows() == ()
        await pilot.press("escape")
        assert not isinstance(app.screen, SpawnScreen)
        assert live_controller.rows() == ()


async def test_sort_and_filter_keep_the_cursor_on_the_same_process(live_controller):
    spec = build_spec(f"{TASKS}:sleep", "(30,)")
    ids = live_controller.spawn(spec, 3)
    live_controller.rename(ids[0], "c-zeta")
    live_controller.rename(ids[1], "a-alpha")
    live_controller.rename(ids[2], "b-beta")
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        t = table(app)
        await wait_for(pilot, lambda: t.row_count == 3)
        t.select(ids[2])  # b-beta
        await pilot.pause()
        assert t.selected_id == ids[2]
        order = lambda: [t.cell_text(i, "name") for i in t.order]  # noqa: E731
        assert order() == ["a-alpha", "b-beta", "c-zeta"]
        await pilot.press("S")  # reverse
        assert order() == ["c-zeta", "b-beta", "a-alpha"] and t.selected_id == ids[2]
        await pilot.press("s")  # next column: pid
        await pilot.pause(0.5)  # refreshes happen meanwhile
        assert t.selected_id == ids[2]
        await pilot.press("slash")
        await pilot.press(*"beta")
        await pilot.pause()
        assert order() == ["b-beta"] and t.selected_id == ids[2]
        await pilot.press("escape")
        await pilot.pause()
        assert t.row_count == 3 and t.selected_id == ids[2]


async def test_a_filter_follows_rows_that_swap_in_one_tick():
    """With a filter on, one row stops matching in the tick another starts: as many rows
    match as before, and no sort key changed, but they are other rows."""

    class TableApp(App[None]):
        def compose(self) -> ComposeResult:
            yield ProcessTable()

    rows = {r.id: r for r in mixed_rows()}
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        t = app.query_one(ProcessTable)
        t.set_filter("running", rows.values(), NOW)
        assert t.order == [2, 3]  # by name: ForkProcess-3, ForkServerProcess-4
        rows[1] = replace(rows[1], state=ProcState.RUNNING)  # process-2 wakes up
        rows[2] = replace(rows[2], state=ProcState.SLEEPING)  # ForkProcess-3 sleeps
        t.show(rows.values(), NOW + 1)
        await pilot.pause()
        assert t.order == [3, 1]
        assert [t.cell_text(i, "state") for i in t.order] == ["running", "running"]


async def test_keys_are_answered_while_a_join_waits(live_controller):
    # long enough that a slow CI start cannot end the child before the keys are pressed
    (rec_id,) = live_controller.spawn(build_spec(f"{TASKS}:sleep", "(60,)"))
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: table(app).row_count == 1)
        await pilot.press("j")
        await pilot.pause(0.1)
        assert app.lab.joining, "the join should be pending"
        await pilot.press("question_mark")
        # the help opened while the child still ran and the join still waited
        assert isinstance(app.screen, HelpScreen)
        assert app.lab.joining and live_controller.row(rec_id).state.is_live
        await pilot.press("escape")
        await pilot.press("down", "up")
        assert app.lab.joining and live_controller.row(rec_id).state.is_live
        live_controller.terminate(rec_id)
        await wait_for(pilot, lambda: not app.lab.joining, timeout=10)
        assert live_controller.row(rec_id).state is ProcState.TERMINATED


async def test_kill_asks_first_and_pause_resume(live_controller):
    (rec_id,) = live_controller.spawn(build_spec(f"{TASKS}:tick", "(100,)"))
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: cell(app, rec_id, "pid") != "")
        await wait_for(pilot, lambda: live_controller.output(rec_id))  # past its start-up
        await pilot.press("p")
        await wait_for(pilot, lambda: cell(app, rec_id, "state") == "stopped")
        await pilot.press("p")
        await wait_for(pilot, lambda: cell(app, rec_id, "state") != "stopped")
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause(0.3)
        assert live_controller.row(rec_id).state.is_live
        await pilot.press("k", "y")
        await wait_for(pilot, lambda: cell(app, rec_id, "state") == "killed")
        assert cell(app, rec_id, "exit") == "-9 SIGKILL"


async def test_pause_pressed_quickly_toggles_each_time(live_controller, monkeypatch):
    """Each p stops or continues the child: a second p pressed before the row showed the
    first's stop sent SIGSTOP again (the row's state is read once the signal has taken
    effect), and p p left the child stopped (8 times of 10, a tester's, under load: here
    the state is read half a second late, as a loaded machine can)."""
    read_now = signals.read_state_after_signal

    def read_late(*args: Any) -> None:
        timer = threading.Timer(0.5, read_now, args)
        timer.daemon = True
        timer.start()

    monkeypatch.setattr(signals, "read_state_after_signal", read_late)
    (rec_id,) = live_controller.spawn(build_spec(f"{TASKS}:tick", "(100,)"))
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live_controller.output(rec_id))  # past its start-up
        child = psutil.Process(live_controller.row(rec_id).pid)
        await pilot.press("p", "p")
        await pilot.pause(0.5)
        assert child.status() != psutil.STATUS_STOPPED
        await wait_for(pilot, lambda: cell(app, rec_id, "state") != "stopped")
        await pilot.press("p", "p", "p")
        await wait_for(pilot, lambda: cell(app, rec_id, "state") == "stopped")
        assert child.status() == psutil.STATUS_STOPPED


async def test_a_crashing_child_shows_failed_with_its_traceback(live_controller):
    (rec_id,) = live_controller.spawn(build_spec(f"{TASKS}:fail", kwargs="{'message': 'boom'}"))
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: cell(app, rec_id, "state") == "failed")
        log = app.lab.output_log
        await wait_for(
            pilot, lambda: any("RuntimeError: boom" in line for line in log.lines_shown())
        )
        await pilot.press("enter")
        assert isinstance(app.screen, DetailsScreen)
        await pilot.pause()
        facts = "\n".join(f"{label} {value}" for label, value in app.screen.facts)
        assert "exit code 1: RuntimeError: boom" in facts
        assert "fail(message='boom')" in facts
        traceback = str(app.screen.query_one("#details-traceback").render())
        assert traceback.startswith("Traceback (most recent call last):") and traceback.endswith(
            "RuntimeError: boom"
        )


async def test_rename_restart_and_clear(live_controller):
    (rec_id,) = live_controller.spawn(build_spec(f"{TASKS}:exit_with", "(0,)"))
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: cell(app, rec_id, "state") == "exited")
        await pilot.press("r")
        # A name past the limit is refused in the prompt, which keeps what was typed (it
        # closed, the text lost, the error a toast); an empty one too.
        app.screen.query_one("#answer").value = "x" * 201
        await pilot.press("enter")
        assert isinstance(app.screen, PromptScreen)
        assert "longer than 200 characters" in str(app.screen.query_one("#error").render())
        assert app.screen.query_one("#answer").value == "x" * 201
        app.screen.query_one("#answer").value = "renamed"
        await pilot.press("enter")
        await wait_for(pilot, lambda: cell(app, rec_id, "name") == "renamed")
        await pilot.press("R")
        await wait_for(pilot, lambda: table(app).row_count == 2)
        new = next(r for r in live_controller.rows() if r.id != rec_id)
        await wait_for(pilot, lambda: live_controller.row(new.id).state.is_over)
        await pilot.press("c")
        await wait_for(pilot, lambda: table(app).row_count == 0)


async def test_restart_pressed_ten_times_while_ending_starts_one_child(live_controller):
    """R on a child that ignores SIGTERM: it would take the grace period to end; the nine
    presses meanwhile are answered ("already restarting", said once) and start nothing."""
    live_controller.grace = 30.0
    (rec_id,) = live_controller.spawn(build_spec(f"{TASKS}:ignore_sigterm", "(30,)"))
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        # once it ignores SIGTERM (before that, a SIGTERM would end it at once)
        await wait_for(
            pilot, lambda: any("ignoring" in o.text for o in live_controller.output(rec_id))
        )
        for _ in range(10):
            await pilot.press("R")
        assert live_controller.row(rec_id).state.is_live  # still ending, all along
        live_controller.kill(rec_id)
        await wait_for(pilot, lambda: live_controller.row(rec_id).state.is_over)
        await wait_for(pilot, lambda: len(live_controller.rows()) >= 2)
        await pilot.pause(0.5)  # any further restart would have started by now
        rows = live_controller.rows()
        assert len(rows) == 2, [(r.name, r.state) for r in rows]
        messages = [n.message for n in app._notifications]
        # answered once: the same notice is not stacked while it is on screen
        assert sum("already restarting" in m for m in messages) == 1, messages
        (new,) = [r for r in rows if r.id != rec_id]
        live_controller.wait_started([new.id])
        live_controller.kill(new.id)


async def test_output_log_filters_to_the_selected_process(live_controller):
    ids = live_controller.spawn(build_spec(f"{TASKS}:tick", "(50,)"), 2)
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        log = app.lab.output_log
        await wait_for(pilot, lambda: all(live_controller.output(i) for i in ids))
        await wait_for(pilot, lambda: table(app).row_count == 2)
        table(app).select(ids[1])
        pid = live_controller.row(ids[1]).pid
        await pilot.press("2", "f")
        await pilot.pause(0.3)
        shown = log.lines_shown()
        assert shown and all(f" {pid} " in line for line in shown)
        # the footer says what f does now: it said "Only selected" while it was so
        assert app.screen.active_bindings["f"].binding.description == "All"
        await pilot.press("f")
        await pilot.pause(0.3)
        assert app.screen.active_bindings["f"].binding.description == "Only selected"
        assert {live_controller.row(i).pid for i in ids} <= {
            int(line.split()[1]) for line in log.lines_shown()
        }


async def test_quit_asks_then_ends_every_child(live_controller):
    ids = live_controller.spawn(build_spec(f"{TASKS}:ignore_sigterm", "(60,)"), 2)
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: all(live_controller.output(i) for i in ids))
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: not app.is_running, timeout=10)
    assert all(live_controller.row(i).state is ProcState.KILLED for i in ids)


async def test_quit_asks_while_a_process_a_child_started_runs_on(
    live_controller, tmp_path, monkeypatch
):
    """A grandchild printing on after its parent ended has no row: quitting ended it
    without a question (the header said 0 live), and said so only on the terminal after."""
    monkeypatch.setattr(family, "_claimed", True)  # this process is proclab, as its CLI says
    (tmp_path / "orphaning.py").write_text(
        "import os, time\n"
        "def run():\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
    )
    (rec_id,) = live_controller.spawn(build_spec("orphaning.py:run", cwd=str(tmp_path)))
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: cell(app, rec_id, "state") == "exited")
        await wait_for(pilot, lambda: bool(live_controller.strays()))
        (stray,) = live_controller.strays()
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        question = str(app.screen.query_one(".question").render())
        assert question.startswith("1 process that children started runs on, their parent ended.")
        await pilot.press("n")
        assert psutil.pid_exists(stray)
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: not app.is_running, timeout=10)
    assert not psutil.pid_exists(stray) or psutil.Process(stray).status() == "zombie"


async def test_quit_pressed_again_kills_at_once_whatever_the_grace():
    """With --grace 100000 and a child that ignores SIGTERM, no key and no SIGTERM to
    proclab could cut the wait short: only killing the child from outside did."""
    controller = Controller(sample_interval=0.2, grace=100_000).start()
    try:
        (stubborn,) = controller.spawn(build_spec(f"{TASKS}:ignore_sigterm", "(60,)"), 1)
        app = ProclabApp(controller, refresh=0.2)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: cell(app, stubborn, "pid") != "")
            await asyncio.sleep(0.5)  # its handler set: SIGTERM is ignored from now
            await pilot.press("q", "y")
            await wait_for(pilot, lambda: "100000 s" in shutdown_text(app))
            assert "q or Ctrl+C again: SIGKILL now" in shutdown_text(app)
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, timeout=10)
        assert controller.row(stubborn).state is ProcState.KILLED
    finally:
        controller.close()


def shutdown_text(app: ProclabApp) -> str:
    return " ".join(str(s.render()) for s in app.screen.query(Static))


async def test_quit_calls_a_paused_child_stopped_not_running(live_controller):
    """README: a stopped child is "stopped", never "still running"; the quit question
    said "1 child is still running" of a paused one."""
    paused, _ = live_controller.spawn(build_spec(f"{TASKS}:sleep", "(60,)"), 2)
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: cell(app, paused, "pid") != "")
        table(app).select(paused)
        await pilot.press("p")
        await wait_for(pilot, lambda: cell(app, paused, "state") == "stopped")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        question = str(app.screen.query_one(".question").render())
        assert question.startswith("1 child is still running and 1 is stopped (paused).")


async def test_quit_names_the_tcp_server_apart_from_the_children(live_controller):
    """With a pool of 2 running and one child, the question said "4 children are still
    running": the server and its workers read as children the user had started."""
    from proclab.core.server.tcp import ServerConfig

    live_controller.server.start(ServerConfig(port=0, mode="pool", workers=2, method="fork"))
    live_controller.spawn(build_spec(f"{TASKS}:sleep", "(60,)"), 1)
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(live_controller.rows()) == 4)
        await wait_for(pilot, lambda: all(r.pid for r in live_controller.rows()))
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        question = str(app.screen.query_one(".question").render())
        assert question.startswith(
            "The TCP server, with 2 processes of its own, is running; 1 child is still running."
        ), question


async def test_quit_asks_about_a_thread_server_and_its_open_connections(live_controller):
    """A thread server has no row: quitting with one running and a client connected
    said nothing and cut the client off, where a process server's quit asked first."""
    from proclab.core.server.tcp import ServerConfig

    address = live_controller.server.start(ServerConfig(port=0, mode="thread"))
    host, port = address.rsplit(":", 1)
    app = ProclabApp(live_controller, refresh=0.2)
    with socket.create_connection((host, int(port)), timeout=5) as client:
        client.sendall(b"hi")
        assert client.recv(16) == b"HI"
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("q")
            assert isinstance(app.screen, ConfirmScreen)
            question = str(app.screen.query_one(".question").render())
            assert question == (
                "The TCP server (threads of proclab's own, 1 connection open) is running.\n"
                "Stop it, closing its connections, and quit?"
            ), question
            await pilot.press("y")
            await wait_for(pilot, lambda: not app.is_running, timeout=10)
        assert client.recv(64) == b""  # closed by the server as it stopped
    assert not live_controller.server.running


async def test_the_status_line_counts_a_zombie_apart_from_the_live():
    """A zombie has ended and waits for its parent to read its status: it was counted as
    live, while the quit question left it out."""
    rows = mixed_rows()
    rows = [*rows, replace(rows[0], id=99, pid=41099, state=ProcState.ZOMBIE)]
    app = ProclabApp(FakeController(rows), refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        live = sum(1 for r in rows if r.state.is_live) - 1
        ended = sum(1 for r in rows if r.state.is_over)
        said = str(app.lab.query_one(StatusBar).render())
        assert f" {live} live · 1 zombie · {ended} ended" in said, said


async def test_panes_are_reachable_at_80x24(live_controller):
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.screen.has_class("-narrow")
        for key, pane in (("2", "log"), ("3", "cpu"), ("4", "server"), ("1", "procs")):
            await pilot.press(key)
            await pilot.pause()
            assert (
                app.lab.query_one(f"#{pane}").display
                and app.lab.query_one(f"#{pane}").region.height > 5
            )
            others = [p for p in ("procs", "log", "cpu", "server") if p != pane]
            assert all(app.lab.query_one(f"#{o}").region.height == 0 for o in others)


async def test_command_palette_offers_the_actions(live_controller):
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {
            "Spawn",
            "Join",
            "Term",
            "Kill",
            "Pause",
            "Details",
            "Rename",
            "Restart",
            "Clear",
            "Filter",
            "Help",
            "Quit",
        } <= titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Spawn")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SpawnScreen))


async def test_a_vanished_pid_never_raises(live_controller):
    (rec_id,) = live_controller.spawn(build_spec(f"{TASKS}:sleep", "(30,)"))
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: cell(app, rec_id, "pid") != "")
        os.kill(live_controller.row(rec_id).pid, 9)  # behind proclab's back
        await wait_for(pilot, lambda: cell(app, rec_id, "state") == "killed")
        await pilot.press("t")  # on an ended process: a notification, not a crash
        await pilot.pause(0.3)
        assert app.is_running and app.screen is app.lab, "nothing to ask about"


async def test_mouse_sorts_and_selects(live_controller):
    ids = live_controller.spawn(build_spec(f"{TASKS}:sleep", "(30,)"), 3)
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(
            pilot, lambda: table(app).row_count == 3 and all(cell(app, i, "pid") for i in ids)
        )
        # the PID header, after the name column (as wide as the longest name)
        pid_x = table(app).column_span("pid")[0] + 2
        await pilot.click("#table", offset=(pid_x, 0))
        assert table(app).sort_column == "pid"
        assert table(app).sort_reverse, "numbers sort highest first, as in htop"
        assert table(app).order == sorted(
            ids, key=lambda i: live_controller.row(i).pid, reverse=True
        )
        await pilot.click("#table", offset=(pid_x, 0))
        assert not table(app).sort_reverse
        assert table(app).order == sorted(ids, key=lambda i: live_controller.row(i).pid)
        await pilot.click("#table", offset=(5, 3))  # the third row
        assert table(app).selected_id == table(app).order[2]


async def test_theme_change_restyles_without_losing_rows(live_controller):
    (rec_id,) = live_controller.spawn(build_spec(f"{TASKS}:sleep", "(30,)"))
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: cell(app, rec_id, "state") in ("running", "sleeping"))
        app.theme = "textual-light"
        await pilot.pause(0.5)
        assert cell(app, rec_id, "state") in ("running", "sleeping")
        assert app.is_running


async def test_the_server_pane_gives_no_example_of_a_port_that_cannot_be(live_controller):
    """With port 99999 typed, it said "then connect, e.g. nc 127.0.0.1 99999"."""
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.lab.query_one("#server-pane")
        pane.query_one("#server-port").value = "99999"
        await pilot.press("4", "enter")  # Start: refused, and the status is drawn again
        await pilot.pause(0.5)
        assert not live_controller.server.running
        said = str(pane.query_one("#server-status").render())
        assert "99999 is not a port number" in said
        assert "nc 127.0.0.1 99999" not in said and "e.g. `proclab client`" in said, said


async def test_the_server_pane_offers_only_the_settings_of_its_mode() -> None:
    """It offered a worker count for a process-per-connection server, which has none,
    and a start method for a thread server."""
    from textual.widgets import Select

    app = ProclabApp(FakeController(), clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        pane = app.lab.query_one("#server-pane")
        workers, method = pane.query_one("#server-workers"), pane.query_one("#server-method")
        assert not workers.display and method.display  # process, the default
        for mode, shown in (("pool", (True, True)), ("thread", (False, False))):
            pane.query_one("#server-mode", Select).value = mode
            await pilot.pause()
            assert (workers.display, method.display) == shown, mode
            assert pane.query_one("#server-workers-label").display == shown[0]


async def test_beside_the_table_at_120_columns_every_setting_and_figure_shows_whole() -> None:
    """At 120x32 (the narrowest side by side) the server pane cut its mode ("mode pro")
    and, in pool mode, its Start button; the CPU pane lost the load's third figure."""
    from fakes import FakeController
    from textual.widgets import Select

    fake = FakeController(cores=2)
    app = ProclabApp(fake, clock=lambda: NOW)
    async with app.run_test(size=(120, 32)) as pilot:
        fake.emit_history()
        await wait_for(pilot, lambda: not app.events_pending(), timeout=30)
        pane = app.lab.query_one("#server-pane")
        inside = pane.content_region
        for mode in ("process", "pool", "thread"):
            pane.query_one("#server-mode", Select).value = mode
            await pilot.pause()
            for control in pane.query("Input, Select, Button, Label"):
                if control.display and control.parent.display:
                    region = control.region
                    assert inside.contains_region(region), (mode, control.id, region, inside)
        assert "1.52 1.20 0.88" in screen_text(app)


async def test_a_hidden_setting_does_not_stop_the_server_starting(live_controller) -> None:
    """A worker count of 0 typed in pool mode, then process mode chosen: Start said "not
    started: workers: ..." of a field no longer shown."""
    from textual.widgets import Select

    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.lab.query_one("#server-pane")
        pane.query_one("#server-port").value = "0"
        pane.query_one("#server-mode", Select).value = "pool"
        await pilot.pause()
        pane.query_one("#server-workers").value = "0"
        pane.query_one("#server-mode", Select).value = "process"
        await pilot.pause()
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: live_controller.server.running)
        assert live_controller.server.status().mode == "process"
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: not live_controller.server.running)


async def test_server_from_its_pane(live_controller):
    app = ProclabApp(live_controller, refresh=0.2)
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.lab.query_one("#server-pane")
        pane.query_one("#server-port").value = "0"  # any free port
        await pilot.press("4")
        await pilot.press("enter")  # the Start button has focus
        await wait_for(pilot, lambda: live_controller.server.running)
        address = live_controller.server.status().address
        host, port = address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"hello pane")
        await writer.drain()
        assert await reader.readexactly(10) == b"HELLO PANE"
        writer.close()
        await writer.wait_closed()
        log = pane.query_one("#server-log")
        await wait_for(pilot, lambda: any(" closed: " in line for line in log.plain_lines()))
        text = "\n".join(log.plain_lines())
        assert f"listening on {address}" in text
        assert (
            "accepted by handler" in text
            and "<- 10 B  hello pane" in text
            and "-> 10 B  HELLO PANE" in text
        )
        assert "peer closed" in text
        (handler,) = handlers(live_controller)
        assert cell(app, handler.id, "name") and cell(app, handler.id, "pid") == str(handler.pid)
        # moving through the log selects the handler in the process table
        log.focus()
        await pilot.press("up")
        await wait_for(pilot, lambda: table(app).selected_id == handler.id)
        status = pane.query_one("#server-status")
        # the status line follows the refresh tick, the log follows events
        await wait_for(pilot, lambda: "served 1" in str(status.render()))
        await pilot.press("ctrl+t")  # stop
        await wait_for(pilot, lambda: not live_controller.server.running)


async def test_a_server_asked_for_at_launch_keeps_its_settings_when_it_cannot_start(
    live_controller,
):
    """`proclab --serve PORT` with PORT taken: the error showed, and the pane's port field
    said 8001, the default, not the port asked for (to retype to try again)."""
    import socket

    from proclab.core.server.tcp import ServerConfig

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    asked = ServerConfig(port=port, mode="pool", workers=3, max_clients=7, method="spawn")
    app = ProclabApp(live_controller, refresh=0.2, serve=asked)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            pane = app.lab.query_one("#server-pane")
            await wait_for(
                pilot, lambda: "already in use" in str(pane.query_one("#server-status").render())
            )
            shown = {f: pane.query_one(f"#server-{f}").value for f in ("port", "workers", "max")}
            assert shown == {"port": str(port), "workers": "3", "max": "7"}
            assert (
                pane.query_one("#server-mode").value,
                pane.query_one("#server-method").value,
            ) == ("pool", "spawn")
            assert not live_controller.server.running
    finally:
        blocker.close()


async def test_port_in_use_shows_in_the_pane(live_controller):
    import socket

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    app = ProclabApp(live_controller, refresh=0.2)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            pane = app.lab.query_one("#server-pane")
            pane.query_one("#server-port").value = str(blocker.getsockname()[1])
            await pilot.press("ctrl+t")
            await pilot.pause(0.2)
            assert "already in use" in str(pane.query_one("#server-status").render())
            assert not live_controller.server.running and app.is_running
    finally:
        blocker.close()


async def test_the_cpu_pane_shows_what_came_while_another_tab_was_shown():
    """A hidden CPU pane records each tick without repainting (a repaint of a widget off
    screen cost a full map of the screen every tick); shown again, it draws the latest."""
    from fakes import FakeController

    from proclab.core.model import Sampled

    fake = FakeController(cores=2)
    app = ProclabApp(fake, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        fake.emit_history()
        await wait_for(pilot, lambda: not app.events_pending(), timeout=30)
        await pilot.press("3")
        await pilot.pause()
        assert "1.52 1.20 0.88" in screen_text(app)
        await pilot.press("1")
        await pilot.pause()
        latest = replace(fake._history[-1], load=(7.77, 6.66, 5.55))
        for callback in fake._subscribers:
            callback(Sampled(latest, {}))
        await wait_for(pilot, lambda: not app.events_pending(), timeout=30)
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause()
        assert "7.77 6.66 5.55" in screen_text(app)


def screen_text(app: App) -> str:
    """What the terminal shows now, as text."""
    return "\n".join(line.text for line in app.screen._compositor.render_strips())


async def test_panes_behind_another_tab_take_their_lines_and_show_them_when_shown(monkeypatch):
    """At 80x24 only one pane is shown. The output and server panes behind it keep taking
    what comes, without a repaint while unseen (a repaint of a widget off screen cost the
    app a new map of the whole screen each time), and show it all once their tab is."""
    from fakes import FakeController
    from textual._compositor import Compositor

    from proclab.core.model import OutputLine, server_event

    repainted_unseen: list[str] = []
    update_widgets = Compositor.update_widgets

    def watched(self: Compositor, widgets: set) -> None:  # type: ignore[type-arg]
        repainted_unseen.extend(str(w.id) for w in widgets - self.visible_widgets.keys())
        update_widgets(self, widgets)

    monkeypatch.setattr(Compositor, "update_widgets", watched)
    fake = FakeController(cores=2)
    app = ProclabApp(fake, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        fake.emit_history()
        await wait_for(pilot, lambda: not app.events_pending(), timeout=30)
        await pilot.pause()
        repainted_unseen.clear()
        row = fake.rows()[0]
        for n in range(30):
            for callback in fake._subscribers:
                callback(OutputLine(row.id, row.pid or 0, row.name, "stdout", f"line {n}", NOW))
                callback(server_event("accepted", NOW, client=f"127.0.0.1:{5000 + n}", pid=42))
            await pilot.pause(0.05)
        await wait_for(pilot, lambda: not app.events_pending(), timeout=30)
        await pilot.pause()
        assert repainted_unseen == []
        await pilot.press("2")
        await pilot.pause()
        assert "line 29" in screen_text(app)
        await pilot.press("4")
        await pilot.pause()
        assert "127.0.0.1:5029 accepted" in screen_text(app)


async def test_a_long_question_wraps_inside_its_dialog_at_80x24():
    """As wide as its longest line, a question was cut at 80 columns: "a join would" lost
    its "wait", a long name its end, with no mark."""
    from textual.geometry import Region

    question = (
        "ForkServerProcess-1 (2030) is stopped (paused by SIGSTOP): a join would wait"
        " until it is resumed; a-very-long-process-name-that-says-everything-about-the-job\n"
        "Resume it (SIGCONT) and join?"
    )
    app = ProclabApp(FakeController(mixed_rows()), refresh=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(ConfirmScreen(question))
        await pilot.pause()
        await pilot.pause()  # laid out again at its fitted width
        widget = app.screen.query_one(".question")
        width, height = widget.outer_size  # its padding's line included
        shown = " ".join(
            strip.text.strip() for strip in widget.render_lines(Region(0, 0, width, height))
        )
        assert widget.region.right <= app.screen.query_one(".dialog-box").region.right
        assert " ".join(question.split()) in " ".join(shown.split()), shown


async def test_a_notice_still_on_screen_is_not_stacked_again():
    """R pressed ten times on a child ignoring SIGTERM stacked nine "is already
    restarting" toasts over the header and half the table."""
    app = ProclabApp(FakeController(mixed_rows()), refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(5):
            app.notify("ForkServerProcess-1 is already restarting", severity="warning")
        app.notify("something else", severity="warning")
        await pilot.pause()
        shown = [n.message for n in app._notifications]
        assert shown == ["ForkServerProcess-1 is already restarting", "something else"]


async def test_the_cpu_pane_grows_when_the_load_moves_to_a_line_of_its_own() -> None:
    """Its height followed only its number of cores: when the memory went from "(9%)" to
    "(10%)" and the load no longer fit beside it, the last core's row was cut off."""
    from textual.containers import VerticalScroll

    from proclab.core.model import SystemSample
    from proclab.tui.widgets.cpu_pane import CpuPane

    def sample(percent: float, load: tuple[float, float, float]) -> SystemSample:
        total = 24 * 2**30
        return SystemSample(
            0.0, 0.0, (5.0, 7.0), 6.0, total, int(total * percent / 100), percent, load
        )

    class Pane(App):
        CSS = "#cpu { width: 48; height: 1fr; border: round white; }"

        def compose(self) -> ComposeResult:
            with VerticalScroll(id="cpu"):
                yield CpuPane(id="pane")

    app = Pane()
    async with app.run_test(size=(60, 12)) as pilot:
        pane = app.query_one(CpuPane)
        pane.record([sample(9.0, (1.29, 2.01, 1.61))], 1.0)
        await pilot.pause()
        pane.record([sample(10.0, (11.29, 12.01, 11.61))], 1.0)
        await pilot.pause()
        assert pane.size.height == pane.get_content_height(None, None, pane.size.width) == 5
        assert "cpu1" in screen_text(app)
