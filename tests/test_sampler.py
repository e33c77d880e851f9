"""The sampler reads a process's context switches and children only when it has run since
the last tick (core/procfs.py): what it skips must be what it would have read."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
from support import wait_until

from proclab.core import procfs
from proclab.core.sampler import Sampler, SystemMeter, final_sample, to_sample


@pytest.fixture
def program() -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(code: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        started.append(p)
        return p

    yield start
    for p in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def asleep(child: subprocess.Popen[bytes]) -> bool:
    """Wait until a child has exec'd Python and gone to sleep. Just started, it may still be
    exec'ing: its stat can then read an RSS of 0 (the kernel's counter of its pages is
    per-CPU and folded in batches, and its new memory is nearly empty)."""
    process = psutil.Process(child.pid)
    return wait_until(
        lambda: (
            process.cmdline()[:1] == [sys.executable]
            and process.status() == "sleeping"
            and process.memory_info().rss > 0
        ),
        10,
    )


def counting_status_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads: list[int] = []
    real = procfs._context_switches

    def counted(pid: int) -> tuple[int, int]:
        reads.append(pid)
        return real(pid)

    monkeypatch.setattr(procfs, "_context_switches", counted)
    return reads


def test_a_sleeping_process_keeps_its_true_context_switches_without_a_second_read(
    program, monkeypatch
):
    sleeper = program("import time; time.sleep(60)")
    assert wait_until(lambda: psutil.Process(sleeper.pid).status() == "sleeping", 10)
    time.sleep(0.2)  # past the interpreter's start: asleep in time.sleep for good
    first = procfs.read(sleeper.pid)
    reads = counting_status_reads(monkeypatch)
    time.sleep(0.3)
    again = procfs.read(sleeper.pid, first)
    assert reads == []  # it has not run: status was not read again
    switches = psutil.Process(sleeper.pid).num_ctx_switches()
    assert (again.ctx_voluntary, again.ctx_involuntary) == (
        switches.voluntary,
        switches.involuntary,
    )


def test_a_process_that_ran_has_its_context_switches_read_again(program, monkeypatch):
    ticker = program("import time\nwhile True: time.sleep(0.01)")
    assert wait_until(lambda: procfs.read(ticker.pid).ctx_voluntary > 20, 10)
    first = procfs.read(ticker.pid)
    reads = counting_status_reads(monkeypatch)
    time.sleep(1.0)
    again = procfs.read(ticker.pid, first)
    after = psutil.Process(ticker.pid).num_ctx_switches().voluntary
    assert reads == [ticker.pid]
    assert first.ctx_voluntary + 10 <= again.ctx_voluntary <= after  # ~100 sleeps meanwhile


def test_a_child_that_starts_a_process_after_sleeping_is_counted_again(program):
    """An idle child's descendants are not counted again each tick; once it wakes and
    starts a process, the next tick counts it."""
    child = program(
        "import subprocess, time\n"
        "time.sleep(1.5)\n"
        "subprocess.Popen(['sleep', '60'])\n"
        "time.sleep(60)"
    )
    sampler = Sampler(0.1, lambda: {1: child.pid}, lambda _: None, max_descendants=64)
    counted = [0]

    def descendants() -> int:
        sampled = sampler.tick()
        if 1 in sampled.procs:
            counted[0] = sampled.procs[1].descendants
        else:  # its last sample stands: nothing it ran, nothing it started, since
            assert sampled.stood == (1,)
        return counted[0]

    assert descendants() == 0
    time.sleep(0.3)
    assert descendants() == 0
    assert wait_until(lambda: descendants() == 1, 10)


def test_a_process_that_has_not_changed_is_its_last_reading_and_a_stop_is_still_seen(program):
    sleeper = program("import time; time.sleep(60)")
    assert wait_until(lambda: psutil.Process(sleeper.pid).status() == "sleeping", 10)
    time.sleep(0.2)
    first = procfs.read(sleeper.pid)
    assert procfs.read(sleeper.pid, first) is first  # nothing moved: nothing parsed
    os.kill(sleeper.pid, signal.SIGSTOP)
    try:
        assert wait_until(lambda: procfs.read(sleeper.pid, first).status == "stopped", 10)
    finally:
        os.kill(sleeper.pid, signal.SIGCONT)


def _files_open_on(pid: int) -> int:
    """This process's fds open on /proc/PID/..."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(f"/proc/{pid}/")
    return count


