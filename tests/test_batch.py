"""Children started together: the batch's wall time, their summed times, and a speed-up
stated only where it means something (core.batch's rule), in `proclab run` and the app."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace

import pytest
from pty_session import PROCLAB
from support import TASKS, wait_for

from proclab.core.batch import Verdict, batch_figures, batch_of
from proclab.core.model import ProcessRow, ProcSample, ProcState
from proclab.core.spec import build_spec
from proclab.tui.app import ProclabApp
from proclab.tui.batch_words import batch_lines
from proclab.tui.screens.details import DetailsScreen
from proclab.tui.screens.dialogs import ConfirmScreen

T0 = 1_000.0


def _row(
    rec_id: int,
    start: float,
    end: float | None,
    cpu: float,
    waited: float = 0.0,
    affinity: tuple[int, ...] | None = None,
    batch: int | None = 1,
) -> ProcessRow:
    spec = build_spec(f"{TASKS}:count", "(1,)", affinity=affinity)
    sample = ProcSample(
        time=0.0, interval=1.0, status="zombie", cpu_percent=0.0, cpu_user=cpu, cpu_system=0.0,
        cpu_delta=0.0, run_delay_delta=0.0, run_delay=waited, rss=0, threads=1, core=0,
        ctx_voluntary=1, ctx_involuntary=1,
    )  # fmt: skip
    state = ProcState.EXITED if end is not None else ProcState.RUNNING
    return ProcessRow(
        rec_id, f"c{rec_id}", spec, state, 100 + rec_id, 0 if end else None, T0, T0 + start,
        None if end is None else T0 + end, 0.01, sample, batch=batch,
    )  # fmt: skip


def test_two_cpu_bound_children_pinned_to_one_core_gain_nothing():
    """The issue's figures: 326 + 327 ms of CPU in 879 ms, both on core 0. Their lives add
    up to about twice the wall time, which the old summary called a 1.6x speed-up."""
    rows = [_row(1, 0.0, 0.879, 0.326, 0.33, (0,)), _row(2, 0.01, 0.87, 0.327, 0.33, (0,))]
    figures = batch_figures(rows, T0 + 5, usable=(0, 1))
    assert figures.cores == 1 and figures.verdict is Verdict.SHARED_ONE_CORE
    times, verdict = batch_lines(figures)
    assert times.startswith("2 children in 879 ms of wall time")
    assert "their own times add up to 1.74 s, 653 ms of it on a CPU" in times
    assert verdict.startswith("they shared one core: no parallel speed-up")


def test_free_cpu_bound_children_on_two_cores_show_their_speed_up():
    rows = [_row(1, 0.0, 0.35, 0.33), _row(2, 0.01, 0.36, 0.33)]
    figures = batch_figures(rows, T0 + 5, usable=(0, 1))
    assert figures.verdict is Verdict.PARALLEL
    assert batch_lines(figures)[1].startswith(
        "1.8x parallel speed-up: CPU-bound, 660 ms of CPU work in 360 ms"
    )


def test_free_children_that_got_one_core_between_them_gain_nothing():
    """Allowed two cores, but the other was busy (spin runs for a time, not an amount of
    work: its lives add up to twice the wall time whatever it got)."""
    rows = [_row(1, 0.0, 1.0, 0.47, 0.5), _row(2, 0.0, 1.0, 0.46, 0.5)]
    figures = batch_figures(rows, T0 + 5, usable=(0, 1))
    assert figures.verdict is Verdict.NO_SPEEDUP
    assert batch_lines(figures)[1].startswith("no parallel speed-up: CPU-bound, 930 ms of CPU")


def test_sleepers_overlap_is_concurrency_not_parallelism():
    rows = [_row(i, 0.01 * i, 1.0 + 0.01 * i, 0.004) for i in range(1, 11)]
    figures = batch_figures(rows, T0 + 5, usable=(0, 1))
    assert figures.verdict is Verdict.CONCURRENT
    assert "speed-up" not in batch_lines(figures)[1]
    assert "concurrency, not parallelism" in batch_lines(figures)[1]


def test_more_cores_busy_than_allowed_is_called_noise():
    rows = [_row(1, 0.0, 0.3, 0.33), _row(2, 0.0, 0.3, 0.33)]
    figures = batch_figures(rows, T0 + 5, usable=(0, 1))
    assert figures.beyond_cores
    assert "measuring noise, not a speed-up" in batch_lines(figures)[1]


def test_a_batch_still_running_says_so_and_a_lone_child_claims_nothing():
    running = [_row(1, 0.0, None, 1.0), _row(2, 0.0, 2.0, 1.0)]
    times, _ = batch_lines(batch_figures(running, T0 + 3.0, usable=(0, 1)))
    assert times.startswith(
        "2 children (1 still running): 3.00 s of wall time since the first start"
    )
    alone = batch_figures([_row(1, 0.0, 1.0, 0.9, batch=None)], T0 + 5, usable=(0, 1))
    assert alone.verdict is Verdict.ALONE and len(batch_lines(alone)) == 1


def test_a_stopped_child_of_a_batch_is_not_said_to_be_still_running():
    """A killed batch member's details said "(1 still running)" of the other, stopped."""
    stopped = replace(_row(1, 0.0, None, 1.0), state=ProcState.STOPPED)
    rows = [stopped, _row(2, 0.0, 2.0, 1.0), _row(3, 0.0, None, 1.0)]
    times, _ = batch_lines(batch_figures(rows, T0 + 3.0, usable=(0, 1)))
    assert times.startswith("3 children (1 still running, 1 stopped): 3.00 s of wall time")
    times, _ = batch_lines(batch_figures(rows[:2], T0 + 3.0, usable=(0, 1)))
    assert times.startswith("2 children (1 stopped): 3.00 s of wall time")


