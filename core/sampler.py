"""The sampler: one long-lived thread that measures the machine and every live child.

One thread, keeping the previous reading of each CPU and each child, so that every figure
is a difference over the last interval; and a monitor must not become the heaviest
process: each tick reads /proc/stat, /proc/meminfo and each child's stat and schedstat
files once, and its status and children only if it ran since the last tick
(proclab.core.procfs), and nothing else. A child whose files read the same bytes as last
tick, after a sample in which it neither ran nor waited, gets no new sample: the last one
stands (`Sampled.stood`), and no row or cell is built for it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from proclab.core import fd_limit, procfs
from proclab.core.bootstrap import others_cpu
from proclab.core.model import ProcessRow, ProcSample, Sampled, SystemSample


@dataclass(slots=True)
class _Tracked:
    pid: int
    last_time: float
    last_cpu: float = 0.0
    last_run_delay: float = 0.0
    reading: procfs.Reading | None = None  # the last, for what has not changed since
    still: bool = False  # its last sample saw no CPU time and no wait: nothing moved
    descendants: int = 0  # as last counted
    files: procfs.Files | None = None  # its stat and schedstat, kept open

    def close(self) -> None:
        if self.files is not None:
            self.files.close()
            self.files = None


class SystemMeter:
    """Per-core CPU % over the interval since the previous reading (0 on the first)."""

    def __init__(self) -> None:
        self._stat = procfs.Kept("/proc/stat")
        self._meminfo = procfs.Kept("/proc/meminfo")
        self._last: list[tuple[float, float]] = []
        self.restart()

    def restart(self) -> None:
        """A new baseline: the next sample covers the time from now."""
        self._last = procfs.core_times(self._stat.read())

    def close(self) -> None:
        self._stat.close()
        self._meminfo.close()

    def sample(self, now: float) -> SystemSample:
        current = procfs.core_times(self._stat.read())
        if len(current) != len(self._last):  # a CPU went on or off line
            self._last = current
        per_core = tuple(
            100.0 * (busy - last_busy) / (total - last_total) if total > last_total else 0.0
            for (busy, total), (last_busy, last_total) in zip(current, self._last, strict=True)
        )
        self._last = current
        mem_total, available = procfs.memory(self._meminfo.read())
        used = mem_total - available
        return SystemSample(
            time=now,
            wall=time.time(),
            per_core=per_core,
            total=sum(per_core) / len(per_core) if per_core else 0.0,
            mem_total=mem_total,
            mem_used=used,
            mem_percent=100.0 * used / mem_total if mem_total else 0.0,
            load=os.getloadavg(),
        )


GUARD_S = 0.1  # how often children that have processes of their own are counted again


def _files_budget() -> int:
    """How many children's files are kept open (two fds each): an eighth of the fds this
    process may open (each child holds about five already), the rest read by path."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft // 8


