"""The timeline's data from real children: concurrency (two pinned to one core take turns)
against parallelism (two free ones on two cores at once); and its screen, from fake data."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from fakes import NOW, FakeController
from support import TASKS

from proclab.core.controller import Controller
from proclab.core.model import (
    Cleared,
    Exited,
    ProcessRow,
    ProcSample,
    ProcState,
    RowUpdated,
    Sampled,
    Spawned,
    StateChanged,
    SystemSample,
)
from proclab.core.registry import Registry
from proclab.core.spec import build_spec
from proclab.core.timeline import ENDED, Cell, CellState, Timeline, cell_for
from proclab.tui.app import ProclabApp
from proclab.tui.screens.help import SEEING
from proclab.tui.screens.timeline import (
    TimelineGrid,
    TimelineScreen,
    cell_text,
    describe_cell,
)

CORES = sorted(os.sched_getaffinity(0))
TICK_S = 0.2
SPIN_S = 1.4


def _running_ticks(lanes: list, snapshot) -> list[tuple[Cell, ...]]:
    """The ticks in which every one of `lanes` has a cell, as (cell, cell...) tuples."""
    columns = []
    for i in range(len(snapshot.ticks)):
        cells = [lane.cells[i] for lane in lanes]
        if all(c is not None and c.state not in ENDED for c in cells):
            columns.append(tuple(cells))
    return columns


def _parallel_ticks(lanes: list, snapshot) -> list[tuple[Cell, ...]]:
    """The ticks in which every one of `lanes` ran, each on a different core."""
    return [
        cells
        for cells in _running_ticks(lanes, snapshot)
        if all(c.is_on_cpu for c in cells) and len({c.core for c in cells}) == len(cells)
    ]


@pytest.mark.skipif(len(CORES) < 2, reason="needs 2 or more cores")
def test_pinned_pair_takes_turns_and_free_pair_runs_in_parallel():
    """Two CPU-bound children pinned to one core, then two free ones (one after the
    other: on a 2-core machine, four at once would leave the free pair sharing the
    other core). Criteria that a busy machine cannot fake: the pinned pair is only ever
    seen on its core, and together never gets more than one core's worth of a tick; the
    free pair is seen on two different cores in the same tick (in one of at most three
    runs, since other work may hold a core), which the pinned pair never is."""
    pinned_core = CORES[-1]
    timeline = Timeline()
    with Controller(sample_interval=TICK_S, grace=0.5) as controller:
        timeline.attach(controller)
        pinned = controller.spawn(
            build_spec(
                f"{TASKS}:spin", (SPIN_S,), method="fork", affinity=(pinned_core,), name="pinned"
            ),
            2,
        )
        assert controller.join(pinned, timeout=20)
        # On a machine whose cores are busy with other work, the kernel may keep a free
        # pair on one core for a whole run: it is given three runs to show parallelism,
        # which the pinned pair, bound to one core, can never show.
        for _attempt in range(3):
            free = controller.spawn(build_spec(f"{TASKS}:spin", (SPIN_S,), method="fork"), 2)
            assert controller.join(free, timeout=20)
            snapshot = timeline.snapshot()
            if _parallel_ticks([snapshot.lane(i) for i in free], snapshot):
                break

    pinned_lanes = [snapshot.lane(i) for i in pinned]
    free_lanes = [snapshot.lane(i) for i in free]
    # Pinned: every on-CPU cell is on the pinned core, and the two share it.
    on_cpu = [c for lane in pinned_lanes for c in lane.cells if c is not None and c.is_on_cpu]
    assert len(on_cpu) >= 6, f"too few samples of the pinned pair: {pinned_lanes}"
    assert {c.core for c in on_cpu} == {pinned_core}
    together = _running_ticks(pinned_lanes, snapshot)
    assert together, "the pinned pair was never sampled in the same tick"
    # A tick's CPU time is counted in 10 ms clock ticks, hence the slack.
    for cells in together:
        assert sum(c.on_cpu for c in cells) <= 1.0 + 0.15, cells
    # Taking turns: in the ticks where both ran, neither had the core to itself.
    both = [cells for cells in together if all(c.is_on_cpu for c in cells)]
    assert both, "the pinned pair never ran in the same tick"
    assert all(min(c.on_cpu for c in cells) < 0.85 for cells in both)
    # Free: in some tick the two are on CPUs, on two different cores, at once.
    parallel = _parallel_ticks(free_lanes, snapshot)
    assert parallel, f"the free pair was never on two cores at once: {free_lanes}"
    assert not _parallel_ticks(pinned_lanes, snapshot), "the pinned pair ran on two cores"
    # Once reaped, a child's later ticks say so.
    assert all(lane.state is ProcState.EXITED for lane in pinned_lanes)
    assert pinned_lanes[0].cells[-1] in (Cell(CellState.EXITED), Cell(CellState.GONE))


def _sample(
    cpu: float, core: int | None = 0, status: str = "running", waited: float = 0.0
) -> ProcSample:
    return ProcSample(
        time=0.0,
        interval=1.0,
        status=status,
        cpu_percent=cpu * 100,
        cpu_user=0.0,
        cpu_system=0.0,
        cpu_delta=cpu,
        run_delay_delta=waited,
        run_delay=0.0,
        rss=0,
        threads=1,
        core=core,
        ctx_voluntary=0,
        ctx_involuntary=0,
    )


def test_the_cell_rule():
    assert cell_for(_sample(0.9, 1)) == Cell(CellState.RUNNING, 1, 0.9, 0.0)
    assert cell_for(_sample(0.01, 1, "running", waited=0.9)).state is CellState.WAITING
    assert cell_for(_sample(0.0, 1, "sleeping")).state is CellState.SLEEPING
    assert cell_for(_sample(0.0, 1, "stopped")).state is CellState.STOPPED
    assert cell_for(_sample(0.0, 1, "zombie")).state is CellState.ZOMBIE
    assert cell_text(cell_for(_sample(1.0, 3))) == "3█"
    assert cell_text(cell_for(_sample(0.5, 12))) == "c▄"
    assert cell_text(None) == "  "


SPEC = build_spec(f"{TASKS}:spin", (60,))


def _row(rec_id: int, name: str, state: ProcState = ProcState.RUNNING) -> ProcessRow:
    return ProcessRow(rec_id, name, SPEC, state, 40000 + rec_id, started_at=NOW - 60)


def _system(t: int, cores: int = 2) -> SystemSample:
    return SystemSample(1000.0 + t, NOW - 40 + t, (50.0,) * cores, 50.0, 1, 1, 0.0, (0, 0, 0))


def test_history_is_bounded_and_forgets_what_scrolled_out():
    timeline = Timeline(keep=5)
    timeline.feed(Spawned(_row(1, "a")))
    timeline.feed(Spawned(_row(2, "b")))
    for t in range(3):
        timeline.feed(Sampled(_system(t), {1: _sample(1.0), 2: _sample(0.5, 1)}))
    timeline.feed(Exited(_row(2, "b", ProcState.EXITED)))
    for t in range(3, 12):
        timeline.feed(Sampled(_system(t), {1: _sample(1.0)}))
    snapshot = timeline.snapshot()
    assert len(snapshot.ticks) == 5
    assert [lane.id for lane in snapshot.lanes] == [1]  # b's live ticks scrolled out
    timeline.feed(Cleared((1,)))
    assert timeline.snapshot().lanes == ()


def test_a_sample_that_stood_has_its_cell_again():
    """A child whose last sample stood in a tick (Sampled.stood: nothing moved) has that
    sample's cell in it, whether the sample came in a tick or with its row before the
    timeline began; the first tick's length is that sample's interval."""
    timeline = Timeline()
    sampled_before = replace(
        _row(2, "b"), sample=replace(_sample(0.0, 1, "sleeping"), interval=0.7)
    )
    timeline.feed(Spawned(sampled_before))
    timeline.feed(Spawned(_row(1, "a")))
    timeline.feed(Sampled(_system(0), {}, stood=(2,)))
    timeline.feed(Sampled(_system(1), {1: _sample(0.0, 1, "stopped")}, stood=(2,)))
    timeline.feed(Sampled(_system(2), {}, stood=(1, 2)))
    timeline.feed(Sampled(_system(3), {1: _sample(0.8, 1)}, stood=(2,)))
    snapshot = timeline.snapshot()
    assert snapshot.ticks[0].interval == 0.7
    stopped, sleeping = Cell(CellState.STOPPED), Cell(CellState.SLEEPING)
    assert snapshot.lane(1).cells == (None, stopped, stopped, Cell(CellState.RUNNING, 1, 0.8))
    assert snapshot.lane(2).cells == (sleeping,) * 4


def test_a_late_event_from_another_thread_does_not_undo_a_newer_change() -> None:
    """Rows change under the registry's lock and their events go out after it, so another
    thread's older event can go out last: a walk's `Spawned` for a child the hook had named
    since put the timeline's lane back to the command name (`proclab watch`, under load).
    Every event goes out with its row as it stands; a cleared row's late event is dropped."""
    registry = Registry()
    timeline, heard = Timeline(), []
    registry.subscribe(timeline.feed)
    registry.subscribe(heard.append)
    registry.add(_row(1, "python3"))
    walk = [Spawned(registry.row(1))]  # made by the walk, not handed out yet
    hook = [RowUpdated(registry.update(1, name="Process-5"))]
    registry.emit(hook)
    registry.emit(walk)  # late
    registry.emit([Sampled(_system(0), {1: _sample(1.0)})])
    assert [lane.name for lane in timeline.snapshot().lanes] == ["Process-5"]
    assert [e.row.name for e in heard if isinstance(e, Spawned | RowUpdated)] == ["Process-5"] * 2

    registry.add(_row(2, "b"))
    late = [StateChanged(registry.row(2), ProcState.SLEEPING)]
    registry.emit([Exited(registry.update(2, state=ProcState.EXITED))])
    registry.forget([2])
    registry.emit(late)  # would have brought the cleared row back
    assert not any(isinstance(e, StateChanged) for e in heard)
    assert 2 not in {lane.id for lane in timeline.snapshot().lanes}


