"""The controller's commands and guarantees, against real processes."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from support import (
    TASKS,
    grandchild_pid,
    kill_if_running,
    lines,
    run_task,
    start_task,
    wait_until,
)

from proclab.core import procfs, step_aside
from proclab.core.bootstrap import EXIT_RECORD, parse_exit_record, read_exit_record
from proclab.core.classify import classify
from proclab.core.controller import Controller, _describe
from proclab.core.errors import SpawnRefused, UnknownProcess
from proclab.core.launcher import Launcher
from proclab.core.model import (
    Cleared,
    Exited,
    OutputLine,
    ProcessRow,
    ProcState,
    Sampled,
    Spawned,
    StateChanged,
)
from proclab.core.spec import build_spec
from proclab.tui.fmt import printed_line
from proclab.tui.screens.details import describe


def test_file_target_prints_and_writes(controller, tmp_path):
    lesson = tmp_path / "day36.py"
    lesson.write_text(
        "from multiprocessing import Process\n"
        "def task(name, age, gender):\n"
        "    print(name, age, gender)\n"
        "    with open('a.txt', 'w', encoding='utf-8') as f:\n"
        "        f.write('helloworld')\n"
        "if __name__ == '__main__':\n"
        "    raise SystemExit('the main block must not run in proclab or its children')\n"
    )
    events = []
    controller.subscribe(events.append)
    spec = build_spec(
        f"{lesson}:task", kwargs="{'name': 'jerry', 'age': 20, 'gender': 'male'}", cwd=str(tmp_path)
    )
    (rec_id,) = controller.spawn(spec)
    assert controller.join([rec_id], timeout=20)
    row = controller.row(rec_id)
    assert row.state is ProcState.EXITED, row
    printed = [e for e in events if isinstance(e, OutputLine)]
    assert [(e.text, e.stream, e.pid, e.name) for e in printed] == [
        ("jerry 20 male", "stdout", row.pid, row.name)
    ]
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "helloworld"


def test_relative_file_target_and_module_in_working_folder(controller, tmp_path):
    (tmp_path / "lesson.py").write_text("def hello(who='world'):\n    print('hello', who)\n")
    for target in ("lesson.py:hello", "lesson:hello"):
        spec = build_spec(target, "('there',)", cwd=str(tmp_path))
        (rec_id,) = controller.spawn(spec)
        assert controller.join([rec_id], timeout=20)
        assert lines(controller, rec_id) == ["hello there"], target


def test_ten_sleepers_run_at_once(controller):
    spec = build_spec(f"{TASKS}:sleep", "(1,)")
    began = time.monotonic()
    ids = controller.spawn(spec, 10)
    assert controller.join(ids, timeout=20)
    elapsed = time.monotonic() - began
    assert all(controller.row(i).state is ProcState.EXITED for i in ids)
    assert elapsed < 5, f"ten 1 s sleeps took {elapsed:.1f} s: they did not run at once"


def _started_and_live(row) -> bool:
    """Running, sleeping or paused (the sampler's word for it): started, not ended."""
    return row.pid is not None and row.state.is_live and row.state is not ProcState.STARTING


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_children_asked_for_at_once_each_end_and_print_on_their_own(controller, tmp_path, method):
    """Children asked for at once are started back to back and recorded after the burst:
    the first to end is seen ended, with all it printed, while the siblings started
    after it run on (none holds its pipes), and each row has its own pid and times."""
    lesson = tmp_path / "burst.py"
    lesson.write_text(
        "import multiprocessing, time\n"
        "def task():\n"
        "    name = multiprocessing.current_process().name\n"
        "    print(name, 'here')\n"
        "    if name != 'burst-1':\n"
        "        time.sleep(30)\n"
    )
    events: list = []
    controller.subscribe(events.append)
    spec = build_spec(f"{lesson}:task", cwd=str(tmp_path), method=method, name="burst")
    ids = controller.spawn(spec, 24)
    first, rest = ids[0], ids[1:]
    assert controller.join([first], timeout=20)
    assert controller.row(first).state is ProcState.EXITED
    assert wait_until(lambda: all(_started_and_live(controller.row(i)) for i in rest), 20)
    rows = [controller.row(i) for i in ids]
    assert len({r.pid for r in rows}) == 24
    assert all(r.started_at is not None and r.started_at >= r.created_at for r in rows)
    assert rows[0].ended_at is not None and rows[0].ended_at >= rows[0].started_at
    said = {(e.name, e.text) for e in events if isinstance(e, OutputLine)}
    assert wait_until(
        lambda: (
            {(e.name, e.text) for e in events if isinstance(e, OutputLine)}
            >= {(f"burst-{n}", f"burst-{n} here") for n in range(1, 25)}
        ),
        20,
    ), said
    for rec_id in rest:
        controller.kill(rec_id)
    assert controller.join(rest, timeout=20)


def test_a_child_whose_end_cannot_be_watched_is_killed_and_its_siblings_run_on(
    controller, monkeypatch
):
    """No fd left to watch one child of a burst by (EMFILE): it is not left running
    unwatched; its row fails, saying why, and the children started with it are
    recorded and run as usual."""
    import errno

    from proclab.core import launcher

    calls = []
    real = launcher._exit_fds

    def exit_fds(process, pid, method):
        calls.append(pid)
        if len(calls) == 2:
            raise OSError(errno.EMFILE, "Too many open files")
        return real(process, pid, method)

    monkeypatch.setattr(launcher, "_exit_fds", exit_fds)
    ids = controller.spawn(build_spec(f"{TASKS}:sleep", "(30,)"), 4)
    assert controller.wait_started(ids, 20)
    rows = [controller.row(i) for i in ids]
    failed = [r for r in rows if r.state is ProcState.FAILED]
    assert len(failed) == 1
    assert failed[0].error == "could not watch it: OSError: [Errno 24] Too many open files"
    assert not psutil.pid_exists(calls[1]) or psutil.Process(calls[1]).status() == "zombie"
    running = [r for r in rows if _started_and_live(r)]
    assert len(running) == 3 and all(psutil.pid_exists(r.pid) for r in running)
    for row in running:
        controller.kill(row.id)
    assert controller.join([r.id for r in running], timeout=20)


def test_events_follow_the_life_cycle(controller):
    events = []
    controller.subscribe(events.append)
    row = run_task(controller, "exit_with", "(0,)")
    mine = [e for e in events if getattr(getattr(e, "row", None), "id", None) == row.id]
    assert isinstance(mine[0], Spawned) and mine[0].row.state is ProcState.STARTING
    assert isinstance(mine[-1], Exited) and mine[-1].row.exitcode == 0
    transitions = [(e.old, e.row.state) for e in mine if isinstance(e, StateChanged)]
    assert transitions[0] == (ProcState.STARTING, ProcState.RUNNING)
    assert transitions[-1][1] is ProcState.EXITED


def test_pause_and_resume(controller):
    (rec_id,) = start_task(controller, "tick", "(50,)")
    assert wait_until(lambda: lines(controller, rec_id))
    controller.pause(rec_id)
    assert wait_until(lambda: controller.row(rec_id).state is ProcState.STOPPED)
    assert psutil.Process(controller.row(rec_id).pid).status() == psutil.STATUS_STOPPED
    count = len(lines(controller, rec_id))
    time.sleep(0.3)
    assert len(lines(controller, rec_id)) == count, "a paused child kept printing"
    controller.resume(rec_id)
    assert wait_until(lambda: controller.row(rec_id).state is not ProcState.STOPPED)
    assert wait_until(lambda: len(lines(controller, rec_id)) > count)


def test_a_pause_taken_back_while_the_child_starts_leaves_it_running(controller, monkeypatch):
    """`p p` on a child still in its start-up: the pause waits for the start-up, and the
    resume takes it back (it had sent its SIGCONT first, and the child ended stopped)."""
    from proclab.core import signals

    started = threading.Event()
    monkeypatch.setattr(signals, "_is_ready", lambda pid: started.is_set())
    (rec_id,) = start_task(controller, "tick", "(50,)")
    assert wait_until(lambda: lines(controller, rec_id))  # its start-up is done, but held
    controller.pause(rec_id)
    controller.resume(rec_id)
    started.set()
    time.sleep(0.3)  # the pause's thread looks every 2 ms
    pid = controller.row(rec_id).pid
    assert psutil.Process(pid).status() != psutil.STATUS_STOPPED
    count = len(lines(controller, rec_id))
    assert wait_until(lambda: len(lines(controller, rec_id)) > count)
    controller.pause(rec_id)  # asked once it is ready: at once, as before
    assert wait_until(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED)


def test_a_sigterm_takes_back_a_pause_still_waiting_and_none_is_left_behind(
    controller, monkeypatch
):
    """A reviewer's: a SIGTERM (terminate, or shutdown's own) after a pause that waited
    for the start-up left the pause to come after it; and a pause whose child ended first
    was never forgotten."""
    from proclab.core import signals

    started = threading.Event()
    monkeypatch.setattr(signals, "_is_ready", lambda pid: started.is_set())
    (stubborn,) = start_task(controller, "ignore_sigterm", "(30,)")
    (short,) = start_task(controller, "sleep", "(0.2,)")
    assert wait_until(lambda: "ignoring SIGTERM" in "".join(lines(controller, stubborn)))
    controller.pause(stubborn)
    controller.terminate(stubborn)  # ignored: it runs on, and must not be stopped later
    controller.pause(short)  # it ends before its start-up is taken as done
    assert controller.join([short], timeout=10)
    assert wait_until(lambda: short not in controller._signals._pauses_waiting)
    started.set()
    time.sleep(0.3)
    assert psutil.Process(controller.row(stubborn).pid).status() != psutil.STATUS_STOPPED
    assert controller._signals._pauses_waiting == {}


def test_a_paused_cpu_bound_child_stays_cpu_bound(controller):
    """Its time stopped is left out of its life: counted in, a spinner paused for longer
    than it had run read as I/O-bound, and stayed so after it ended."""
    (rec_id,) = start_task(controller, "spin", "(30,)")
    assert wait_until(lambda: controller.row(rec_id).state is ProcState.RUNNING)
    time.sleep(1.0)
    controller.pause(rec_id)
    assert wait_until(lambda: controller.row(rec_id).state is ProcState.STOPPED)
    time.sleep(2.0)  # stopped for twice as long as it spun
    row = controller.row(rec_id)
    now = time.time()
    assert 1.8 < row.stopped_time(now) < row.wall_time(now) - 0.8
    assert classify(row, now) == "CPU"
    controller.resume(rec_id)
    assert wait_until(lambda: controller.row(rec_id).state is not ProcState.STOPPED)
    stopped = controller.row(rec_id).stopped_s
    assert 1.8 < stopped < 2.6 and controller.row(rec_id).stopped_since is None
    time.sleep(0.3)
    controller.pause(rec_id)  # and ends while stopped: that stop counts up to its end
    assert wait_until(lambda: controller.row(rec_id).state is ProcState.STOPPED)
    time.sleep(0.5)
    controller.kill(rec_id)
    assert controller.join([rec_id], timeout=5)
    row = controller.row(rec_id)
    assert row.stopped_since is None and row.stopped_s > stopped + 0.4
    assert classify(row, time.time() + 60) == "CPU"  # what the ended row says from now on


def test_terminate_a_paused_child(controller):
    (rec_id,) = start_task(controller, "sleep", "(30,)")
    controller.pause(rec_id)
    assert wait_until(lambda: controller.row(rec_id).state is ProcState.STOPPED)
    controller.terminate(rec_id)
    assert controller.join([rec_id], timeout=5)
    assert controller.row(rec_id).state is ProcState.TERMINATED


def test_terminate_escalates_to_kill(controller):
    notices = []
    controller.subscribe(lambda e: notices.append(e) if type(e).__name__ == "Notice" else None)
    (rec_id,) = start_task(controller, "ignore_sigterm", "(30,)")
    assert wait_until(lambda: lines(controller, rec_id))
    controller.terminate(rec_id, escalate_after=0.3)
    assert controller.join([rec_id], timeout=5)
    assert controller.row(rec_id).state is ProcState.KILLED
    assert any("SIGKILL" in n.text for n in notices)


def test_rename(controller):
    (rec_id,) = start_task(controller, "sleep", "(5,)")
    controller.rename(rec_id, "  worker-a  ")
    assert controller.row(rec_id).name == "worker-a"
    controller.kill(rec_id)


def test_restart_starts_the_same_spec_again(controller):
    row = run_task(controller, "exit_with", "(4,)")
    controller.restart(row.id)
    assert wait_until(lambda: len(controller.rows()) == 2)
    new = next(r for r in controller.rows() if r.id != row.id)
    assert new.spec == row.spec and new.parent_id == row.id
    assert controller.join([new.id], timeout=20)
    assert controller.row(new.id).exitcode == 4 and controller.row(new.id).pid != row.pid


def test_restart_a_running_child_ends_it_first(controller):
    (rec_id,) = start_task(controller, "sleep", "(30,)")
    controller.restart(rec_id)
    assert controller.join([rec_id], timeout=5)
    assert controller.row(rec_id).state is ProcState.TERMINATED
    assert wait_until(lambda: len(controller.rows()) == 2)
    new = next(r for r in controller.rows() if r.id != rec_id)
    assert new.parent_id == rec_id
    controller.kill(controller.wait_started([new.id]) and new.id)


def test_exited_records_stay_until_cleared(controller):
    row = run_task(controller, "exit_with", "(0,)")
    (live,) = start_task(controller, "sleep", "(30,)")
    events = []
    controller.subscribe(events.append)
    time.sleep(0.3)
    assert controller.row(row.id).state is ProcState.EXITED
    assert controller.clear_exited() == 1
    assert [r.id for r in controller.rows()] == [live]
    assert any(isinstance(e, Cleared) and e.ids == (row.id,) for e in events)
    with pytest.raises(UnknownProcess):
        controller.row(row.id)
    controller.kill(live)


def test_commands_on_an_ended_child_are_errors(controller):
    row = run_task(controller, "exit_with", "(0,)")
    for command in (controller.terminate, controller.kill, controller.pause, controller.resume):
        with pytest.raises(UnknownProcess, match="already ended"):
            command(row.id)


def test_join_with_timeout(controller):
    (rec_id,) = start_task(controller, "sleep", "(30,)")
    began = time.monotonic()
    assert controller.join([rec_id], timeout=0.3) is False
    assert 0.25 < time.monotonic() - began < 2
    controller.kill(rec_id)
    assert controller.join([rec_id], timeout=5) is True


def test_join_async_leaves_the_event_loop_free(controller):
    (rec_id,) = start_task(controller, "sleep", "(1,)")

    async def scenario() -> tuple[bool, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        done = await controller.join_async([rec_id], timeout=10)
        task.cancel()
        return done, ticks

    done, ticks = asyncio.run(scenario())
    assert done and ticks > 20, "the loop was blocked while the join waited"
    assert asyncio.run(controller.join_async([rec_id], timeout=0.1)) is True


def test_join_async_timeout(controller):
    (rec_id,) = start_task(controller, "sleep", "(30,)")
    assert asyncio.run(controller.join_async([rec_id], timeout=0.2)) is False
    controller.kill(rec_id)


def test_on_exit_callback(controller):
    seen = []
    (rec_id,) = start_task(controller, "exit_with", "(5,)")
    controller.on_exit(rec_id, seen.append)
    assert wait_until(lambda: seen)
    assert seen[0].exitcode == 5
    controller.on_exit(rec_id, seen.append)  # already over: called at once
    assert len(seen) == 2


def test_max_procs_refuses_past_the_limit():
    with Controller(max_procs=3, sample_interval=0.5) as c:
        spec = build_spec(f"{TASKS}:sleep", "(30,)")
        c.spawn(spec, 2)
        with pytest.raises(SpawnRefused, match="limit of 3"):
            c.spawn(spec, 2)
        assert len(c.rows()) == 2
        c.spawn(spec, 1)


def test_no_zombie_after_children_exit(controller):
    ids = controller.spawn(build_spec(f"{TASKS}:exit_with", "(0,)", method="fork"), 5)
    ids += controller.spawn(build_spec(f"{TASKS}:exit_with", "(0,)", method="spawn"), 3)
    assert controller.join(ids, timeout=20)
    zombies = [
        p.pid
        for p in psutil.Process().children(recursive=True)
        if p.status() == psutil.STATUS_ZOMBIE
    ]
    assert zombies == []


def test_reaped_although_a_grandchild_holds_the_sentinel(controller):
    """The grandchild inherits the child's copy of multiprocessing's sentinel pipe; the
    child must still be reaped the moment it ends (proclab waits on a pidfd)."""
    spec = build_spec("os:_exit", "(0,)", method="spawn")
    (rec_id,) = controller.spawn(spec)
    assert controller.join([rec_id], timeout=20)
    (rec_id,) = start_task(controller, "with_grandchild", "(30,)", method="spawn")
    grandchild = grandchild_pid(controller, rec_id)
    pid = controller.row(rec_id).pid
    os.kill(pid, 9)  # the child only: its grandchild lives on, holding the inherited fds
    assert controller.join([rec_id], timeout=2), "child not reaped while its grandchild lives"
    os.kill(grandchild, 9)


def test_affinity_pins_the_child(controller):
    cpus = sorted(os.sched_getaffinity(0))
    (rec_id,) = start_task(controller, "sleep", "(5,)", affinity=str(cpus[0]))
    pid = controller.row(rec_id).pid
    assert wait_until(lambda: os.sched_getaffinity(pid) == {cpus[0]})
    controller.kill(rec_id)


TWO_CPUS = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="one CPU: the launcher has nowhere to step to"
)


def _masks_while_recording(monkeypatch, child_on_launchers_cpu: bool) -> list[set[int]]:
    """The launcher's CPU masks as it records each start, with the kernel's choice of the
    child's CPU made for it: the launcher's own, or another."""
    while_recording: list[set[int]] = []
    record = Launcher._record_each

    def spy(self, started):  # type: ignore[no-untyped-def]
        while_recording.append(os.sched_getaffinity(0))
        record(self, started)

    def child_cpu(pid: int) -> int:
        here = step_aside._getcpu()
        return here if child_on_launchers_cpu else next(iter(os.sched_getaffinity(0) - {here}))

    monkeypatch.setattr(Launcher, "_record_each", spy)
    monkeypatch.setattr(step_aside.procfs, "last_cpu", child_cpu)
    return while_recording


@TWO_CPUS
def test_fork_children_get_every_cpu_though_the_launcher_steps_aside(controller, monkeypatch):
    """The launcher moves off the CPU a lone fork child waits on while it records it (so
    the child runs at once), and back before it forks again: lone children and bursts
    alike inherit every CPU proclab may use, and the launcher ends with all of them."""
    allowed = os.sched_getaffinity(0)
    while_recording = _masks_while_recording(monkeypatch, child_on_launchers_cpu=True)
    ids = (
        start_task(controller, "sleep", "(30,)", method="fork")
        + start_task(controller, "sleep", "(30,)", method="fork", count=20)
        + start_task(controller, "sleep", "(30,)", method="fork")
    )
    for rec_id in ids:
        assert os.sched_getaffinity(controller.row(rec_id).pid) == allowed
    launcher = controller._launcher._thread.native_id  # back once its recording is done
    assert wait_until(lambda: os.sched_getaffinity(launcher) == allowed, 5)
    assert any(len(mask) == len(allowed) - 1 for mask in while_recording), while_recording


@TWO_CPUS
def test_the_launcher_stays_when_the_child_waits_on_another_cpu(controller, monkeypatch):
    """A child the kernel queued on another CPU keeps it: the launcher, moving off its own,
    would land on the child's and take it from the child."""
    allowed = os.sched_getaffinity(0)
    while_recording = _masks_while_recording(monkeypatch, child_on_launchers_cpu=False)
    start_task(controller, "sleep", "(30,)", method="fork")
    assert while_recording and all(mask == allowed for mask in while_recording)


@TWO_CPUS
def test_a_childs_start_latency_leaves_out_the_launchers_step(controller, monkeypatch):
    """Start latency is how long Process.start() took, as it would for the user: not the
    time proclab's launcher spent moving to another CPU after the fork."""
    moves: list[float] = []
    real = os.sched_setaffinity

    def slow(pid: int, mask: set[int]) -> None:
        if threading.current_thread().name == "proclab-launcher":
            moves.append(time.monotonic())
            time.sleep(2.0)  # far past what a loaded machine adds to a start
        real(pid, mask)

    monkeypatch.setattr(os, "sched_setaffinity", slow)
    monkeypatch.setattr(step_aside.procfs, "last_cpu", lambda pid: step_aside._getcpu())
    row = run_task(controller, "sleep", "(0,)", method="fork")
    assert moves, "the launcher did not step aside"
    assert row.start_latency is not None and row.start_latency < 1.5, row.start_latency


@TWO_CPUS
def test_only_the_launchers_armed_fork_steps_aside(controller, monkeypatch):
    """The step is taken in an after-fork hook, which every fork in proclab's process
    runs: a fork from any other thread (here multiprocessing's, from the test) moves
    nothing, while the launcher's own lone fork child still has it step."""
    allowed = os.sched_getaffinity(0)
    monkeypatch.setattr(step_aside.procfs, "last_cpu", lambda pid: step_aside._getcpu())
    moved: list[str] = []
    real = os.sched_setaffinity

    def spy(pid: int, mask: set[int]) -> None:
        moved.append(threading.current_thread().name)
        real(pid, mask)

    monkeypatch.setattr(os, "sched_setaffinity", spy)
    plain = multiprocessing.get_context("fork").Process(target=os.getpid)
    plain.start()
    plain.join()
    assert moved == [] and os.sched_getaffinity(0) == allowed
    run_task(controller, "sleep", "(0,)", method="fork")
    assert "proclab-launcher" in moved and set(moved) == {"proclab-launcher"}, moved


FORKS_AND_TELLS = """
import os

def fork_then_tell():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    print(sorted(os.sched_getaffinity(0)), flush=True)
"""


@TWO_CPUS
def test_a_fork_child_that_forks_keeps_every_cpu(controller, monkeypatch, tmp_path):
    """The child is forked while the launcher is armed to step aside, and its thread's
    copy says so: its own fork must not step it off a CPU."""
    monkeypatch.setattr(step_aside.procfs, "last_cpu", lambda pid: step_aside._getcpu())
    (tmp_path / "forker.py").write_text(FORKS_AND_TELLS)
    (rec_id,) = controller.spawn(
        build_spec(f"{tmp_path / 'forker.py'}:fork_then_tell", method="fork")
    )
    assert controller.join([rec_id], timeout=20)
    assert lines(controller, rec_id) == [str(sorted(os.sched_getaffinity(0)))]


def test_newest_child_is_the_last_the_thread_forked():
    """What the after-fork hook asks /proc for, the child's pid not being told there."""
    first = subprocess.Popen(["sleep", "30"])
    second = subprocess.Popen(["sleep", "30"])
    try:
        assert procfs.newest_child() == second.pid
    finally:
        for p in (first, second):
            p.kill()
            p.wait()


def test_samples_measure_children(controller):
    (spinner,) = start_task(controller, "spin", "(5,)")
    (sleeper,) = start_task(controller, "tick", "(20,)")

    def sample(rec_id: int):
        return controller.row(rec_id).sample or _none

    # spinning: on a CPU or waiting for one through a whole tick, however loaded the machine
    assert wait_until(
        lambda: (
            sample(spinner).cpu_delta + sample(spinner).run_delay_delta
            > 0.8 * sample(spinner).interval
        ),
        5,
    )
    spin = sample(spinner)
    assert spin.rss > 1_000_000 and spin.threads >= 1
    assert spin.core in os.sched_getaffinity(0)

    def its_core_is_busy() -> bool:
        system, core = controller.system(), sample(spinner).core
        return system is not None and core is not None and system.per_core[core] > 50

    assert wait_until(its_core_is_busy, 5), controller.system()
    system = controller.system()
    assert len(system.per_core) == psutil.cpu_count()
    assert max(system.per_core) / len(system.per_core) <= system.total <= 100
    assert 0 < system.mem_used < system.mem_total
    # every 20 ms sleep is a voluntary switch off the CPU
    assert wait_until(lambda: sample(sleeper).ctx_voluntary >= 10, 5), sample(sleeper)
    controller.kill(spinner)
    controller.kill(sleeper)


class _none:
    cpu_percent = cpu_delta = run_delay_delta = interval = 0.0
    core = None
    ctx_voluntary = 0


def test_close_ends_everything_even_sigterm_ignorers():
    c = Controller(sample_interval=0.5, grace=0.3).start()
    ids = c.spawn(build_spec(f"{TASKS}:ignore_sigterm", "(60,)"), 2)
    ids += c.spawn(build_spec(f"{TASKS}:sleep", "(60,)", method="fork"), 2)
    c.wait_started(ids)
    assert wait_until(lambda: all(lines(c, i) for i in ids[:2]), 10)  # SIGTERM now ignored
    c.close()
    states = {c.row(i).state for i in ids}
    assert states <= {ProcState.KILLED, ProcState.TERMINATED}
    assert ProcState.KILLED in states


def test_spawn_while_starting_is_queued_in_order(controller):
    events = []
    controller.subscribe(events.append)
    ids = controller.spawn(build_spec(f"{TASKS}:exit_with", "(0,)", method="spawn"), 4)
    assert controller.join(ids, timeout=30)
    # every row appeared, as starting, before the first was started; then in order
    mine = [e for e in events if isinstance(e, Spawned | StateChanged)]
    assert [(type(e), e.row.id) for e in mine[:4]] == [(Spawned, i) for i in ids]
    assert all(e.row.state is ProcState.STARTING for e in mine[:4])
    started = [e.row.id for e in mine if getattr(e, "old", None) is ProcState.STARTING]
    assert started == list(ids)
    pids = [controller.row(i).pid for i in ids]
    assert len(set(pids)) == 4
    starts = [controller.row(i).started_at for i in ids]
    assert starts == sorted(starts)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_sigterm_right_after_start_ends_the_child(controller, method):
    """Even before the child's bootstrap has run, and although a fork child inherits
    proclab's own Python signal handlers."""
    received = []
    old = signal.signal(signal.SIGTERM, lambda *a: received.append(a))
    try:
        (rec_id,) = start_task(controller, "sleep", "(30,)", method=method)
        controller.terminate(rec_id)
        assert controller.join([rec_id], timeout=5), "SIGTERM was caught by an inherited handler"
        assert controller.row(rec_id).state is ProcState.TERMINATED
        assert received == []
    finally:
        signal.signal(signal.SIGTERM, old)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_short_child_still_has_its_cpu_time(controller, method):
    """Ended before its first sample: its figures come from /proc while it is a zombie,
    or from the exit record its bootstrap writes (a forkserver child is reaped by the
    fork server); the record never shows up as output."""
    row = run_task(controller, "count", "(300_000,)", method=method)
    assert row.sample is not None and row.sample.cpu_time > 0.005
    assert all("proclab-exit" not in line.text for line in controller.output(row.id))
    assert lines(controller, row.id) == ["counted to 300,000"]


SPIN_THEN_SLEEP = """
import time

def spin_then_sleep():
    end = time.process_time() + 0.035
    while time.process_time() < end:
        pass
    print(f"{time.process_time():.6f}", flush=True)
    time.sleep(60)
"""


def killed_after_its_line(
    tmp_path: Path, source: str, function: str, method: str
) -> tuple[ProcessRow, float]:
    """A child running `function` of `source`, killed once it printed its CPU time so far:
    its row, and the time it printed (its own, by process_time)."""
    (tmp_path / "child.py").write_text(source)
    with Controller(sample_interval=30.0, grace=1.0) as controller:
        spec = build_spec(f"{tmp_path / 'child.py'}:{function}", method=method)
        (rec_id,) = controller.spawn(spec)
        assert wait_until(lambda: lines(controller, rec_id), 30)
        controller.kill(rec_id)
        assert controller.join([rec_id], timeout=30)
        return controller.row(rec_id), float(lines(controller, rec_id)[0])


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_killed_childs_cpu_time_is_exact(tmp_path, method):
    """A child killed before its first sample writes no exit record: proclab, which forked
    it, reaps it with wait4, whose CPU times are exact. /proc counts them in clock ticks
    (10 ms), and a child that measured 35 ms of its own was shown 30 or 40. What it
    measured is all there, and a little more: its exit (its memory unmapped) is CPU it
    used too, 1-3 ms here."""
    row, measured = killed_after_its_line(tmp_path, SPIN_THEN_SLEEP, "spin_then_sleep", method)
    assert row.sample is not None
    assert measured - 0.0001 <= row.sample.cpu_time <= measured + 0.01, (
        row.sample.cpu_time,
        measured,
    )


REAPS_ITS_OWN = """
import multiprocessing, time

def spin():
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass

def reaps_its_own():
    child = multiprocessing.get_context("fork").Process(target=spin)
    child.start()
    child.join()
    print(f"{time.process_time():.6f}", flush=True)
"""


def test_a_child_that_reaped_its_own_child_is_not_given_its_cpu_time(tmp_path):
    """wait4 adds to a child's CPU times those of the children it reaped; a child that
    reaped one tells its own (its exit record), and the row shows that, not 0.3 s more."""
    (tmp_path / "parent.py").write_text(REAPS_ITS_OWN)
    with Controller(sample_interval=30.0, grace=1.0) as controller:
        spec = build_spec(f"{tmp_path / 'parent.py'}:reaps_its_own", method="fork")
        (rec_id,) = controller.spawn(spec)
        assert controller.join([rec_id], timeout=30)
        row = controller.row(rec_id)
    measured = float(lines(controller, rec_id)[0])
    assert row.sample is not None
    assert abs(row.sample.cpu_time - measured) < 0.01, (row.sample.cpu_time, measured)


REAPS_THEN_WAITS = (
    REAPS_ITS_OWN
    + """
def reaps_then_waits():
    reaps_its_own()
    time.sleep(60)  # killed here: no exit record
"""
)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_killed_child_that_reaped_its_own_is_not_given_its_cpu_time(tmp_path, method):
    """Killed, a child writes no exit record, and wait4's figures count the children it
    reaped: it was shown its grandchild's 0.3 s (and 2.1 s for one of 2 s)."""
    row, measured = killed_after_its_line(tmp_path, REAPS_THEN_WAITS, "reaps_then_waits", method)
    assert row.state is ProcState.KILLED and row.sample is not None
    # what it reaped is taken out in clock ticks (10 ms): its own, not 0.3 s more
    assert abs(row.sample.cpu_time - measured) < 0.05, (row.sample.cpu_time, measured)


FORGES_A_RECORD = """
import sys

def forge():
    sys.stderr.write("\\x1eproclab-exit 99.0 99.0 1 1 0.0\\n")
"""


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_a_line_like_an_exit_record_is_output_and_tells_no_figures(tmp_path, method):
    """A child's exit record has a pipe of its own: a line on stderr shaped as the record
    once was is the child's output, shown, and not its CPU time."""
    (tmp_path / "forger.py").write_text(FORGES_A_RECORD)
    with Controller(sample_interval=30.0, grace=1.0) as controller:
        (rec_id,) = controller.spawn(build_spec(f"{tmp_path / 'forger.py'}:forge", method=method))
        assert controller.join([rec_id], timeout=30)
        row = controller.row(rec_id)
        shown = lines(controller, rec_id, "stderr")
    assert len(shown) == 1 and "proclab-exit 99.0" in shown[0], shown
    assert row.sample is not None and row.sample.cpu_time < 5, row.sample


REUSES_ITS_FDS = """
import os

kept = []

def close_all_then_open(folder):
    os.closerange(3, 4096)  # as a daemon does
    for n in range(64):  # the lowest free numbers, the record's among them
        kept.append(open(os.path.join(folder, f"{n}.txt"), "wb"))
"""


def test_a_child_that_reused_its_records_fd_number_keeps_its_files_clean(tmp_path):
    """A forkserver child writes its exit record as it ends. One whose code closed every
    fd and opened files has the record's fd number on one of its own files by then: the
    record must not go into it."""
    (tmp_path / "reuser.py").write_text(REUSES_ITS_FDS)
    files = tmp_path / "files"
    files.mkdir()
    with Controller(sample_interval=30.0, grace=1.0) as controller:
        spec = build_spec(
            f"{tmp_path / 'reuser.py'}:close_all_then_open",
            f"({str(files)!r},)",
            method="forkserver",
        )
        (rec_id,) = controller.spawn(spec)
        assert controller.join([rec_id], timeout=30)
        assert controller.row(rec_id).exitcode == 0
    written = {f.name: f.stat().st_size for f in files.iterdir() if f.stat().st_size}
    assert len(list(files.iterdir())) == 64 and written == {}, written


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x1eproclab-exit 1 2 3 4 5\n",
        EXIT_RECORD.pack(0.1, 0.1, 1, 1, 0.0, 0.0, 0.0, 0.0)
        * 2,  # written twice: not the bootstrap's
        EXIT_RECORD.pack(0.1, 0.1, 1, 1, 0.0, 0.0, 0.0, 0.0)[:-1],
        EXIT_RECORD.pack(float("nan"), 0.1, 1, 1, 0.0, 0.0, 0.0, 0.0),
        EXIT_RECORD.pack(0.1, float("inf"), 1, 1, 0.0, 0.0, 0.0, 0.0),
        EXIT_RECORD.pack(0.1, 0.1, -1, 1, 0.0, 0.0, 0.0, 0.0),
        EXIT_RECORD.pack(1e300, 0.1, 1, 1, 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_an_exit_record_that_is_not_one_is_ignored(data):
    assert parse_exit_record(data) is None


def test_a_forkserver_child_s_wall_time_holds_its_cpu_time():
    """A forkserver child is born inside start(), which returns once the fork server has
    said its pid: counted from start()'s call, a first child was given the server's
    readiness too (92 ms of wall time for 30 ms of life); from its return, a short child
    showed more CPU than wall time. Its life counts from its bootstrap, when that is
    sooner (its exit record says when)."""
    with Controller(sample_interval=30.0, grace=1.0) as controller:
        spec = build_spec(f"{TASKS}:count", "(300_000,)", method="forkserver")
        ids = controller.spawn(spec, 6)
        assert controller.join(ids, timeout=60)
        rows = [controller.row(i) for i in ids]
    for row in rows:
        wall = row.wall_time(time.time())
        assert row.sample is not None and wall is not None
        assert wall >= row.sample.cpu_time - 0.001, (row.name, wall, row.sample.cpu_time)


def test_an_exit_record_reads_back():
    read, write = os.pipe()
    try:
        os.set_blocking(read, False)
        assert read_exit_record(read) is None  # nothing written: no record, no wait
        os.write(write, EXIT_RECORD.pack(0.25, 0.5, 3, 4, 0.125, 12.5, 1.5, 0.5))
        assert read_exit_record(read) == (0.25, 0.5, 3, 4, 0.125, 12.5, 1.5, 0.5)
    finally:
        os.close(read)
        os.close(write)


def test_an_unfinished_stderr_line_keeps_its_text(controller, tmp_path):
    (tmp_path / "partial.py").write_text(
        "import sys\ndef go():\n    sys.stderr.write('no newline')\n"
    )
    (rec_id,) = controller.spawn(build_spec("partial.py:go", cwd=str(tmp_path), method="fork"))
    assert controller.join([rec_id], timeout=10)
    assert lines(controller, rec_id, "stderr") == ["no newline"]
    assert controller.row(rec_id).sample is not None


def test_a_join_outlived_by_its_event_loop_prints_no_traceback(controller, capfd):
    """An app that stops awaiting a join (it timed out, or the app quit) closes its event
    loop; the child's end, later, must not put a traceback on the terminal."""
    (rec_id,) = start_task(controller, "sleep", "(30,)")
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(controller.join_async([rec_id], timeout=0.05)) is False
    finally:
        loop.close()
    controller.kill(rec_id)
    assert controller.join([rec_id], timeout=10)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_child_runs_no_thread_of_proclab_s(controller, tmp_path, method):
    """The kernel's parent-death signal, checked once after it is asked for, guards the
    child (under forkserver, through the fork server, which dies with proclab): no
    watchdog thread (half a millisecond of every fork child's start, measured). The
    target sees itself alone."""
    target = tmp_path / "alone.py"
    target.write_text(
        "import os\n\ndef threads():\n    print(len(os.listdir('/proc/self/task')))\n"
    )
    (rec_id,) = controller.spawn(build_spec(f"{target}:threads", method=method))
    assert controller.join([rec_id], timeout=30)
    assert [line.text for line in controller.output(rec_id)] == ["1"]


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_child_s_thread_is_its_main_thread_as_in_a_script_s_child(controller, tmp_path, method):
    """A fork child runs on a copy of the thread that forked it: proclab's launcher. Its
    code must see what a child of the learner's own script sees (`python lesson.py`,
    multiprocessing forking from the main thread): one thread, the main one, named
    MainThread, not a daemon, and logging saying so."""
    target = tmp_path / "names.py"
    target.write_text(
        "import logging, threading\n\n"
        "def show():\n"
        "    t = threading.current_thread()\n"
        "    print(t.name, t.daemon, t is threading.main_thread(), threading.active_count())\n"
        "    handler = logging.StreamHandler()\n"
        "    handler.setFormatter(logging.Formatter('%(threadName)s'))\n"
        "    log = logging.getLogger('lesson')\n"
        "    log.addHandler(handler)\n"
        "    log.propagate = False\n"
        "    log.warning('')\n"
    )
    (rec_id,) = controller.spawn(build_spec(f"{target}:show", method=method))
    assert controller.join([rec_id], timeout=30)
    shown = [(line.stream, line.text) for line in controller.output(rec_id)]
    assert shown == [("stdout", "MainThread False True 1"), ("stderr", "MainThread")]


def test_a_childs_final_figures_begin_at_the_last_tick_it_stood_in(tmp_path):
    """A sleeping child's last sample stands tick after tick (no new one is made); when it
    then works and ends between two ticks, its final CPU figures cover the time since the
    last tick, not since the sample that stood: its work is not spread over its sleep."""
    (tmp_path / "waiter.py").write_text(
        "import signal\n"
        "def wait_then_work():\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})\n"
        "    signal.sigwait({signal.SIGUSR1})\n"
        "    sum(range(2_000_000))\n"
    )
    controller = Controller(sample_interval=0.5, grace=1.0).start()
    stood: list[float] = []
    controller.subscribe(
        lambda e: stood.append(e.system.time) if isinstance(e, Sampled) and 1 in e.stood else None
    )
    try:
        (rec_id,) = controller.spawn(build_spec("waiter.py:wait_then_work", cwd=str(tmp_path)))
        assert rec_id == 1
        assert wait_until(lambda: len(stood) >= 2, 20)  # asleep, its last sample standing
        sampled_at = controller.row(rec_id).sample.time
        assert sampled_at < stood[-1]
        os.kill(controller.row(rec_id).pid, signal.SIGUSR1)
        assert controller.join([rec_id], timeout=20)
        final = controller.row(rec_id).sample
        assert final is not None and final.cpu_delta > 0
        # from the last tick it was measured in: never the older sample's time
        assert final.time - final.interval >= stood[-1] - 1e-6, (final, stood, sampled_at)
    finally:
        controller.close()


# A process whose fds 1 and 2 are pipes (as for `proclab run | tee`; under pytest's capture
# they are files, where no writers are made ahead), starting one fork child of argv[1]
# in folder argv[2], with the rest of argv as its arguments.
WRITERS_SCRIPT = """
import json, sys
from proclab.core import bootstrap
from proclab.core.classify import classify
from proclab.core.controller import Controller
from proclab.core.spec import build_spec
from proclab.tui.screens.details import describe

if __name__ == "__main__":
    with Controller(sample_interval=1.0) as c:
        args = repr(tuple(sys.argv[3:]))
        (rid,) = c.spawn(build_spec(sys.argv[1], args, cwd=sys.argv[2], method="fork"))
        c.join([rid], timeout=20)
        ready = bootstrap._ready_writers
        print(json.dumps({
            "exitcode": c.row(rid).exitcode,
            "lines": [[o.stream, o.text] for o in c.output(rid)],
            "ready": [id(w) for w in ready] if ready else None,
        }))
"""


def _fork_child_of_a_piped_proclab(target: str, folder, *args: str, stdout=subprocess.PIPE) -> dict:  # type: ignore[no-untyped-def]
    """`stdout`: proclab's own (a pipe, or a file the result is read back from)."""
    done = subprocess.run(
        [sys.executable, "-c", WRITERS_SCRIPT, target, str(folder), *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=True,
    )
    told = done.stdout if stdout is subprocess.PIPE else Path(stdout.name).read_text()
    return json.loads(told.splitlines()[-1])


def test_a_fork_child_writes_through_writers_made_before_the_fork(tmp_path):
    """Its lines, an unfinished last line and its traceback all arrive, through the very
    writers proclab made (a fork child's objects sit where the parent's did)."""
    (tmp_path / "talk.py").write_text(
        "import sys\n"
        "def go():\n"
        "    print(id(sys.stdout), id(sys.stderr))\n"
        "    print('héllo')\n"
        "    sys.stderr.write('half a line')\n"
        "    sys.stderr.write(' then whole\\n')\n"
        "    raise ValueError('as it should')\n"
    )
    got = _fork_child_of_a_piped_proclab("talk.py:go", tmp_path)
    assert got["ready"] is not None
    assert got["exitcode"] == 1
    stdout = [text for stream, text in got["lines"] if stream == "stdout"]
    stderr = [text for stream, text in got["lines"] if stream == "stderr"]
    assert stdout == [f"{got['ready'][0]} {got['ready'][1]}", "héllo"]
    assert stderr[0] == "half a line then whole"
    assert stderr[-1] == "ValueError: as it should"


@pytest.mark.parametrize("before", ["an unfinished line", "stdout closed"])
def test_a_fork_childs_own_fork_children_get_writers_of_their_own(tmp_path, before):
    """A child that runs a controller of its own: its children's output is theirs alone,
    whatever the child left in (or did to) the writers it took."""
    (tmp_path / "nested.py").write_text(
        "import contextlib, io, json, sys\n"
        "def inner():\n"
        "    print('B says hi')\n"
        "def outer(before):\n"
        "    from proclab.core.controller import Controller\n"
        "    from proclab.core.spec import build_spec\n"
        "    sys.stdout.write('A partial ')\n"
        "    if before == 'stdout closed':\n"
        "        sys.stdout.close()\n"
        # a fork flushes sys.stdout first: the one in place then is not the one holding it
        "    with contextlib.redirect_stdout(io.StringIO()), Controller(sample_interval=1.0) as c:\n"
        "        (rid,) = c.spawn(build_spec('nested.py:inner', cwd=sys.path[0], method='fork'))\n"
        "        c.join([rid], timeout=20)\n"
        "        lines = [o.text for o in c.output(rid)]\n"
        "        sys.stderr.write(json.dumps([c.row(rid).exitcode, lines]) + '\\n')\n"
    )
    got = _fork_child_of_a_piped_proclab("nested.py:outer", tmp_path, before)
    assert got["exitcode"] == 0, got
    told = [text for stream, text in got["lines"] if stream == "stderr"]
    assert json.loads(told[-1]) == [0, ["B says hi"]]


def test_a_fork_child_of_a_proclab_writing_to_a_file_sees_its_pipe(tmp_path):
    """proclab's stdout a file (`proclab run ... > log`): the writers made ahead on it must
    not take the file's answers to the child, whose fd 1 is a pipe. It cannot seek, its
    tell fails as a pipe's does, and its lines arrive."""
    (tmp_path / "probe.py").write_text(
        "import sys\n"
        "def go():\n"
        "    print(sys.stdout.seekable(), sys.stdout.buffer.seekable(), sys.stdout.buffer.raw)\n"
        "    try:\n"
        "        sys.stdout.buffer.tell()\n"
        "    except OSError as exc:\n"
        "        print(exc)\n"
        "    sys.stderr.write('on stderr\\n')\n"
    )
    with open(tmp_path / "proclab-out.txt", "w") as out:
        out.write("proclab's own output, before the child\n")
        out.flush()
        got = _fork_child_of_a_piped_proclab("probe.py:go", tmp_path, stdout=out)
    assert got["ready"] is not None  # made ahead, though proclab's stdout is a file
    assert got["exitcode"] == 0
    assert got["lines"] == [
        ["stdout", "False False <_io.FileIO name=1 mode='wb' closefd=False>"],
        ["stdout", "[Errno 29] Illegal seek"],
        ["stderr", "on stderr"],
    ]


def test_no_writers_are_made_ahead_on_a_closed_fd():
    """None can be made on a closed fd 1: each fork child then makes its own."""
    script = (
        "import os, sys\n"
        "os.close(1)\n"
        "from proclab.core import bootstrap\n"
        "bootstrap.prepare_writers()\n"
        "sys.stderr.write(str(bootstrap._ready_writers is None))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, timeout=60
    )
    assert done.stderr == "True"


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_childs_wall_time_holds_its_cpu_time(controller, method):
    """A child is born inside Process.start(), and a short one may run (or end) before
    start() returns: its wall time counts from the call, and is never below its CPU time.
    Counted from the return, an empty fork child was shown 1 ms of wall and 6 of CPU."""
    for _ in range(5):
        row = run_task(controller, "count", "(20_000,)", method=method)
        assert row.sample is not None
        wall = row.wall_time(time.time())
        assert wall is not None and wall >= row.sample.cpu_time, (wall, row.sample)


def test_a_process_named_in_a_notice_is_named_by_its_command_line() -> None:
    """Named by its command name alone (comm: 15 characters), `python3 worker.py --port
    80` read as `python3`; a zombie, which has no command line left, keeps that name."""
    worker = subprocess.Popen(["sleep", "60", "1"])  # sleep adds its arguments up
    try:
        # Popen returns before the kernel has set the new program's command line
        assert wait_until(lambda: procfs.read_cmdline(worker.pid), 10)
        assert _describe({worker.pid: procfs.brief(worker.pid)}) == f"{worker.pid} sleep 60 1"
        worker.kill()
        assert wait_until(lambda: procfs.brief(worker.pid).state == "Z", 10)
        assert _describe({worker.pid: procfs.brief(worker.pid)}) == f"{worker.pid} sleep"
    finally:
        kill_if_running(worker)


def test_a_stop_from_outside_is_said_to_be_seen_at_ticks_and_a_pause_is_not(controller):
    """SIGSTOP sent from elsewhere is seen at the next sampler tick: a child stopped 1.5 s
    read 'stopped 1.00 s' as if measured. Its details now say it is within a tick."""
    outside, paused = start_task(controller, "sleep", "(30,)", count=2)
    controller.pause(paused)
    os.kill(controller.row(outside).pid, signal.SIGSTOP)  # type: ignore[arg-type]
    for rec_id in (outside, paused):
        assert wait_until(lambda r=rec_id: controller.row(r).state is ProcState.STOPPED, 10)
    time.sleep(0.3)
    controller.resume(paused)
    os.kill(controller.row(outside).pid, signal.SIGCONT)  # type: ignore[arg-type]
    for rec_id in (outside, paused):
        assert wait_until(lambda r=rec_id: controller.row(r).state is not ProcState.STOPPED, 10)
    assert controller.row(outside).stops_at_ticks and not controller.row(paused).stops_at_ticks
    kind = dict(describe(controller.row(outside), (), time.time()))["Kind"]
    assert ", as seen at sampler ticks: within a tick either way)" in kind, kind
    controller.terminate(outside)
    controller.terminate(paused)


OUTLIVES_ITS_PARENT = """
import os, signal, time

def forker():
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(30)
        os._exit(0)
    time.sleep(30)
"""


def test_a_child_s_process_that_outlives_it_is_said_once(tmp_path: Path) -> None:
    """A child ended with terminate whose own child ignored SIGTERM: proclab adopted it and
    it ran on, while the status line read "1 live · 1 ended" and nothing said so until
    the quit. (The tree holds the family here: a test process claims no orphan it has not
    seen in its family, and a tree's walks see them.)"""
    controller = Controller(sample_interval=0.2, grace=0.5, family="tree").start()
    try:
        _outlived_and_said(controller, tmp_path)
    finally:
        controller.close()


def _outlived_and_said(controller: Controller, tmp_path: Path) -> None:
    (tmp_path / "outlives.py").write_text(OUTLIVES_ITS_PARENT)
    notices: list[str] = []
    controller.subscribe(lambda e: notices.append(e.text) if type(e).__name__ == "Notice" else None)
    (rec_id,) = controller.spawn(build_spec("outlives.py:forker", cwd=str(tmp_path)), 1)
    controller.wait_started([rec_id])
    pid = controller.row(rec_id).pid
    assert pid is not None
    assert wait_until(lambda: len(psutil.Process(pid).children()) == 1, 10)
    (grandchild,) = psutil.Process(pid).children()
    # A tick's walk has seen it in the family (a test process claims no stranger): a fixed
    # wait could come before that walk on a loaded machine.
    family = controller._family
    assert family is not None
    assert wait_until(lambda: grandchild.pid in family._seen, 10)
    controller.terminate(rec_id)
    assert controller.join([rec_id], timeout=10)
    said = lambda: [n for n in notices if "outlived" in n]  # noqa: E731
    assert wait_until(lambda: said(), 5), notices
    time.sleep(0.6)  # ticks more: said once
    (notice,) = said()
    assert notice.startswith("1 process that children started outlived its parent and runs on")
    assert f"{grandchild.pid} " in notice


def test_a_line_printed_after_its_child_ended_is_marked_a_descendant_s(controller, tmp_path):
    """A grandchild printing on its ended parent's pipe was shown under the parent's name
    and pid as if the parent had printed it, while the row said the parent had exited (a
    tester's): such a line is marked, and its own lines are not."""
    (tmp_path / "orphaning.py").write_text(
        "import os, time\n"
        "def run():\n"
        "    print('parent here', flush=True)\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(0.5)\n"
        "        print('grandchild here', flush=True)\n"
        "        os._exit(0)\n"
    )
    (rec_id,) = controller.spawn(build_spec("orphaning.py:run", cwd=str(tmp_path)))
    assert controller.join([rec_id], timeout=20)
    deadline = time.monotonic() + 10
    while len(controller.output(rec_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    said = [(line.text, line.after_end) for line in controller.output(rec_id)]
    assert said == [("parent here", False), ("grandchild here", True)]
    assert printed_line(controller.output(rec_id)[1]).endswith(" ↳ | grandchild here")