def test_a_batch_is_the_children_started_together():
    batches = {1: 1, 2: 1, 3: 3, 5: 3, 4: None}
    rows = [_row(i, 0, 1, 0, batch=b) for i, b in batches.items()]
    assert [r.id for r in batch_of(rows, rows[1])] == [1, 2]
    assert [r.id for r in batch_of(rows, rows[2])] == [3, 5]
    assert [r.id for r in batch_of(rows, rows[-1])] == [4]


def test_the_controller_marks_children_started_together(controller):
    spec = build_spec(f"{TASKS}:sleep", "(0,)")
    together = controller.spawn(spec, 3)
    alone = controller.spawn(spec)
    assert controller.join([*together, *alone], timeout=20)
    assert {controller.row(i).batch for i in together} == {together[0]}
    assert controller.row(alone[0]).batch is None


def _run(*args: str) -> str:
    out = subprocess.run(
        [PROCLAB, "run", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_proclab_run_pinned_to_one_core_says_there_was_no_speed_up():
    out = _run(f"{TASKS}:count", "--args", "(3_000_000,)", "--count", "2", "--affinity", "0")
    assert "from running at once" not in out
    assert "they shared one core: no parallel speed-up" in out, out


@pytest.mark.parametrize("task", ["spin", "sleep"])
def test_proclab_run_claims_no_parallel_speed_up_from_time_alone(task):
    """spin runs for 0.5 s whatever CPU it gets, sleep waits: the lives of children that
    ran at once add up to more than the wall time, which is no speed-up by itself."""
    out = _run(f"{TASKS}:{task}", "--args", "(0.5,)", "--count", "2", "--affinity", "0")
    assert "from running at once" not in out
    expected = {"spin": "they shared one core", "sleep": "concurrency, not parallelism"}[task]
    assert expected in out, out


def test_children_that_end_before_their_first_sample_report_their_run_queue_wait():
    """Their own exit record carries it: without it, two CPU-bound children sharing a core
    for less than a tick looked half idle (their wait unknown) to the batch's rule."""
    from proclab.core.controller import Controller

    with Controller(sample_interval=30.0, grace=1.0) as controller:
        spec = build_spec(f"{TASKS}:count", "(3_000_000,)", affinity=(0,))
        ids = controller.spawn(spec, 2)
        assert controller.join(ids, timeout=60)
        rows = [controller.row(i) for i in ids]
    assert all(r.sample is not None and r.sample.run_delay > 0.02 for r in rows), rows
    assert batch_figures(rows, 0.0, usable=(0, 1)).verdict is Verdict.SHARED_ONE_CORE


# In the app -------------------------------------------------------------------------------


def _notes(app: ProclabApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_join_all_joins_the_selected_batch_and_tells_its_total_time(controller):
    """The lesson's "start ten, join them all, print the total time", in the app: `a` on a
    member of a batch joins the batch (not a lone child beside it), the details of a
    member show the batch's figures, and the notice the same two lines as `proclab run`."""
    batch = controller.spawn(build_spec(f"{TASKS}:sleep", "(1,)"), 3)
    app = ProclabApp(controller, refresh=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.lab.table.row_count == 3)
        app.lab.table.select(batch[1])
        await pilot.press("a")  # (a batch that has ended already is joined at once)
        await wait_for(pilot, lambda: not app.lab.joining, timeout=30)
        rows = [controller.row(i) for i in batch]
        assert all(r.state is ProcState.EXITED for r in rows)
        figures = batch_figures(rows, 0.0, controller.usable_cpus())
        note = next(n for n in _notes(app) if n.startswith("joined"))
        assert note.splitlines() == [
            f"joined the batch of 3 with {rows[0].name}",
            *batch_lines(figures),
        ]
        assert "concurrency, not parallelism" in note
        await pilot.press("enter")
        assert isinstance(app.screen, DetailsScreen)
        facts = dict(app.screen.facts)
        assert facts["Batch"] == f"one of the {batch_lines(figures)[0]}"
        await pilot.press("escape")
        lone = controller.spawn(build_spec(f"{TASKS}:sleep", "(60,)"))
        await wait_for(pilot, lambda: app.lab.table.row_count == 4)
        await pilot.press("a")  # the selected batch has ended: every live child instead
        await pilot.pause(0.1)
        assert list(app.lab.joining) == ["1 live child"]
        # before the machine's figures: at 80 columns they are what is cut, not the hint
        status = str(app.query_one("#status").render())
        assert "esc stops joining 1 live child" in status
        assert status.index("esc stops") < status.index("CPU ")
        controller.terminate(lone[0])
        await wait_for(pilot, lambda: not app.lab.joining, timeout=30)


async def test_join_of_a_stopped_child_offers_to_resume_it(controller):
    (rec_id,) = controller.spawn(build_spec(f"{TASKS}:tick", "(100,)"))
    app = ProclabApp(controller, refresh=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: controller.output(rec_id))  # past its start-up
        await pilot.press("p")
        await wait_for(pilot, lambda: controller.row(rec_id).state is ProcState.STOPPED)
        await pilot.press("j")
        assert isinstance(app.screen, ConfirmScreen), "j on a stopped child waited silently"
        question = str(app.screen.query_one(".question").render())
        assert "is stopped (paused by SIGSTOP)" in question and "Resume" in question
        await pilot.press("n")
        await pilot.pause(0.2)
        assert not app.lab.joining and controller.row(rec_id).state is ProcState.STOPPED
        await pilot.press("enter")  # the details say what it is, not "still running"
        assert dict(app.screen.facts)["Ended"].startswith("not yet: stopped (paused by SIGSTOP)")
        await pilot.press("escape", "j", "y")
        await wait_for(pilot, lambda: controller.row(rec_id).state is not ProcState.STOPPED)
        await pilot.pause(0.1)
        assert app.lab.joining, "the join should wait for the resumed child"
        controller.terminate(rec_id)
        await wait_for(pilot, lambda: not app.lab.joining, timeout=30)


async def test_escape_stops_waiting_for_a_join(controller):
    (rec_id,) = controller.spawn(build_spec(f"{TASKS}:sleep", "(60,)"))
    app = ProclabApp(controller, refresh=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.lab.table.row_count == 1)
        await pilot.press("j")
        await pilot.pause(0.1)
        assert app.lab.joining
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.lab.joining, timeout=5)
        assert controller.row(rec_id).state.is_live
        assert any(n.startswith("stopped waiting for") for n in _notes(app))
        assert "joining" not in str(app.query_one("#status").render())
        await pilot.press("slash", "x", "escape")  # Escape still clears the filter
        assert app.lab.table.filter_text == "" and not app.query_one("#filter").display


async def test_at_80_columns_the_status_line_says_how_many_it_joins(controller):
    """It read "esc stops joining ForkServerProcess-1's batch (3", cut at 80 columns."""
    spec = build_spec(f"{TASKS}:sleep", "(60,)", name="a-child-with-a-long-name")
    ids = controller.spawn(spec, count=3)
    app = ProclabApp(controller, refresh=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.lab.table.row_count == 3)
        app.lab.table.select(ids[0])
        await pilot.press("a")
        await pilot.pause(0.1)
        shown = app.screen._compositor.render_strips()[0].text
        # the count whole, the name cut where the line ends, and said to be
        assert "esc stops joining the batch of 3 with a-child" in shown, shown
        assert shown.rstrip().endswith("…"), shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.lab.joining, timeout=5)


async def test_a_join_that_times_out_says_what_the_child_is_doing(controller):
    """J's timeout said "it is still running" of a child that had been paused meanwhile."""
    (rec_id,) = controller.spawn(build_spec(f"{TASKS}:tick", "(100,)"))
    app = ProclabApp(controller, refresh=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: controller.output(rec_id))  # past its start-up
        await pilot.press("J", "enter")  # at most 5 s, the prompt's default
        await wait_for(pilot, lambda: app.lab.joining)
        controller.pause(rec_id)
        await wait_for(pilot, lambda: not app.lab.joining, timeout=10)
        note = next(n for n in _notes(app) if "timed out" in n)
        assert note.endswith("it is stopped (paused by SIGSTOP): p resumes it"), note
        controller.terminate(rec_id)


def test_children_that_compute_and_sleep_are_as_fast_as_their_overlap():
    """Each spins 1.2 s and sleeps 0.8 s: 4 s one after another, 2 s at once. The summary
    said '1.2x parallel speed-up' (CPU over wall), and at 1 s and 1 s 'no parallel
    speed-up', where `proclab experiment parallel` measured 2.00x."""
    rows = [_row(1, 0.0, 2.0, 1.2, 0.01), _row(2, 0.01, 2.01, 1.2, 0.01)]
    figures = batch_figures(rows, T0 + 5, usable=(0, 1))
    assert figures.verdict is Verdict.PARALLEL
    assert batch_lines(figures)[1].startswith(
        "2.0x faster than one after another, their waits overlapping too (less if they"
        " waited for each other, on a lock): CPU-bound"
    )
    rows = [_row(1, 0.0, 2.0, 1.0, 0.01), _row(2, 0.01, 2.01, 1.0, 0.01)]
    figures = batch_figures(rows, T0 + 5, usable=(0, 1))
    assert figures.verdict is Verdict.PARALLEL and figures.busy_cores < 1.1
    assert batch_lines(figures)[1].startswith("2.0x faster than one after another")


def test_cpu_their_own_children_used_is_said_apart_and_a_tick_is_not():
    rows = [_row(1, 0.0, 1.0, 0.004), _row(2, 0.0, 1.0, 0.004)]
    rows = [replace(r, sample=replace(r.sample, reaped_cpu=0.95)) for r in rows]
    figures = batch_figures(rows, T0 + 5, usable=(0, 1))
    assert figures.verdict is Verdict.CONCURRENT  # they themselves waited
    assert batch_lines(figures)[2] == (
        "besides, processes they started and reaped used 1.90 s of CPU, not in these"
        " figures: each row is one process"
    )
    rows = [replace(r, sample=replace(r.sample, reaped_cpu=0.004)) for r in rows]
    assert len(batch_lines(batch_figures(rows, T0 + 5, usable=(0, 1)))) == 2


PARENT_OF_A_SPINNER = """
import multiprocessing, os, time

def spin(seconds):  # seconds of CPU, not of wall time: the same work on a loaded machine
    while time.process_time() < seconds:
        pass

def with_pool(seconds):  # the default context: in a forkserver child, its own fork server
    with multiprocessing.Pool(1) as pool:
        pool.map(spin, [seconds])
    print("joined", flush=True)

def pool_then_a_forked_sleeper(seconds):
    with multiprocessing.Pool(1) as pool:
        pool.map(spin, [0.01])
    if os.fork() == 0:  # holds what the fork server waits to see closed
        time.sleep(seconds)
        os._exit(0)

def parent(seconds, then_sleep=0):
    child = multiprocessing.get_context("fork").Process(target=spin, args=(seconds,))
    child.start()
    child.join()
    print("joined", flush=True)
    time.sleep(then_sleep)
"""


@pytest.mark.parametrize(
    ("method", "killed", "target"),
    [
        ("forkserver", False, "parent"),
        ("fork", False, "parent"),
        ("fork", True, "parent"),
        ("forkserver", True, "parent"),
        # The Pool's worker is its own fork server's child, not the child's: it was left
        # out, and the batch read "I/O-bound" and nothing more.
        ("forkserver", False, "with_pool"),
    ],
    ids=["forkserver", "fork", "fork-killed", "forkserver-killed", "forkserver-pool"],
)
def test_proclab_run_says_what_the_children_s_own_children_computed(
    tmp_path, method: str, killed: bool, target: str
):
    """Two children each start a grandchild that computes 0.5 s, and wait for it. Their own
    figures are a few ms of CPU, so the batch is I/O-bound: true of them. The summary used
    to stop there, as if no work was done; the grandchildren's CPU is now said beside it,
    whether a child told it (its exit record), wait4 did, or /proc (ended by SIGTERM)."""
    (tmp_path / "spinners.py").write_text(PARENT_OF_A_SPINNER)
    args = "(0.5, 60)" if killed else "(0.5,)"
    command = [PROCLAB, "run", f"spinners:{target}", "--args", args, "--count", "2"]
    command += ["--method", method, *(["--timeout", "3"] if killed else [])]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.stdout.count("| joined") == 2, out.stdout + out.stderr
    said = re.search(r"processes they started and reaped used ([\d.]+) (s|ms) of CPU", out.stdout)
    assert said, out.stdout
    seconds = float(said[1]) / (1 if said[2] == "s" else 1000)
    # 2 x 0.5 s, and a Pool's fork server starting (an interpreter: tens of ms)
    assert 0.9 <= seconds <= 1.4, out.stdout


def test_a_sum_holding_a_lower_bound_is_one_too():
    """A forkserver child killed and reaped by its fork server before proclab read its
    end keeps its last tick's CPU, shown `≥` in its row; the summary's sum dropped it."""
    rows = [_row(1, 0.0, 0.35, 0.33), _row(2, 0.01, 0.36, 0.33)]
    rows[1] = replace(rows[1], sample=replace(rows[1].sample, status="running"))
    times, verdict = batch_lines(batch_figures(rows, T0 + 5, usable=(0, 1)))
    assert times.endswith(", ≥660 ms of it on a CPU"), times
    assert verdict == (
        "≥1.8x parallel speed-up: CPU-bound, ≥660 ms of CPU work in 360 ms,"
        " ≥1.8 of the 2 cores they could use busy on average"
    )


def test_life_off_a_cpu_is_no_wait_where_the_cpu_is_a_lower_bound():
    """Two children that only computed, ended by --timeout, each read a tick before its
    end: 0.95 s of CPU in 1.47 s. The gap was CPU unread, and was called waits that
    overlapped: '2.0x faster than one after another, their own waits overlapping too'."""
    rows = [_row(1, 0.0, 1.47, 0.95), _row(2, 0.0, 1.47, 0.94)]
    rows = [replace(r, sample=replace(r.sample, status="running")) for r in rows]
    figures = batch_figures(rows, T0 + 5, usable=(0, 1))
    assert not figures.waits_overlapped
    assert "waits overlapping" not in batch_lines(figures)[1]


CPU_LOGGER = """
import time

def spin(seconds):
    next_print = 0.0
    while time.process_time() < seconds:
        if time.process_time() >= next_print:
            print("cpu", time.process_time(), flush=True)
            next_print = time.process_time() + 0.02
"""


def test_a_forkserver_child_ended_by_proclab_keeps_the_cpu_it_had_when_signalled(tmp_path):
    """Its fork server reaps it before proclab can read its end: its CPU was its last
    tick's, half a second short of what the child itself had printed (`≥940 ms` where it
    had used 1.46 s). Now read as proclab signals it."""
    (tmp_path / "logger.py").write_text(CPU_LOGGER)
    command = [PROCLAB, "run", "logger:spin", "--args", "(60,)", "--count", "2"]
    command += ["--method", "forkserver", "--timeout", "1.5"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    printed: dict[str, float] = {}
    for pid, cpu in re.findall(r"^\S+ (\d+) \| cpu ([\d.]+)$", out.stdout, re.MULTILINE):
        printed[pid] = float(cpu)
    rows = re.findall(
        r"^\S+\s+(\d+)\s+-15 SIGTERM\s+terminated\s+\S+ \S+\s+≥?([\d.]+) (s|ms)$",
        out.stdout,
        re.MULTILINE,
    )
    assert len(rows) == 2 and printed.keys() == {pid for pid, _, _ in rows}, out.stdout[-800:]
    for pid, figure, unit in rows:
        shown = float(figure) / (1 if unit == "s" else 1000)
        # A last line printed after the reading, as the signal went, is at most 20 ms on.
        assert shown >= printed[pid] - 0.03, (pid, shown, printed[pid])


def test_a_batch_over_at_once_states_no_speed_up():
    """Three children of an empty target, over in 15 ms, read '1.7x faster than one after
    another, their own waits overlapping too: CPU-bound, 18 ms of CPU work in 15 ms'."""
    rows = [_row(i, 0.001 * i, 0.012 + 0.001 * i, 0.006) for i in range(1, 4)]
    figures = batch_figures(rows, T0 + 5, usable=(0, 1))
    assert figures.verdict is Verdict.TOO_SHORT
    assert batch_lines(figures)[1] == (
        "no speed-up stated: under 100 ms, starting them is most of what was measured"
    )


def test_children_with_threads_of_their_own_claim_no_speed_up_from_cores_busy():
    """Each child hashed in two threads, keeping both cores busy alone: two at once took
    twice as long as one (1.0x), and read '1.9x parallel speed-up'."""
    rows = [_row(1, 0.0, 1.56, 1.48), _row(2, 0.0, 1.56, 1.47)]
    rows = [replace(r, sample=replace(r.sample, threads=3, others_cpu=0.7)) for r in rows]
    verdict = batch_lines(batch_figures(rows, T0 + 5, usable=(0, 1)))[1]
    assert "speed-up" not in verdict and "faster" not in verdict
    assert verdict.endswith(
        "; some ran threads of their own at once, so that is not what running them at once"
        " gained (time one alone to compare)"
    )


def test_children_whose_threads_queued_for_a_cpu_are_not_called_i_o_bound():
    """Two hashing children on a busy machine: 245 ms of CPU each in 665 ms, their
    threads queued for a CPU, which only a main thread's figures would have said; they
    read 'I/O-bound, they waited at the same time'."""
    rows = [_row(1, 0.0, 0.665, 0.245), _row(2, 0.0, 0.656, 0.244)]
    rows = [replace(r, sample=replace(r.sample, threads=3, others_cpu=0.24)) for r in rows]
    figures = batch_figures(rows, T0 + 5, usable=(0, 1))
    assert figures.verdict is Verdict.CONCURRENT
    verdict = batch_lines(figures)[1]
    assert "they waited" not in verdict and "speed-up" not in verdict
    assert verdict == (
        "not said whether CPU- or I/O-bound: some ran threads of their own at once, whose"
        " waits for a CPU are not counted (time one alone to compare)"
    )


HASHER = """
import hashlib, threading

def work(rounds):
    data = b"x" * (8 << 20)
    def hash_it():  # sha256 lets go of the GIL: the two threads run at once
        for _ in range(rounds):
            hashlib.sha256(data).digest()
    threads = [threading.Thread(target=hash_it) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
"""


@pytest.mark.parametrize("method", ["forkserver", "fork"])
def test_proclab_run_sees_children_whose_own_threads_did_the_work(tmp_path, method: str):
    """Read from the child's exit record (forkserver) or its zombie and wait4 (fork): the
    CPU its other threads ran is known, and no speed-up is claimed from cores busy."""
    (tmp_path / "hasher.py").write_text(HASHER)
    command = [PROCLAB, "run", "hasher:work", "--args", "(15,)", "--count", "2"]
    out = subprocess.run(
        [*command, "--method", method], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "some ran threads of their own at once" in out.stdout, out.stdout
    assert "speed-up" not in out.stdout


def test_a_child_ends_as_its_target_returns_though_its_fork_server_cannot_end_yet(tmp_path):
    """Stopping a child's own fork server waited for good while a process the target
    forked by hand held the server's pipe: the child, done, lived as long as it did."""
    (tmp_path / "spinners.py").write_text(PARENT_OF_A_SPINNER)
    command = [PROCLAB, "run", "spinners:pool_then_a_forked_sleeper", "--args", "(5,)"]
    out = subprocess.run(
        [*command, "--method", "forkserver"], capture_output=True, text=True, timeout=60,
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    wall = re.search(
        r"^ForkServerProcess-1\s+\d+\s+0\s+exited\s+([\d.]+) (s|ms)\s", out.stdout, re.M
    )
    assert wall, out.stdout
    assert float(wall[1]) / (1 if wall[2] == "s" else 1000) < 2.0, out.stdout


def test_a_no_said_from_a_lower_bound_says_it_may_understate():
    rows = [_row(1, 0.0, 1.0, 0.2), _row(2, 0.0, 1.0, 0.2)]
    rows[1] = replace(rows[1], sample=replace(rows[1].sample, status="running"))
    verdict = batch_lines(batch_figures(rows, T0 + 5, usable=(0, 1)))[1]
    assert verdict.startswith("concurrency, not parallelism: I/O-bound")
    assert verdict.endswith(
        "; some of their CPU was read before their end, so this may understate it"
    )