class Sampler:
    """Every `interval` seconds: asks `live()` for {record id: pid}, measures them and the
    machine, and hands one Sampled event to `on_sample`.

    It also counts each child's descendants (the processes it started, theirs...), up to
    `max_descendants` + 1, and between ticks re-counts those that have any every GUARD_S
    seconds, handing (record id, pid, count) to `on_family`: a fork bomb doubles faster
    than a one-second tick."""

    def __init__(
        self,
        interval: float,
        live: Callable[[], Mapping[int, int]],
        on_sample: Callable[[Sampled], None],
        max_descendants: int | None = 64,
        on_family: Callable[[int, int, int], None] | None = None,
        on_names: Callable[[dict[int, str]], None] | None = None,
    ) -> None:
        """`max_descendants` None: count none (a watched tree has a row for each
        descendant already; counting them read /proc for each one again, every tick)."""
        self.interval = interval
        self._live = live
        self._on_sample = on_sample
        self.max_descendants = max_descendants
        self._on_family = on_family
        # Once a tick, {pid: command name} of every process sampled: an exec changes it
        # (a watched tree walks again when one did: core/watch/program.py).
        self._on_names = on_names
        self._names: dict[int, str] = {}
        self._stood: list[int] = []  # this tick's children whose last sample stands
        self._families: dict[int, int] = {}  # record id -> pid, of children with children
        self._tracked: dict[int, _Tracked] = {}
        self._open_files = 0  # children whose files are kept open
        self._files_budget: int | None = None  # at the first tick: the owner raises the limit
        self._system = SystemMeter()
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proclab-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not self._thread.is_alive():  # else its files go with the process
            self._forget(self._tracked.keys())
            self._system.close()

    def set_interval(self, seconds: float) -> None:
        self.interval = seconds
        self._poke.set()

    def _run(self) -> None:
        self._system.restart()  # a fresh baseline for the first real reading
        next_tick = time.monotonic() + self.interval
        while not self._stop.is_set():
            delay = next_tick - time.monotonic()
            # Re-counting between ticks only serves a listener (the fork-bomb guard): a
            # watched tree of 200 has none, and paid 3 % of a core for it.
            if self._families and self._on_family is not None and delay > GUARD_S:
                if self._poke.wait(GUARD_S):
                    self._poke.clear()
                    next_tick = min(next_tick, time.monotonic() + self.interval)
                    continue
                self._guard()
                continue
            if delay > 0 and self._poke.wait(delay):
                self._poke.clear()
                next_tick = min(next_tick, time.monotonic() + self.interval)
                continue
            if self._stop.is_set():
                return
            try:
                self._on_sample(self.tick())
            except Exception as exc:  # a sampler that dies silently would freeze every figure
                # Out of file descriptors (a server full of clients), a tick is lost and the
                # next one tries again: printed, its traceback went into serve's log.
                if not (isinstance(exc, OSError) and exc.errno in fd_limit.OUT_OF_FDS):
                    import traceback

                    traceback.print_exc()
            next_tick += self.interval
            if next_tick < time.monotonic():  # fell behind (suspended, overloaded): resync
                next_tick = time.monotonic() + self.interval

    def _guard(self) -> None:
        limit = self.max_descendants
        for rec_id, pid in list(self._families.items()):
            count = procfs.count_descendants(pid, limit + 1) if limit is not None else 0
            if not count:
                self._families.pop(rec_id, None)
            if self._on_family is not None:
                self._on_family(rec_id, pid, count)

    def tick(self) -> Sampled:
        now = time.monotonic()
        live = self._live()
        self._forget(self._tracked.keys() - live.keys())
        if self._files_budget is None:
            self._files_budget = _files_budget()
        self._families = {i: p for i, p in self._families.items() if i in live}
        procs: dict[int, ProcSample] = {}
        self._names = {}
        self._stood = []
        for rec_id, pid in live.items():
            sample = self._sample_one(rec_id, pid, now)
            if sample is not None:
                procs[rec_id] = sample
        if self._on_names is not None:
            self._on_names(self._names)
        return Sampled(system=self._system.sample(now), procs=procs, stood=tuple(self._stood))

    def _forget(self, rec_ids: Iterable[int]) -> None:
        for rec_id in list(rec_ids):
            tracked = self._tracked.pop(rec_id, None)
            if tracked is not None:
                if tracked.files is not None:
                    self._open_files -= 1
                tracked.close()

    def _sample_one(self, rec_id: int, pid: int, now: float) -> ProcSample | None:
        tracked = self._tracked.get(rec_id)
        if tracked is not None and tracked.pid != pid:
            self._forget([rec_id])
            tracked = None
        first = tracked is None
        if tracked is None:
            tracked = self._tracked[rec_id] = _Tracked(pid, last_time=now)
            if self._open_files < (self._files_budget or 0):
                with contextlib.suppress(OSError):  # gone, or out of fds: read by path
                    tracked.files = procfs.Files(pid)
                    self._open_files += 1
        last = tracked.reading
        try:
            reading = procfs.read(pid, last, tracked.files)
        except (OSError, ValueError, IndexError):  # gone (or going) since it was listed
            self._forget([rec_id])
            return None
        if self._on_names is not None:
            self._names[pid] = reading.name
        if reading is last and tracked.still and not tracked.descendants:
            # The same bytes, after a sample with no CPU time and no wait: a new sample would
            # differ from the last only in its time. Building it, its row and its timeline
            # cell was most of a tick with 100 sleeping children (cold, once a second).
            tracked.last_time = now
            self._stood.append(rec_id)
            return None
        if first:
            # Measured from its birth, so its first figures are its averages so far
            # rather than zeros.
            tracked.last_time = now - max(0.0, time.time() - reading.started)
        descendants = 0
        if self.max_descendants is not None:
            # A main thread that has not run has started no child since (and had none to
            # start grandchildren): what the last count found stands.
            idle = last is not None and procfs.not_run_since(last, reading.ran)
            if idle and not tracked.descendants:
                descendants = 0
            else:
                descendants = procfs.count_descendants(pid, self.max_descendants + 1)
            tracked.descendants = descendants
        if descendants:
            self._families[rec_id] = pid
            if self._on_family is not None:
                self._on_family(rec_id, pid, descendants)
        sample = to_sample(
            reading, now, tracked.last_time, tracked.last_cpu, tracked.last_run_delay, descendants
        )
        tracked.last_time, tracked.last_cpu = now, sample.cpu_time
        tracked.last_run_delay = sample.run_delay
        tracked.reading = reading
        tracked.still = not sample.cpu_delta and not sample.run_delay_delta
        return sample