def test_a_tick_read_before_a_resume_does_not_stop_the_row_again() -> None:
    """A tick reads "T", proclab resumes the process and its own read shows it sleeping,
    then the tick hands its reading over: the row was stopped again, its stop "seen at
    ticks" (a watched pause test, one full run in three under load)."""
    import time as clock
    from dataclasses import replace

    registry = Registry()
    registry.add(_row(1, "paused", ProcState.RUNNING))
    registry.refresh_begins(1)  # pause
    registry.set_live_state(1, ProcState.STOPPED)
    registry.refresh_ends(1)
    tick_began = clock.monotonic()  # the tick's reads begin: it reads "T"
    stale = replace(_sample(0.0, status="stopped"), time=tick_began)
    registry.refresh_begins(1)  # resume, and proclab's own read
    registry.set_live_state(1, ProcState.SLEEPING)
    registry.refresh_ends(1)
    registry.sampled(Sampled(_system(0), {1: stale}))  # the tick, handed over late
    row = registry.row(1)
    assert row.state is ProcState.SLEEPING and not row.stops_at_ticks
    fresh = replace(_sample(0.0, status="stopped"), time=clock.monotonic())
    registry.sampled(Sampled(_system(1), {1: fresh}))  # a later tick's is believed
    assert registry.row(1).state is ProcState.STOPPED
    registry.end(1, state=ProcState.EXITED, exitcode=0)()
    assert 1 not in registry._signalled  # kept for live rows only


