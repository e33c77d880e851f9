"""What the app says about a watched program's processes, from rows and calls built by
hand (the tests on a real watched program are in test_watch_app.py): the details (the
command line, multiprocessing's facts, the parent's calls as a timeline, an exit status
only a parent read), the calls in the output log under the process that made them, and
the rules behind those figures in the help. Drawing only: no child process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes import NOW, FakeController, watched_calls, watched_output, watched_rows
from support import wait_for
from test_help import help_lines

from proclab.core.model import ProcessCall
from proclab.tui.app import ProclabApp
from proclab.tui.call_words import join_outcome
from proclab.tui.screens.details import DetailsScreen

pytestmark = pytest.mark.once


@contextlib.asynccontextmanager
async def loaded() -> AsyncIterator[tuple[ProclabApp, Any]]:
    """The app on the hand-built watched program, its output and calls drained."""
    rows = watched_rows()
    fake = FakeController(rows, output=watched_output(rows), calls=watched_calls())
    app = ProclabApp(fake, clock=lambda: NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        fake.emit_history()
        # Until every event is drawn: a fixed 0.2 s missed the calls once under CI's load.
        await wait_for(pilot, lambda: not app.events_pending(), timeout=30)
        await pilot.pause(0.1)
        yield app, pilot


async def details_of(app: ProclabApp, pilot, rec_id: int) -> dict[str, list[str]]:
    """The details of `rec_id` as label: lines (unlabelled lines go under the last)."""
    app.lab.table.select(rec_id)
    await pilot.press("i")
    await pilot.pause()
    assert isinstance(app.screen, DetailsScreen)
    facts: dict[str, list[str]] = {}
    label = ""
    for name, value in app.screen.facts:
        label = name or label
        facts.setdefault(label, []).append(value)
    await pilot.press("escape")
    await pilot.pause()
    return facts


async def test_a_multiprocessing_childs_details_show_its_call_and_its_parents_calls() -> None:
    async with loaded() as (app, pilot):
        facts = await details_of(app, pilot, 3)
        assert facts["Process"] == ["fetcher   pid 42003   sleeping"]
        assert facts["Command"] == ["python pool_demo.py"]
        assert facts["Parent"] == ["python pool_demo.py (42001)"]
        assert facts["Target"] == ["__main__.fetch"]
        assert facts["args"] == ["('https://example.org',)"]
        assert facts["kwargs"] == ["{'retries': 3}"]
        assert facts["Start"] == [
            "method fork   daemon no",
            "ran its target 14.1 ms after its parent called start()",
        ]
        calls = facts["Calls"]
        # In the order they happened, who called, and the measured figures.
        assert calls[0].endswith("python (42001): start() of it returned after 1.20 ms")
        assert "python (42001): join(timeout=2) of it called" in calls[1]
        assert calls[2].endswith(
            "join(timeout=2) of it returned: blocked 2.00 s: timed out, it is still running"
        )
        # And what it did to its own child.
        made = facts["It called"]
        assert made[0].endswith("start() of Process-3 (42006) returned after 0.80 ms")
        assert made[1].endswith("terminate() of Process-3 (42006): SIGTERM sent")
        assert made[-1] == "? (help) says how each figure is measured"
        assert facts["Ended"] == ["not yet: still running"]


async def test_an_exit_status_only_the_parent_read_is_said_so_and_never_invented() -> None:
    async with loaded() as (app, pilot):
        assert app.lab.table.cell_text(7, "exit") == "? (parent)"
        assert app.lab.table.cell_text(7, "state") == "ended"  # not "exited": that says code 0
        facts = await details_of(app, pilot, 7)
        assert facts["Ended"] == [
            "ended; exit status not known: only its parent fetcher (42003) could read it"
            " (? explains)"
        ]
        assert facts["Calls"][1].endswith("fetcher (42003): terminate() of it: SIGTERM sent")
        # An exit status someone reported names who saw it, and how.
        worker = await details_of(app, pilot, 5)
        assert worker["Ended"] == [
            "returned normally (exit code 0)"
            " (reported by its parent python (42001), which joined it)"
        ]
        assert worker["Calls"][1].endswith("blocked 3.00 s until it ended, exit 0")
        assert worker["Pool"] == [
            "a worker of a Pool (Pool worker): 25 tasks done, 250 calls of the function in them"
            " (final: it said so at its end)"
        ]
        busy = await details_of(app, pilot, 6)
        assert busy["Pool"][0].endswith("12 tasks done, 120 calls of the function in them so far")


async def test_helpers_and_non_python_processes_say_what_they_are() -> None:
    async with loaded() as (app, pilot):
        tracker = await details_of(app, pilot, 2)
        assert tracker["Role"] == [
            "multiprocessing's resource_tracker: one of its own helper processes"
        ]
        assert "Calls" not in tracker
        sleeper = await details_of(app, pilot, 4)
        assert sleeper["Process"] == ["sleep 30   pid 42010   sleeping"]
        assert sleeper["Parent"] == ["fetcher (42003)"]
        assert "Calls" not in sleeper and "Target" not in sleeper
        root = await details_of(app, pilot, 1)
        assert root["Parent"][0].startswith("none in the table")


async def test_calls_are_log_lines_under_the_process_that_made_them() -> None:
    async with loaded() as (app, pilot):
        lines = app.lab.output_log.lines_shown()
        assert (
            "python 42001 » join(timeout=2) of fetcher (42003) returned: blocked 2.00 s:"
            " timed out, it is still running"
        ) in lines
        assert "fetcher 42003 » terminate() of Process-3 (42006): SIGTERM sent" in lines
        # Output under each process's pid.
        assert "python 42003 fetching https://example.org" in lines
        assert "python 42005 ! warning: chunk 7 is large" in lines
        # In the order they happened: the timed-out join returns before the terminate.
        join = lines.index(
            "python 42001 » join(timeout=2) of fetcher (42003) returned: blocked 2.00 s:"
            " timed out, it is still running"
        )
        assert join < lines.index("fetcher 42003 » terminate() of Process-3 (42006): SIGTERM sent")
        # Only the selected process: its lines and the calls made by it or on it.
        app.lab.table.select(7)
        app.lab.output_log.action_only_selected(True)
        await pilot.pause()
        only = app.lab.output_log.lines_shown()
        assert only and all("Process-3" in line for line in only), only


async def test_the_help_gives_the_rules_behind_the_watched_figures() -> None:
    texts = " ".join(line.strip() for line in await help_lines((160, 48)))
    assert "join()" in texts and "blocked is from the call to its return" in texts
    assert "only a process's parent can read it" in texts
    assert "a map chunk is one task" in texts


def test_a_process_that_had_ended_when_first_seen_has_no_wall_figures_made_up() -> None:
    """Its end came at a moment nothing tells: 'ran for' is a bound, and no CPU share or
    CPU/I/O verdict is drawn from it (a 1 ms child was 'too young to tell ... of its
    76 ms')."""
    from proclab.core.model import ProcessRow, ProcSample, ProcState
    from proclab.tui.screens.details import figure_lines
    from proclab.tui.screens.details_watched import watched_lines

    sample = ProcSample(
        time=0.0, interval=0.0, status="zombie", cpu_percent=0.0, cpu_user=0.0,
        cpu_system=0.001, cpu_delta=0.0, run_delay_delta=0.0, run_delay=0.0, rss=0,
        threads=1, core=None, ctx_voluntary=1, ctx_involuntary=0,
    )  # fmt: skip
    row = ProcessRow(
        9, "true", None, ProcState.EXITED, 300, exitcode=0, started_at=NOW - 2.0,
        ended_at=NOW - 1.2, command="[true]", sample=sample, end_unseen=True,
    )  # fmt: skip
    said = watched_lines(row, (), (), lambda _id: None, NOW) + figure_lines(row, NOW)
    assert ("", "ran for at most 800 ms: it had ended when proclab first read it in /proc") in said
    lines = dict(said)
    assert lines["CPU/wall"].startswith("not known:")
    assert lines["Kind"] == "not known: it had ended when proclab first read it in /proc"


@pytest.mark.parametrize(
    ("took", "ended", "said"),
    [
        (0.432, True, " until it ended, exit 0"),
        (0.000023, True, ": it had ended already, exit 0"),
        (2.0, False, ": timed out, it is still running"),
    ],
)
def test_a_join_says_whether_it_waited_for_the_end_or_found_it(took, ended, said):
    """'join() ... blocked 0.432 s: it had ended' read as if the child had ended before
    the join was called."""
    call = ProcessCall(1, 100, "python", "join", 2, 101, "Process-1", 10.0, 10.0 + took,
                       ended=ended, exitcode=0 if ended else None)  # fmt: skip
    assert join_outcome(call) == said
