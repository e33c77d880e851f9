"""The sampler: one long-lived thread that measures the machine and every live child.

One thread, because psutil keeps cpu_percent's baseline per calling thread, and because a
monitor must not become the heaviest process: each tick reads each child's /proc files once
(psutil's oneshot) plus its schedstat line, and nothing else.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psutil

from proclab.core.model import ProcSample, Sampled, SystemSample

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, ProcessLookupError)


@dataclass(slots=True)
class _Tracked:
    proc: psutil.Process
    last_time: float = 0.0
    last_cpu: float = 0.0
    last_run_delay: float = 0.0


def _first_sight(proc: psutil.Process, now: float) -> _Tracked:
    """Measure the first interval from the process's birth, so its first figures are its
    averages so far rather than zeros."""
    age = max(0.0, time.time() - proc.create_time())
    return _Tracked(proc, last_time=now - age)


def read_run_delay(pid: int) -> float:
    """Seconds the process's main thread has spent runnable but waiting for a CPU
    (/proc/PID/schedstat, nanoseconds); 0.0 where the kernel does not keep it."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def sample_system(now: float) -> SystemSample:
    per_core = tuple(psutil.cpu_percent(percpu=True))
    mem = psutil.virtual_memory()
    return SystemSample(
        time=now,
        wall=time.time(),
        per_core=per_core,
        total=sum(per_core) / len(per_core) if per_core else 0.0,
        mem_total=mem.total,
        mem_used=mem.total - mem.available,
        mem_percent=mem.percent,
        load=os.getloadavg(),
    )


class Sampler:
    """Every `interval` seconds: asks `live()` for {record id: pid}, measures them and the
    machine, and hands one Sampled event to `on_sample`."""

    def __init__(
        self,
        interval: float,
        live: Callable[[], Mapping[int, int]],
        on_sample: Callable[[Sampled], None],
    ) -> None:
        self.interval = interval
        self._live = live
        self._on_sample = on_sample
        self._tracked: dict[int, _Tracked] = {}
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

    def set_interval(self, seconds: float) -> None:
        self.interval = seconds
        self._poke.set()

    def _run(self) -> None:
        psutil.cpu_percent(percpu=True)  # the baseline for the first real reading
        next_tick = time.monotonic() + self.interval
        while not self._stop.is_set():
            delay = next_tick - time.monotonic()
            if delay > 0 and self._poke.wait(delay):
                self._poke.clear()
                next_tick = min(next_tick, time.monotonic() + self.interval)
                continue
            if self._stop.is_set():
                return
            try:
                self._on_sample(self.tick())
            except Exception:  # a sampler that dies silently would freeze every figure
                import traceback

                traceback.print_exc()
            next_tick += self.interval
            if next_tick < time.monotonic():  # fell behind (suspended, overloaded): resync
                next_tick = time.monotonic() + self.interval

    def tick(self) -> Sampled:
        now = time.monotonic()
        live = self._live()
        for gone in self._tracked.keys() - live.keys():
            del self._tracked[gone]
        procs: dict[int, ProcSample] = {}
        for rec_id, pid in live.items():
            sample = self._sample_one(rec_id, pid, now)
            if sample is not None:
                procs[rec_id] = sample
        return Sampled(system=sample_system(now), procs=procs)

    def _sample_one(self, rec_id: int, pid: int, now: float) -> ProcSample | None:
        tracked = self._tracked.get(rec_id)
        try:
            if tracked is None or tracked.proc.pid != pid:
                tracked = self._tracked[rec_id] = _first_sight(psutil.Process(pid), now)
            sample = measure(
                tracked.proc, now, tracked.last_time, tracked.last_cpu, tracked.last_run_delay
            )
        except _GONE:
            self._tracked.pop(rec_id, None)
            return None
        tracked.last_time, tracked.last_cpu = now, sample.cpu_time
        tracked.last_run_delay = sample.run_delay
        return sample


def measure(
    proc: psutil.Process, now: float, last_time: float, last_cpu: float, last_run_delay: float
) -> ProcSample:
    """Read one process (psutil's oneshot: /proc/PID/stat, status, statm once each) and
    its schedstat; figures per interval are relative to the `last_*` reading.
    Raises psutil's errors when the process is gone."""
    with proc.oneshot():
        status = proc.status()
        times = proc.cpu_times()
        rss = proc.memory_info().rss
        threads = proc.num_threads()
        core = proc.cpu_num()
        ctx = proc.num_ctx_switches()
    run_delay = read_run_delay(proc.pid)
    cpu = times.user + times.system
    interval = now - last_time
    cpu_delta = max(0.0, cpu - last_cpu)
    return ProcSample(
        time=now,
        interval=interval,
        status=status,
        cpu_percent=100.0 * cpu_delta / interval if interval > 0 else 0.0,
        cpu_user=times.user,
        cpu_system=times.system,
        cpu_delta=cpu_delta,
        run_delay_delta=max(0.0, run_delay - last_run_delay),
        run_delay=run_delay,
        rss=rss,
        threads=threads,
        core=core,
        ctx_voluntary=ctx.voluntary,
        ctx_involuntary=ctx.involuntary,
    )


def final_sample(pid: int, previous: ProcSample | None, born: float) -> ProcSample | None:
    """The last figures of a child that has ended but is not reaped yet (a zombie keeps its
    CPU times and context switches until its parent reaps it). `born`: monotonic time it
    started, used when it was never sampled."""
    now = time.monotonic()
    try:
        proc = psutil.Process(pid)
        if previous is None:
            return measure(proc, now, born, 0.0, 0.0)
        return measure(proc, now, previous.time, previous.cpu_time, previous.run_delay)
    except _GONE:
        return None