def _reference_lanes(events: list, keep: int) -> dict[int, dict[int, Cell]]:
    """The timeline's rule the plain way (every lane's whole history scanned every tick):
    rec_id -> {tick index: cell} for the lanes a snapshot shows."""
    lanes: dict[int, tuple[ProcessRow, dict[int, Cell]]] = {}
    ticks: list[int] = []
    index = -1
    for event in events:
        if isinstance(event, (Spawned, Exited)):
            lanes[event.row.id] = (event.row, lanes.get(event.row.id, (None, {}))[1])
        elif isinstance(event, Cleared):
            for rec_id in event.ids:
                lanes.pop(rec_id, None)
        elif isinstance(event, Sampled):
            index += 1
            ticks = [*ticks, index][-keep:]
            for rec_id, (row, cells) in list(lanes.items()):
                sample = event.procs.get(rec_id)
                if sample is not None:
                    cells[index] = cell_for(sample)
                elif row.state.is_over and cells:
                    before = cells.get(index - 1)
                    ended = before is not None and before.state in ENDED
                    cells[index] = Cell(CellState.GONE if ended else CellState.EXITED)
                for old in [i for i in cells if i < ticks[0]]:
                    del cells[old]
                if row.state.is_over and all(c.state in ENDED for c in cells.values()):
                    del lanes[rec_id]
    return {rec_id: cells for rec_id, (_row, cells) in lanes.items() if cells}


