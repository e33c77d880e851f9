"""What each child of a real-kernel run executes (`proclab schedule --real`).

Two kinds of child, both started by the controller like any other:

- a job: pinned to the run's core, its policy set before it may run, it waits to be
  released, then burns CPU until the kernel says it has used its burst of its own CPU
  time, recording every stretch it spent on the CPU;
- the releaser: makes each job runnable at its arrival time. For the real-time policies
  it sits on the jobs' core at a priority above all of them, so it runs the moment an
  arrival is due, wakes that arrival's jobs in list order (so jobs arriving together
  queue in list order, as the simulation's tie rule has it) and sleeps again.

They talk to proclab through named pipes and files in a private folder (in /dev/shm where
there is one: writing a file to a disk's file system cost 0.28 ms of CPU here, to tmpfs
0.03): `ready` (a line from each child once it is set up, or its error), `start` (the
release clock's zero, from proclab), `go-N` (a byte releases job N), `job-N` (a job's
report: a line of JSON figures, its on-CPU stretches as pairs of int64 nanoseconds, and
a last line with its CPU clock once the rest was written), `release` (the releaser's).

Kept small, and importing only the standard library: every job imports it before its run.
"""

from __future__ import annotations

import json
import os
import resource
import time
from array import array
from collections.abc import Sequence
from typing import Any, NamedTuple

POLICIES = {"fifo": os.SCHED_FIFO, "rr": os.SCHED_RR, "other": os.SCHED_OTHER}

# The loop reads the clock about every 0.3 µs. A longer gap between two readings is time
# away from the job's code: the job then asks the kernel whether it was switched out (its
# count of context switches went up: getrusage, about 1 µs; reading /proc/thread-self/
# schedstat took twice that). If it was, the gap is time off the CPU; if not,
# it was interrupts, or in a VM the host, which the kernel bills to the job as its own
# CPU time: the stretch goes on, and the gap is counted as interrupted.
GAP_NS = 50_000


def ready_path(folder: str) -> str:
    return os.path.join(folder, "ready")


def start_path(folder: str) -> str:
    return os.path.join(folder, "start")


def go_path(folder: str, index: int) -> str:
    return os.path.join(folder, f"go-{index}")


def report_path(folder: str, index: int) -> str:
    return os.path.join(folder, f"job-{index}")


def release_path(folder: str) -> str:
    return os.path.join(folder, "release")


def read_report(path: str) -> tuple[dict[str, Any], array[int], int]:
    """A job's report: its figures, its stretches (flat), its CPU clock at the end.
    OSError or ValueError if it is not whole."""
    with open(path, "rb") as file:
        data = file.read()
    head, _, rest = data.partition(b"\n")
    figures = json.loads(head)
    size = 8 * 2 * int(figures["stretches"])
    intervals = array("q")
    intervals.frombytes(rest[:size])
    if len(intervals) != 2 * figures["stretches"]:
        raise ValueError("its stretches are cut short")
    return figures, intervals, int(rest[size:].strip())


