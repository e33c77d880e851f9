"""A stand-in controller with fixed rows, for snapshot tests: every state at once, a frozen
clock, no real processes. It has the controller's read API; commands are recorded."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace

from support import TASKS

from proclab.core.controller import Controller
from proclab.core.errors import UnknownProcess
from proclab.core.model import (
    Event,
    MpFacts,
    OutputLine,
    ProcessCall,
    ProcessRow,
    ProcessSpec,
    ProcSample,
    ProcState,
    Sampled,
    ServerStatus,
    SystemSample,
)
from proclab.core.server.tcp import ServerConfig
from proclab.core.source import NotAllowed
from proclab.core.targets import Target

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC: the frozen clock of every snapshot


def _spec(
    function: str,
    args: tuple[object, ...] = (),
    kwargs: dict[str, object] | None = None,
    method: str = "forkserver",
    affinity: tuple[int, ...] | None = None,
) -> ProcessSpec:
    return ProcessSpec(
        Target("module", TASKS, function),
        args,
        kwargs or {},
        None,
        False,
        method,
        affinity,
        "/home/learner/lab",
    )  # type: ignore[arg-type]


def _sample(
    cpu: float,
    cpu_time: float,
    rss: int,
    core: int,
    status: str,
    threads: int = 2,
    delay: float = 0.0,
    vol: int = 10,
    invol: int = 2,
) -> ProcSample:
    return ProcSample(
        time=1000.0,
        interval=1.0,
        status=status,
        cpu_percent=cpu,
        cpu_user=cpu_time * 0.95,
        cpu_system=cpu_time * 0.05,
        cpu_delta=cpu / 100,
        run_delay_delta=0.0,
        run_delay=delay,
        rss=rss,
        threads=threads,
        core=core,
        ctx_voluntary=vol,
        ctx_involuntary=invol,
    )


TRACEBACK = (
    "Traceback (most recent call last):",
    '  File "/home/learner/lab/.venv/lib/python3.11/site-packages/proclab/core/tasks.py", line 64, in fail',
    "    raise RuntimeError(message)",
    "RuntimeError: boom",
)


def mixed_rows() -> list[ProcessRow]:
    """One row in each state a person meets."""
    greet = _spec("greet", kwargs={"name": "jerry", "age": 20, "gender": "male"})
    M = 1024 * 1024
    return [
        ProcessRow(
            1,
            "process-2",
            greet,
            ProcState.SLEEPING,
            41001,
            None,
            NOW - 2.1,
            NOW - 2.0,
            None,
            0.012,
            _sample(0, 0.03, 13 * M, 1, "sleeping", vol=4, invol=1),
        ),
        ProcessRow(
            2,
            "ForkProcess-3",
            _spec("spin", (60,), method="fork"),
            ProcState.RUNNING,
            41002,
            None,
            NOW - 12.2,
            NOW - 12.0,
            None,
            0.002,
            _sample(99.8, 11.9, 12 * M, 0, "running", vol=2, invol=310),
        ),
        ProcessRow(
            3,
            "ForkServerProcess-4",
            _spec("spin", (60,), affinity=(0,)),
            ProcState.RUNNING,
            41003,
            None,
            NOW - 8.2,
            NOW - 8.0,
            None,
            0.018,
            _sample(49.7, 3.9, 12 * M, 0, "running", delay=3.9, vol=3, invol=402),
        ),
        ProcessRow(
            4,
            "ForkServerProcess-5",
            _spec("tick", (500,)),
            ProcState.STOPPED,
            41004,
            None,
            NOW - 30.2,
            NOW - 30.0,
            None,
            0.015,
            _sample(0, 0.08, 13 * M, 1, "stopped", vol=58),
        ),
        ProcessRow(
            5,
            "SpawnProcess-6",
            _spec("sleep", (1,), method="spawn"),
            ProcState.EXITED,
            41005,
            0,
            NOW - 5.3,
            NOW - 5.2,
            NOW - 4.1,
            0.061,
            _sample(0, 0.21, 0, 1, "zombie"),
        ),
        ProcessRow(
            6,
            "ForkServerProcess-7",
            _spec("fail", kwargs={"message": "boom"}),
            ProcState.FAILED,
            41006,
            1,
            NOW - 4.3,
            NOW - 4.2,
            NOW - 4.15,
            0.016,
            _sample(0, 0.04, 0, 0, "zombie"),
            error="RuntimeError: boom",
            traceback=TRACEBACK,
        ),
        ProcessRow(
            7,
            "ForkServerProcess-8",
            _spec("sleep", (30,)),
            ProcState.TERMINATED,
            41008,
            -15,
            NOW - 20.3,
            NOW - 20.2,
            NOW - 9.0,
            0.017,
            _sample(0, 0.03, 0, 1, "zombie"),
        ),
        ProcessRow(
            8,
            "ForkServerProcess-9",
            _spec("ignore_sigterm", (60,)),
            ProcState.KILLED,
            41009,
            -9,
            NOW - 19.3,
            NOW - 19.2,
            NOW - 6.5,
            0.015,
            _sample(0, 0.03, 0, 0, "zombie"),
        ),
        ProcessRow(
            9,
            "SpawnProcess-10",
            _spec("fib", (30,), method="spawn"),
            ProcState.STARTING,
            None,
            None,
            NOW - 0.05,
        ),
    ]


def mixed_output(rows: list[ProcessRow]) -> dict[int, list[OutputLine]]:
    by_id = {r.id: r for r in rows}

    def line(rec_id: int, text: str, stream: str = "stdout", age: float = 1.0) -> OutputLine:
        row = by_id[rec_id]
        return OutputLine(rec_id, row.pid or 0, row.name, stream, text, NOW - age)  # type: ignore[arg-type]

    return {
        1: [line(1, "jerry 20 male", age=2.0)],
        4: [line(4, f"tick {i} from pid 41004", age=30 - i * 0.5) for i in range(3)],
        6: [
            line(6, "about to raise", age=4.2),
            line(6, "Process ForkServerProcess-7:", "stderr", 4.16),
        ]
        + [line(6, text, "stderr", 4.16) for text in TRACEBACK],
        8: [line(8, "ignoring SIGTERM for 60 s", age=19)],
    }


def system_history(cores: int = 2, ticks: int = 60) -> list[SystemSample]:
    """A minute of a busy core 0 and a calmer core 1 (a sine, so the history has shape)."""
    samples = []
    for t in range(ticks):
        per_core = tuple(
            min(100.0, max(0.0, (95.0 if c == 0 else 30 + 25 * math.sin(t / 6 + c)) - (c % 3) * 7))
            for c in range(cores)
        )
        samples.append(
            SystemSample(
                time=1000.0 + t,
                wall=NOW - ticks + t,
                per_core=per_core,
                total=sum(per_core) / cores,
                mem_total=24 * 1024**3,
                mem_used=7 * 1024**3 + 300 * 1024**2,
                mem_percent=30.4,
                load=(1.52, 1.20, 0.88),
            )
        )
    return samples


class FakeServer:
    running = False

    def status(self) -> ServerStatus:
        return ServerStatus(False, "", "process", "forkserver", 4, 32, 0, 0, 0, 0)

    def start(self, config: ServerConfig) -> str:
        raise NotAllowed("the snapshots' server does not listen")

    def stop(self, reason: str = "") -> None:
        pass


class FakeController:
    capabilities = Controller.capabilities  # it stands for one
    max_procs = 256
    grace = 2.0
    interval = 1.0
    server = FakeServer()

    def __init__(
        self,
        rows: list[ProcessRow] | None = None,
        cores: int = 2,
        output: dict[int, list[OutputLine]] | None = None,
        calls: list[ProcessCall] | None = None,
    ) -> None:
        self._rows = {r.id: r for r in (mixed_rows() if rows is None else rows)}
        self._output = mixed_output(list(self._rows.values())) if rows is None else {}
        if output is not None:
            self._output = output
        self._calls = calls or []  # a watched program's calls, handed out with the history
        self._history = system_history(cores)
        self._subscribers: list[Callable[[Event], None]] = []
        self.calls: list[tuple[str, object]] = []

    # reading
    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def emit_history(self) -> None:
        """Hand the app a minute of samples, then every output line."""
        for sample in self._history:
            for callback in self._subscribers:
                callback(Sampled(sample, {}))
        for lines in self._output.values():
            for line in lines:
                for callback in self._subscribers:
                    callback(line)
        for call in self._calls:
            for callback in self._subscribers:
                callback(call)

    def rows(self) -> tuple[ProcessRow, ...]:
        return tuple(self._rows.values())

    def row(self, rec_id: int) -> ProcessRow:
        try:
            return self._rows[rec_id]
        except KeyError:
            raise UnknownProcess(f"no process #{rec_id}") from None

    def system(self) -> SystemSample | None:
        return self._history[-1]

    def output(self, rec_id: int, last: int | None = None) -> tuple[OutputLine, ...]:
        lines = tuple(self._output.get(rec_id, ()))
        return lines if last is None else lines[-last:]

    def live_count(self) -> int:
        return sum(1 for r in self._rows.values() if r.state.is_live)

    def strays(self) -> tuple[int, ...]:
        return ()

    def usable_cpus(self) -> tuple[int, ...]:
        return tuple(range(len(self._history[-1].per_core)))

    def set_interval(self, seconds: float) -> None:
        self.calls.append(("set_interval", seconds))
        self.interval = seconds

    def describe(self) -> str:
        return f"new: forkserver, tick {self.interval:g} s, max {self.max_procs}"

    # commands: recorded, and reflected where a snapshot needs them
    def spawn(self, spec: ProcessSpec, count: int = 1) -> tuple[int, ...]:
        self.calls.append(("spawn", (spec, count)))
        return ()

    def terminate(self, rec_id: int, escalate_after: float | None = None) -> None:
        self.calls.append(("terminate", rec_id))

    def kill(self, rec_id: int) -> None:
        self.calls.append(("kill", rec_id))

    def pause(self, rec_id: int) -> None:
        self.calls.append(("pause", rec_id))

    def resume(self, rec_id: int) -> None:
        self.calls.append(("resume", rec_id))

    def rename(self, rec_id: int, name: str) -> None:
        self._rows[rec_id] = replace(self._rows[rec_id], name=name)

    def restart(self, rec_id: int) -> None:
        self.calls.append(("restart", rec_id))

    def clear_exited(self) -> int:
        gone = [i for i, r in self._rows.items() if r.state.is_over]
        for i in gone:
            del self._rows[i]
        return len(gone)

    async def join_async(self, ids: Iterable[int], timeout: float | None = None) -> bool:
        return True

    def shutdown_children(self, grace: float) -> None:
        self.calls.append(("shutdown", grace))

    def hurry(self) -> None:
        self.calls.append(("hurry",))


def watched_rows() -> list[ProcessRow]:
    """A watched program's tree (proclab watch -- python pool_demo.py): the script, a
    multiprocessing child with a non-Python grandchild, a Pool's workers (one ended with
    its final count, one still working), multiprocessing's resource tracker, and a child
    whose exit status only its parent read. Fixed figures, a frozen clock."""
    M = 1024 * 1024

    def row(
        rec_id: int,
        name: str,
        state: ProcState,
        pid: int,
        parent: int | None,
        command: str,
        mp: MpFacts | None = None,
        exitcode: int | None = None,
        age: float = 10.0,
        ended: float | None = None,
        sample: ProcSample | None = None,
        note: str = "",
    ) -> ProcessRow:
        return ProcessRow(
            rec_id,
            name,
            None,  # a watched process has no spec
            state,
            pid,
            exitcode,
            NOW - age,
            NOW - age,
            None if ended is None else NOW - ended,
            None,
            sample or _sample(0, 0.05, 11 * M, 1, "sleeping"),
            parent=parent,
            command=command,
            mp=mp,
            exit_note=note,
        )

    def child(name: str, target: str, args: str, kwargs: str, ran_after: float) -> MpFacts:
        return MpFacts(name, target, args, kwargs, False, "fork", ran_after=ran_after)

    pool = "Pool"
    return [
        row(1, "python", ProcState.SLEEPING, 42001, None, "python pool_demo.py", age=12.0),
        row(
            2,
            "python",
            ProcState.SLEEPING,
            42002,
            1,
            "python -c from multiprocessing.resource_tracker import main;main(6)",
            MpFacts(role="resource_tracker"),
        ),
        row(
            3,
            "python",
            ProcState.SLEEPING,
            42003,
            1,
            "python pool_demo.py",
            child(
                "fetcher", "__main__.fetch", "('https://example.org',)", "{'retries': 3}", 0.0141
            ),
        ),
        row(4, "sleep", ProcState.SLEEPING, 42010, 3, "sleep 30"),
        row(
            5,
            "python",
            ProcState.EXITED,
            42004,
            1,
            "python pool_demo.py",
            MpFacts(
                "ForkPoolWorker-1",
                "multiprocessing.pool.worker",
                method="fork",
                pool_kind=pool,
                tasks=25,
                calls=250,
                counts_final=True,
            ),
            exitcode=0,
            ended=2.0,
            note="reported by its parent python (42001), which joined it",
        ),
        row(
            6,
            "python",
            ProcState.RUNNING,
            42005,
            1,
            "python pool_demo.py",
            MpFacts(
                "ForkPoolWorker-2",
                "multiprocessing.pool.worker",
                method="fork",
                pool_kind=pool,
                tasks=12,
                calls=120,
            ),
            sample=_sample(99.0, 8.1, 12 * M, 0, "running"),
        ),
        row(
            7,
            "Process-3",
            ProcState.ENDED,
            42006,
            3,
            "python pool_demo.py",
            child("Process-3", "__main__.parse", "(7,)", "{}", 0.0306),
            ended=3.0,
            note="exit status not known: only its parent fetcher (42003) could read it",
        ),
    ]


def watched_calls() -> list[ProcessCall]:
    """What the script (row 1) and fetcher (row 3) did to their children: starts, a join
    with a timeout that ran out, a terminate, a join that saw the end."""
    script = (1, 42001, "python")
    fetcher = (3, 42003, "fetcher")
    return [
        ProcessCall(*script, "start", 3, 42003, "fetcher", NOW - 10.0012, NOW - 10.0),
        ProcessCall(*fetcher, "start", 7, 42006, "Process-3", NOW - 9.0008, NOW - 9.0),
        ProcessCall(
            *script, "join", 3, 42003, "fetcher", NOW - 6.0, NOW - 4.0, timeout=2.0, ended=False
        ),
        ProcessCall(*fetcher, "terminate", 7, 42006, "Process-3", NOW - 3.1, NOW - 3.1),
        ProcessCall(
            *script,
            "join",
            5,
            42004,
            "ForkPoolWorker-1",
            NOW - 5.0,
            NOW - 2.0,
            ended=True,
            exitcode=0,
        ),
    ]


def watched_output(rows: list[ProcessRow]) -> dict[int, list[OutputLine]]:
    by_id = {r.id: r for r in rows}

    def line(rec_id: int, text: str, age: float, stream: str = "stdout") -> OutputLine:
        row = by_id[rec_id]
        return OutputLine(rec_id, row.pid or 0, row.name, stream, text, NOW - age)  # type: ignore[arg-type]

    return {
        1: [line(1, "starting the pool", 11.0), line(1, "fetcher is slow: not waiting", 3.95)],
        3: [line(3, "fetching https://example.org", 9.95)],
        5: [line(5, "worker 42004 done", 2.1)],
        6: [line(6, "warning: chunk 7 is large", 1.0, "stderr")],
    }