def test_pruning_from_the_front_keeps_the_rule():
    """Lanes that start late, skip ticks, end, fall silent for longer than the history and
    come back: every snapshot, whole or only its newest ticks, says what the plain rule
    says."""
    keep = 6
    timeline = Timeline(keep=keep)
    events: list = []
    for t in range(40):
        if t in (0, 3, 9):
            events.append(Spawned(_row(t + 1, f"p{t + 1}")))
        if t == 20:
            events.append(Exited(_row(4, "p4", ProcState.EXITED)))
        if t == 30:
            events.append(Cleared((10,)))
        procs = {1: _sample(1.0)}  # 1: every tick
        if t % 3 == 0 and t < 20:
            procs[4] = _sample(0.5, 1)  # 4: every third tick, until it ends
        if t < 12 or t > 25:
            procs[10] = _sample(0.0, None, "sleeping")  # 10: silent longer than `keep`
        events.append(Sampled(_system(t), procs))
    for i, event in enumerate(events):
        timeline.feed(event)
        if not isinstance(event, Sampled):
            continue
        expected = _reference_lanes(events[: i + 1], keep)
        whole = timeline.snapshot()
        assert whole.kept == len(whole.ticks) <= keep
        indices = [tick.index for tick in whole.ticks]
        got = {
            lane.id: {j: c for j, c in zip(indices, lane.cells, strict=True) if c is not None}
            for lane in whole.lanes
        }
        assert got == expected, f"after tick {len(indices)}"
        newest = timeline.snapshot(last=2)
        assert newest.ticks == whole.ticks[-2:] and newest.kept == whole.kept
        assert [lane.cells for lane in newest.lanes] == [lane.cells[-2:] for lane in whole.lanes]


def test_a_child_that_ended_before_the_window_has_no_end_in_it():
    """Three minutes after its end, a child showed an X in the window's first column, and
    the line under the grid said it had "48.00 s ago: ended" (a hostile tester's)."""
    timeline = Timeline(keep=50)
    timeline.feed(Spawned(_row(1, "p1")))
    for t in range(3):
        timeline.feed(Sampled(_system(t), {1: _sample(0.5, 0)}))
    timeline.feed(Exited(_row(1, "p1", ProcState.EXITED)))
    for t in range(3, 20):
        timeline.feed(Sampled(_system(t), {}))
    whole = timeline.snapshot().lane(1).cells
    assert whole[3] == Cell(CellState.EXITED) and set(whole[4:]) == {Cell(CellState.GONE)}
    window = timeline.snapshot(last=5).lane(1).cells
    assert "".join(cell_text(c) for c in window).strip() == ""  # no X: it ended before
    assert describe_cell(window[0], 1.0) == "ended in an earlier tick"
    assert cell_text(whole[3]) == "X "


def _fake_timeline_data() -> list:
    """Events for a picture: two on two cores (parallel), three pinned to core 0 taking
    turns, one sleeping, one paused, one that ended."""
    events: list = []
    names = {
        1: "parallel-a",
        2: "parallel-b",
        3: "pinned-1",
        4: "pinned-2",
        5: "pinned-3",
        6: "sleeper",
        7: "paused",
        8: "short",
    }
    for rec_id, name in names.items():
        events.append(Spawned(_row(rec_id, name)))
    for t in range(40):
        procs = {
            1: _sample(1.0, 0 if t % 9 else 1),
            2: _sample(0.97, 1 if t % 9 else 0),
            3: _sample(0.33, 0, waited=0.66),
            4: _sample(0.34, 0, waited=0.64),
            5: _sample(0.01, 0, waited=0.95) if t % 7 == 3 else _sample(0.3, 0, waited=0.6),
            6: _sample(0.0, None, "sleeping"),
            7: _sample(0.0, None, "stopped") if t > 20 else _sample(0.12, 1, "sleeping"),
        }
        if t < 25:
            procs[8] = _sample(0.6, t % 2)
        elif t == 25:
            events.append(Exited(_row(8, "short", ProcState.EXITED)))
        events.append(Sampled(_system(t), procs))
    return events


def _app_with_timeline() -> tuple[ProclabApp, FakeController]:
    fake = FakeController(rows=[])
    app = ProclabApp(fake, clock=lambda: NOW)
    for event in _fake_timeline_data():
        app.lab.timeline.feed(event)
    return app, fake


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_timeline_screen_snapshot(snap_compare, size):
    app, _ = _app_with_timeline()
    assert snap_compare(app, terminal_size=size, press=["l", "up", "left", "left"])