# A process read by pid is the one started then if it started within this of it (its start
# is in clock ticks; a forkserver child's start() returns after its fork).
SAME_START_S = 1.0


def born_monotonic(row: ProcessRow) -> float:
    """When the row's process started, on the monotonic clock its samples use (now if it
    has not): what its figures count from when it was never sampled."""
    return time.monotonic() - (time.time() - (row.started_at or time.time()))


def to_sample(
    reading: procfs.Reading,
    now: float,
    last_time: float,
    last_cpu: float,
    last_run_delay: float,
    descendants: int = 0,
) -> ProcSample:
    """Figures per interval are relative to the `last_*` reading."""
    user, system = reading.user, reading.system
    cpu = user + system
    main = reading.ran[0] / 1e9 if reading.ran else None
    if main is not None and main > cpu:
        # /proc's CPU times are whole clock ticks, cut down: up to 10 ms short (a killed
        # child's 398 ms read 390). Its main thread's own nanoseconds (schedstat) are the
        # better figure, the rest shared as user and system were.
        user += (main - cpu) * (user / cpu if cpu else 1.0)
        # Not below 0: with no system ticks, float rounding left -3.5e-18, which a
        # recording then refused to replay ("is below 0").
        system = max(0.0, main - user)
        cpu = main
    interval = now - last_time
    cpu_delta = max(0.0, cpu - last_cpu)
    return ProcSample(
        time=now,
        interval=interval,
        status=reading.status,
        cpu_percent=100.0 * cpu_delta / interval if interval > 0 else 0.0,
        cpu_user=user,
        cpu_system=system,
        cpu_delta=cpu_delta,
        run_delay_delta=max(0.0, reading.run_delay - last_run_delay),
        run_delay=reading.run_delay,
        rss=reading.rss,
        threads=reading.threads,
        core=reading.core,
        ctx_voluntary=reading.ctx_voluntary,
        ctx_involuntary=reading.ctx_involuntary,
        descendants=descendants,
        reaped_cpu=reading.reaped,
        others_cpu=others_cpu(cpu, main),
    )


def final_sample(
    pid: int, previous: ProcSample | None, born: float, started_at: float | None = None
) -> ProcSample | None:
    """The last figures of a child that has ended but is not reaped yet (a zombie keeps its
    CPU times and context switches until its parent reaps it). `born`: monotonic time it
    started, used when it was never sampled. `started_at` (wall clock): where another
    process may have its pid by now (one its fork server reaped), None unless the
    process read started then."""
    now = time.monotonic()
    try:
        reading = procfs.read(pid)
    except (OSError, ValueError, IndexError):
        return None
    if started_at is not None and abs(reading.started - started_at) > SAME_START_S:
        return None
    if previous is None:
        return to_sample(reading, now, born, 0.0, 0.0)
    return to_sample(reading, now, previous.time, previous.cpu_time, previous.run_delay)


def reported_sample(
    reported: tuple[float, float, int, int, float],
    previous: ProcSample | None,
    born: float,
    reaped_cpu: float = 0.0,
    threads_cpu: float = 0.0,
) -> ProcSample:
    """The child's figures from its own exit record (its rusage and run-queue wait), when
    /proc no longer has them, and the CPU of the children it reaped. Memory, threads and
    core are gone with the process; the last sample's stand."""
    user, system, voluntary, involuntary, run_delay = reported
    now = time.monotonic()
    last_time = previous.time if previous else born
    last_cpu = previous.cpu_time if previous else 0.0
    cpu_delta = max(0.0, user + system - last_cpu)
    interval = now - last_time
    return ProcSample(
        time=now,
        interval=interval,
        status="zombie",
        cpu_percent=100.0 * cpu_delta / interval if interval > 0 else 0.0,
        cpu_user=user,
        cpu_system=system,
        cpu_delta=cpu_delta,
        run_delay_delta=max(0.0, run_delay - (previous.run_delay if previous else 0.0)),
        run_delay=run_delay,
        rss=0,
        threads=previous.threads if previous else 1,
        core=previous.core if previous else None,
        ctx_voluntary=voluntary,
        ctx_involuntary=involuntary,
        reaped_cpu=reaped_cpu,
        others_cpu=threads_cpu,
    )