def test_the_sampler_keeps_a_childs_files_open_until_it_is_gone(program):
    child = program("import time; time.sleep(60)")
    assert asleep(child)
    live = {1: child.pid}
    sampler = Sampler(0.1, lambda: dict(live), lambda _: None, max_descendants=None)
    first = sampler.tick()
    assert 1 in first.procs
    assert _files_open_on(child.pid) == 2  # stat and schedstat
    second = sampler.tick()  # read again: sampled, or its first sample stands
    assert (second.procs.get(1) or first.procs[1]).rss > 0
    assert 1 in second.procs or second.stood == (1,)
    child.kill()
    child.wait()  # reaped: its pid may be anyone's now; its open files say it is gone
    assert sampler.tick().procs == {}
    assert _files_open_on(child.pid) == 0
    sampler.stop()


def test_open_files_name_one_process_and_fail_once_it_is_reaped(program):
    child = program("import time; time.sleep(60)")
    files = procfs.Files(child.pid)
    try:
        assert procfs.read(child.pid, files=files).started == procfs.read(child.pid).started
        child.kill()
        child.wait()
        with pytest.raises(ProcessLookupError):
            files.read()
    finally:
        files.close()


def test_past_its_budget_of_open_files_the_sampler_reads_by_path(program):
    children = [program("import time; time.sleep(60)") for _ in range(3)]
    assert all(asleep(child) for child in children)
    live = {i: p.pid for i, p in enumerate(children)}
    sampler = Sampler(0.1, lambda: live, lambda _: None, max_descendants=None)
    sampler._files_budget = 1
    try:
        assert sorted(sampler.tick().procs) == [0, 1, 2]
        assert sorted(_files_open_on(p.pid) for p in children) == [0, 0, 2]
        assert all(s.rss > 0 for s in sampler.tick().procs.values())
    finally:
        sampler.stop()
    assert [_files_open_on(p.pid) for p in children] == [0, 0, 0]  # closed as it stopped


def test_a_child_that_did_nothing_since_its_last_sample_stands_until_it_moves(program):
    """No new sample (no row, no cell) for a child whose files read the same bytes after a
    sample in which it neither ran nor waited; any change (a stop here) samples it again."""
    sleeper = program("import time; time.sleep(60)")
    assert wait_until(lambda: psutil.Process(sleeper.pid).status() == "sleeping", 10)
    time.sleep(0.2)
    sampler = Sampler(0.1, lambda: {1: sleeper.pid}, lambda _: None)
    ticks = [sampler.tick() for _ in range(3)]
    assert 1 in ticks[0].procs  # measured from its birth
    # Nothing moves between ticks: by the third its last sample stands (by the second,
    # if its first saw no CPU time and no wait since its birth).
    assert ticks[2].procs == {} and ticks[2].stood == (1,)
    standing = next(t.procs[1] for t in reversed(ticks) if 1 in t.procs)
    assert standing.cpu_delta == 0 and standing.run_delay_delta == 0
    os.kill(sleeper.pid, signal.SIGSTOP)
    try:
        assert wait_until(lambda: psutil.Process(sleeper.pid).status() == "stopped", 10)
        moved = sampler.tick()
        assert moved.stood == () and moved.procs[1].status == "stopped"
    finally:
        os.kill(sleeper.pid, signal.SIGCONT)


def test_a_child_that_runs_is_sampled_every_tick(program):
    ticker = program("import time\nwhile True: time.sleep(0.01)")
    assert wait_until(lambda: procfs.read(ticker.pid).ctx_voluntary > 20, 10)
    sampler = Sampler(0.1, lambda: {1: ticker.pid}, lambda _: None)
    for _ in range(4):
        time.sleep(0.1)
        sampled = sampler.tick()
        assert 1 in sampled.procs and sampled.stood == ()