async def test_timeline_key_and_palette_open_it():
    app, _ = _app_with_timeline()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen)
        grid = app.screen.query_one(TimelineGrid)
        assert len(grid.snapshot.lanes) == 8
        await pilot.press("down", "down")
        assert grid.picked().startswith("pinned-1 (40003)")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TimelineScreen)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Timeline" in titles and "Experiments" in titles


async def test_many_children_scroll_under_a_fixed_axis_and_only_shown_ticks_are_copied():
    app = ProclabApp(FakeController(rows=[]), clock=lambda: NOW)
    for rec_id in range(1, 61):
        app.lab.timeline.feed(Spawned(_row(rec_id, f"child-{rec_id}")))
    for t in range(100):
        app.lab.timeline.feed(Sampled(_system(t), {i: _sample(0.5, i % 2) for i in range(1, 61)}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
        await pilot.pause()
        grid = app.screen.query_one(TimelineGrid)
        # Only the ticks that fit are copied out of the timeline; the title counts all kept.
        assert len(grid.snapshot.ticks) == grid.columns < 100
        assert "100 ticks kept" in str(grid.border_subtitle)
        assert len(grid.snapshot.lanes) == 60
        await pilot.press(*["down"] * 45)
        await pilot.pause()
        assert grid.cursor_lane == 45 and grid.scroll_y > 0
        top = round(grid.scroll_y)
        assert top <= 45 < top + grid.size.height - 1  # the cursor's lane is on screen
        assert grid.picked().startswith("child-46 (40046)")
        axis = "".join(s.text for s in grid.render_line(0))
        assert axis.startswith("child") and "now|" in axis  # the axis stays at the top
        lane = "".join(s.text for s in grid.render_line(45 - top + 1))
        assert lane.startswith("child-46")


@pytest.mark.once
async def test_legend_cells_and_words_follow_one_rule_for_a_child_that_also_waited():
    """A tick on a CPU 45 % and waiting 55 % is drawn as running (`1▄`): the legend said W
    meant 'waited for a CPU ≥50 %', which that cell did. Now the legend's W is what the cell
    rule makes a W, and the line under the grid says why the cell is not one."""
    cell = cell_for(_sample(0.45, 1, waited=0.55))
    assert cell_text(cell) == "1▄"
    app = ProclabApp(FakeController(rows=[]), clock=lambda: NOW)
    app.lab.timeline.feed(Spawned(_row(1, "shared")))
    app.lab.timeline.feed(Sampled(_system(0), {1: _sample(0.45, 1, waited=0.55)}))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("l")
        await pilot.pause()
        legend = str(app.screen.query_one("#timeline-legend").render())
        w_clause = legend[legend.index(" W") :]
        assert w_clause.startswith(" W: on a CPU less than 5% of the tick"), w_clause
        assert "even if it also waited" in legend
        picked = str(app.screen.query_one("#timeline-picked").render())
        assert "waited for a CPU 55% (shown as running" in picked, picked
    help_words = " ".join(SEEING.split())
    assert "W: on a CPU less than 5% of the tick" in help_words


async def test_the_blank_cells_after_a_childs_end_are_in_the_legend():
    """After a child's X its cells are blank, and the line under the grid says it ended
    in an earlier tick: the legend said a blank cell meant "not started"."""
    app = ProclabApp(FakeController(rows=[]), clock=lambda: NOW)
    timeline = app.lab.timeline
    timeline.feed(Spawned(_row(1, "short")))
    timeline.feed(Sampled(_system(0), {1: _sample(0.6, 0)}))
    timeline.feed(Exited(_row(1, "short", ProcState.EXITED)))
    for tick in (1, 2, 3):
        timeline.feed(Sampled(_system(tick), {}))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("l")
        await pilot.pause()
        picked = str(app.screen.query_one("#timeline-picked").render())
        assert "the newest tick: ended in an earlier tick" in picked, picked
        legend = str(app.screen.query_one("#timeline-legend").render())
        assert "X ended (blank after it)" in legend
        assert "blank before a child's first cell: not started" in legend


async def test_earlier_reaches_every_tick_kept_and_the_window_stays_there():
    """With three minutes kept, Left stopped at the window's left edge (48 s back): the
    rest of the history could only be seen on a wider terminal (a hostile tester's)."""
    app = ProclabApp(FakeController(rows=[]), clock=lambda: NOW)
    timeline = app.lab.timeline
    timeline.feed(Spawned(_row(1, "worker")))
    for t in range(100):  # one tick a second, on core t % 2
        timeline.feed(Sampled(_system(t), {1: _sample(0.5, t % 2)}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
        await pilot.pause()
        grid = app.screen.query_one(TimelineGrid)
        assert grid.columns < 60
        await pilot.press(*["left"] * 80)
        await pilot.pause()

        def picked() -> str:
            return str(app.screen.query_one("#timeline-picked").render())

        assert "1m20s ago: on a CPU 50%" in picked(), picked()
        assert "-80s" in grid.render_line(0).text or "-90s" in grid.render_line(0).text
        cells = grid.render_line(1).text[grid.label_width :]
        assert "1▄" in cells and "0▄" in cells  # the window drawn there, not empty
        timeline.feed(Sampled(_system(100), {1: _sample(0.5, 0)}))  # a tick comes
        app.screen.poll()
        await pilot.pause()
        assert "1m21s ago" in picked(), "the window did not stay on its ticks"
        await pilot.press(*["left"] * 50)  # past the oldest kept: it stops there
        await pilot.pause()
        assert "1m40s ago" in picked()
        await pilot.press("end")
        await pilot.pause()
        assert "the newest tick" in picked()
        assert grid.render_line(0).text.rstrip().endswith("now|")


async def test_looking_back_the_window_stays_full_as_ticks_come_and_the_screen_narrows():
    """A reviewer's: at the oldest ticks, with the history full, each new tick took a
    column from the window (31 to 1); a narrower screen left the cursor outside it."""
    app = ProclabApp(FakeController(rows=[]), clock=lambda: NOW)
    timeline = app.lab.timeline
    timeline.feed(Spawned(_row(1, "worker")))
    for t in range(timeline.keep + 50):
        timeline.feed(Sampled(_system(t), {1: _sample(0.5, t % 2)}))
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.press("l")
        await pilot.pause()
        grid = app.screen.query_one(TimelineGrid)
        grid.action_move(0, -100_000)  # to the oldest tick kept
        await pilot.pause()

        def in_view() -> bool:
            back = grid.cursor_back - grid._back()
            return grid.visible_ticks() == grid.columns and 0 <= back < grid.columns

        assert grid.cursor_back == timeline.keep - 1 and in_view()
        for t in range(timeline.keep + 50, timeline.keep + 80):
            timeline.feed(Sampled(_system(t), {1: _sample(0.5, 0)}))
            app.screen.poll()
            await pilot.pause()
            assert in_view(), (grid.visible_ticks(), grid.columns, grid.back, grid.cursor_back)
        grid.action_move(0, 200)  # the middle of the history
        await pilot.pause()
        await pilot.resize_terminal(60, 24)
        await pilot.pause()
        await pilot.pause()
        assert grid.columns < 30 and in_view()
        await pilot.resize_terminal(160, 24)
        await pilot.pause()
        await pilot.pause()
        assert in_view()


async def test_a_name_is_shown_whole_where_a_third_of_the_width_holds_it():
    """At 80 columns every row read "ForkServerP…-1" beside forty blank columns."""
    app = ProclabApp(FakeController(rows=[]), clock=lambda: NOW)
    for rec_id in (1, 2):
        app.lab.timeline.feed(Spawned(_row(rec_id, f"ForkServerProcess-{rec_id}")))
    for t in range(5):
        app.lab.timeline.feed(Sampled(_system(t), {1: _sample(0.5, 0), 2: _sample(0.5, 0)}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
        await pilot.pause()
        grid = app.screen.query_one(TimelineGrid)
        lane = "".join(s.text for s in grid.render_line(1))
        assert lane.startswith("ForkServerProcess-1 "), lane
        assert grid.label_width == len("ForkServerProcess-1 ")


@pytest.mark.parametrize("size", [(40, 12), (80, 24)], ids=["40x12", "80x24"])
async def test_the_grid_keeps_room_for_children_before_the_legend_shows(size):
    """At 40x12 the legend, wrapped, took the whole screen: no child's lane was drawn."""
    app, _ = _app_with_timeline()
    async with app.run_test(size=size) as pilot:
        await pilot.press("l")
        await pilot.pause()
        grid = app.screen.query_one(TimelineGrid)
        assert grid.content_region.height >= 4, grid.content_region  # the axis, 3 lanes
        shown = "\n".join(s.text for s in app.screen._compositor.render_strips())
        assert "parallel-a" in shown and "pinned-1" in shown, shown
        legend = app.screen.query_one("#timeline-legend")
        assert legend.display == (size == (80, 24))  # where it fits, the rule beside them