def job(
    folder: str,
    index: int,
    policy: str,
    priority: int,
    core: int,
    burst_ns: int,
    elsewhere: Sequence[int],
) -> None:
    """One job: set up on `core` under `policy`, wait for the releaser, burn `burst_ns` of
    its own CPU time, then leave the core (to `elsewhere`, as SCHED_OTHER) to report."""
    try:
        os.sched_setaffinity(0, {core})
        _set_policy(policy, priority)
        go = os.open(go_path(folder, index), os.O_RDWR)  # O_RDWR: opening never blocks
        quantum_ns = int(os.sched_rr_get_interval(0) * 1e9)
        stats = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        before = _schedstat(stats)
    except OSError as exc:
        _tell(folder, f"error {index} {exc.strerror or exc}")
        raise SystemExit(1) from None
    _tell(folder, f"ready {index}")
    os.read(go, 1)
    woke_cpu = time.thread_time_ns()
    burn = _burn(burst_ns)
    after = _schedstat(stats)  # one read of an open file: a few µs more on the core
    _leave(elsewhere)
    left_cpu = time.thread_time_ns()
    figures = {
        "index": index,
        "pid": os.getpid(),
        "quantum_ns": quantum_ns,
        "schedstat_before": before,
        "schedstat_after": after,
        "cpu_ns": {
            "woke": woke_cpu,
            "burn_start": burn.cpu_start,
            "burn_end": burn.cpu_end,
            "left": left_cpu,
        },
        "interrupted_ns": burn.interrupted_ns,
        "asked_ns": burn.asked_ns,
        "stretches": len(burn.intervals) // 2,
    }
    fd = os.open(report_path(folder, index), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write_all(fd, json.dumps(figures).encode() + b"\n" + burn.intervals.tobytes())
        _write_all(fd, b"%d\n" % time.thread_time_ns())
    finally:
        os.close(fd)


def _leave(elsewhere: Sequence[int]) -> None:
    """Leave the core at once, so that the next job is not kept waiting by this one's
    report and exit. Moved first, then demoted: demoted on the core, it would lose the
    CPU to a real-time job waiting there and could not move until that one was done."""
    os.sched_setaffinity(0, set(elsewhere))
    _set_policy("other", 0)


class _Burn(NamedTuple):
    intervals: array[int]  # (first reading, last reading) of each stretch, flat
    cpu_start: int  # the thread's CPU clock, ns
    cpu_end: int
    interrupted_ns: int  # gaps in which it was not switched out
    asked_ns: int  # time spent asking the kernel about gaps (bookkeeping)


def _switches() -> int:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_nvcsw + usage.ru_nivcsw


def _burn(burst_ns: int) -> _Burn:
    """Burn CPU until this thread has used `burst_ns` of CPU time by the kernel's count,
    recording each stretch on the CPU."""
    now = time.monotonic_ns
    cpu = time.thread_time_ns
    intervals = array("q")
    interrupted = asked = 0
    runs = _switches()
    cpu_start = cpu()
    start = last = now()
    # When the burst would be used up if no more time is lost: asked of the kernel only
    # then (its CPU clock is a system call; the monotonic clock is not).
    due = start + burst_ns
    while True:
        t = now()
        if t - last > GAP_NS:
            before = now()
            count = _switches()
            asked += now() - before
            if count != runs:
                runs = count
                intervals.append(start)
                intervals.append(last)
                start = t
            else:
                interrupted += t - last
        last = t
        if t >= due:
            used = cpu() - cpu_start
            if used >= burst_ns:
                break
            due = t + burst_ns - used
    intervals.append(start)
    intervals.append(last)
    return _Burn(intervals, cpu_start, cpu(), interrupted, asked)


def releaser(
    folder: str,
    policy: str,
    priority: int,
    cpus: Sequence[int],
    releases: Sequence[tuple[int, Sequence[int]]],
    cpus_elsewhere: Sequence[int],
) -> None:
    """Release each group of jobs at its offset (ns after the zero proclab sends), in
    list order; then leave `cpus` and report how late each release was."""
    try:
        os.sched_setaffinity(0, set(cpus))
        _set_policy(policy, priority)
        gates = {i: os.open(go_path(folder, i), os.O_RDWR) for _, group in releases for i in group}
        start = os.open(start_path(folder), os.O_RDWR)
    except OSError as exc:
        _tell(folder, f"error releaser {exc.strerror or exc}")
        raise SystemExit(1) from None
    _tell(folder, "ready releaser")
    zero = int(os.read(start, 64).decode())
    late = []
    for offset, group in releases:
        due = zero + offset
        while (wait := due - time.monotonic_ns()) > 0:
            time.sleep(wait / 1e9)
        woke = time.monotonic_ns()
        for index in group:
            os.write(gates[index], b"g")
        late.append(woke - due)
    _leave(cpus_elsewhere)
    with open(release_path(folder), "w", encoding="utf-8") as file:
        json.dump({"late_ns": late}, file)


def _set_policy(policy: str, priority: int) -> None:
    kind = POLICIES[policy]
    os.sched_setscheduler(0, kind, os.sched_param(priority if kind != os.SCHED_OTHER else 0))


def _schedstat(fd: int) -> list[int]:
    """This thread's time on a CPU (ns), waiting on a run queue (ns), and times run."""
    return [int(field) for field in os.pread(fd, 200, 0).split()]


def _tell(folder: str, line: str) -> None:
    # One write of less than PIPE_BUF bytes: never interleaved with another child's.
    fd = os.open(ready_path(folder), os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, (line.replace("\n", " ")[:400] + "\n").encode())
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