def test_a_kept_file_is_read_afresh_each_time_and_whole() -> None:
    """procfs.Kept: read again from its start (a new child shows up in the main thread's
    children), whole however long, and in a forked process the fork's own."""
    children = procfs.Kept("/proc/{pid}/task/{pid}/children")
    maps = procfs.Kept("/proc/{pid}/maps")
    try:
        before = children.read().split()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert str(child.pid).encode() in children.read().split()
            assert str(child.pid).encode() not in before
        finally:
            child.kill()
            child.wait()
        with open(f"/proc/{os.getpid()}/maps", "rb") as f:
            whole = f.read()
        assert len(whole) > 4096  # longer than the first buffer
        assert maps.read().count(b"\n") == whole.count(b"\n")
        # by path too: a file of many records comes a page of them a read
        assert procfs._read(f"/proc/{os.getpid()}/maps").count(b"\n") == whole.count(b"\n")
        pid = os.fork()
        if pid == 0:  # its own children: none
            os._exit(0 if children.read() == b"" else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        children.close()
        maps.close()


def test_the_machines_figures_from_kept_files_are_the_kernels() -> None:
    meter = SystemMeter()
    try:
        time.sleep(0.2)
        system = meter.sample(time.monotonic())
        assert len(system.per_core) == psutil.cpu_count()
        assert system.mem_total == psutil.virtual_memory().total
        assert abs(system.mem_used - psutil.virtual_memory().used) < system.mem_total * 0.2
        total, available = procfs.memory(procfs.Kept("/proc/meminfo").read())
        assert (total, available > 0) == (psutil.virtual_memory().total, True)
        assert procfs.core_times(procfs.Kept("/proc/stat").read())[0][1] > 0
    finally:
        meter.close()


def test_last_cpu_is_the_cpu_the_process_runs_on(program) -> None:
    """procfs.last_cpu, which the launcher asks before it steps aside: a process pinned to
    one CPU is on that one, whichever it is."""
    for cpu in sorted(os.sched_getaffinity(0)):
        pinned = program(f"import os, time; os.sched_setaffinity(0, {{{cpu}}}); time.sleep(30)")
        assert wait_until(lambda p=pinned, c=cpu: os.sched_getaffinity(p.pid) == {c}, 10)
        assert asleep(pinned)
        assert procfs.last_cpu(pinned.pid) == cpu


def test_a_process_starts_when_it_was_started_on_the_wall_clock(program) -> None:
    """/proc counts a start in ticks since boot: the boot's wall time must be the exact
    one. /proc/stat's btime is rounded to the second (and drifts from the wall clock with
    NTP): a new child read as up to a second older, and its first CPU % as half the
    truth."""
    before = time.time()
    child = program("import time; time.sleep(30)")
    after = time.time()
    started = procfs.read(child.pid).started
    tick = 1 / procfs.CLOCK_TICKS  # the start is counted in whole ticks, rounded down
    assert before - tick - 0.005 <= started <= after + 0.005


def test_cpu_time_is_the_main_thread_s_nanoseconds_where_ticks_cut_it_short():
    """/proc's CPU times are whole clock ticks: a killed child that had used 398 ms read
    390. Its main thread's schedstat says it to the nanosecond."""
    reading = procfs.Reading(
        status="zombie", user=0.36, system=0.03, threads=1, rss=0, core=0, started=0.0,
        ctx_voluntary=1, ctx_involuntary=1, run_delay=0.0, ran=(398_200_000, 7),
    )  # fmt: skip
    sample = to_sample(reading, 10.0, 9.0, 0.0, 0.0)
    assert sample.cpu_time == pytest.approx(0.3982)
    assert sample.cpu_user / sample.cpu_system == pytest.approx(12.0)  # as the ticks shared it
    assert sample.others_cpu == 0.0
    # Threads other than the main one ran: the ticks are the larger figure, and stand.
    threaded = to_sample(reading._replace(user=1.2, system=0.1), 10.0, 9.0, 0.0, 0.0)
    assert threaded.cpu_time == pytest.approx(1.3)
    assert threaded.others_cpu == pytest.approx(1.3 - 0.3982)
    # No system time at all: none made up, not even -3.5e-18 (a recording refused it).
    for user, ran in ((0.01, 26_583_062), (0.01, 27_133_476), (0.07, 74_999_999)):
        user_only = to_sample(
            reading._replace(user=user, system=0.0, ran=(ran, 1)), 10.0, 9.0, 0.0, 0.0
        )
        assert user_only.cpu_system == 0.0 and user_only.cpu_user == pytest.approx(ran / 1e9)


def test_a_final_reading_by_pid_is_refused_for_a_process_started_at_another_time():
    """A forkserver child is reaped by its fork server: by the time proclab reads its pid,
    another process may have it. Its figures must not become the child's."""
    me = psutil.Process()
    assert final_sample(me.pid, None, time.monotonic(), started_at=me.create_time())
    assert final_sample(me.pid, None, time.monotonic(), started_at=me.create_time() - 60) is None


def test_a_tick_out_of_file_descriptors_is_lost_quietly_and_the_next_one_comes(
    monkeypatch, capfd
) -> None:
    """A server full of clients left none for /proc/meminfo: every such tick printed a
    traceback into serve's log. It is lost, and the sampler goes on."""
    import errno

    ticks: list[object] = []
    sampler = Sampler(0.05, lambda: {}, ticks.append, max_descendants=None)
    real = sampler.tick
    failed = [0]

    def tick() -> object:
        if failed[0] < 3:
            failed[0] += 1
            raise OSError(errno.EMFILE, "Too many open files", "/proc/meminfo")
        return real()

    monkeypatch.setattr(sampler, "tick", tick)
    sampler.start()
    try:
        assert wait_until(lambda: len(ticks) >= 2, 10)
    finally:
        sampler.stop()
    assert failed[0] == 3 and "Traceback" not in capfd.readouterr().err
