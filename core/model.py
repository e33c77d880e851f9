"""The immutable snapshots and events that proclab.core hands to its consumers.

Everything here is a frozen dataclass: the app, the CLI and the tests read them, and only
the controller makes new ones.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from proclab.core.defaults import DEFAULT_METHOD, ServerMode, StartMethod
from proclab.core.targets import Target


class ProcState(enum.StrEnum):
    """Where a child is in its life cycle.

    The first five are live states read from the kernel (psutil's status); the last four
    are how the child ended, read from its exit code once it has been reaped.
    """

    STARTING = "starting"
    RUNNING = "running"
    SLEEPING = "sleeping"
    STOPPED = "stopped"
    ZOMBIE = "zombie"
    EXITED = "exited"
    TERMINATED = "terminated"
    KILLED = "killed"
    FAILED = "failed"
    # A watched process that has ended, whose exit status proclab could not read: only its
    # parent (not proclab) could, and it did not say (ProcessRow.exit_note names it).
    ENDED = "ended"

    @property
    def is_over(self) -> bool:
        return self in _OVER

    @property
    def is_live(self) -> bool:
        return not self.is_over


_OVER = frozenset(
    {ProcState.EXITED, ProcState.TERMINATED, ProcState.KILLED, ProcState.FAILED, ProcState.ENDED}
)

Stream = Literal["stdout", "stderr"]
NoticeLevel = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """Everything needed to start (and restart) one child: the call and how to make it."""

    target: Target
    args: tuple[object, ...] = ()
    kwargs: Mapping[str, object] = field(default_factory=dict)
    name: str | None = None
    daemon: bool = False
    method: StartMethod = DEFAULT_METHOD
    affinity: tuple[int, ...] | None = None
    cwd: str = "."

    @property
    def call_text(self) -> str:
        """The call as Python would spell it, for the details pane and the CLI."""
        parts = [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.target.function}({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One sampler tick's figures for one child, all measured by the sampler thread."""

    time: float  # monotonic clock of the reading
    interval: float  # seconds since the previous reading (since its birth on the first)
    status: str  # psutil's status string: running, sleeping, disk-sleep, stopped, zombie...
    cpu_percent: float  # share of one core over the last interval, 0..100*threads
    cpu_user: float  # cumulative seconds
    cpu_system: float  # cumulative seconds
    cpu_delta: float  # seconds on a CPU during the last interval
    run_delay_delta: float  # seconds runnable but waiting for a CPU during the last interval
    run_delay: float  # cumulative seconds waiting on a run queue (main thread)
    rss: int  # bytes
    threads: int
    core: int | None  # the CPU it last ran on
    ctx_voluntary: int
    ctx_involuntary: int
    descendants: int = 0  # processes it started, theirs... (counted up to the guard's limit)
    # CPU seconds of the processes it started and reaped (and of theirs), which are not in
    # its own figures: a child that waits for a Pool does its work in other processes.
    reaped_cpu: float = 0.0
    # Of its CPU time, what threads other than its main one ran (0 where not known).
    others_cpu: float = 0.0

    @property
    def cpu_time(self) -> float:
        return self.cpu_user + self.cpu_system


@dataclass(frozen=True, slots=True)
class MpFacts:
    """What multiprocessing knows of a watched process, as the hook inside the program
    reported it (core/watch/protocol.py). None where it was not said."""

    name: str | None = None  # Process.name
    target: str | None = None  # qualified name of the target (a subclass's run)
    args: str | None = None  # repr, shortened
    kwargs: str | None = None
    daemon: bool | None = None
    method: str | None = None  # "fork", "forkserver", "spawn"
    pool_kind: str | None = None  # "Pool" or "ProcessPoolExecutor" for a pool worker
    tasks: int | None = None  # pool worker: tasks run so far (a map chunk is one)
    calls: int | None = None  # pool worker: calls of the user's function so far
    role: str | None = None  # multiprocessing's own helper: forkserver, resource_tracker...
    ran_after: float | None = None  # seconds from the parent's start() call to the child
    # running its target (the start latency the program itself paid)
    counts_final: bool = False  # the pool worker's last report came at its end: exact


# The tag of the TCP server's own process (a handler's is its client's address).
SERVER_TAG = "tcp server"


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """What the process table shows about one child; outlives the child until cleared.

    A watched process (`proclab watch`/`attach`: not started by proclab) has no `spec`;
    its `parent`, `command` and `mp` say what it is instead."""

    id: int
    name: str
    spec: ProcessSpec | None
    state: ProcState
    pid: int | None = None
    exitcode: int | None = None
    created_at: float = 0.0  # wall clock when spawn was asked for
    started_at: float | None = None  # wall clock when start() was called (it is born inside)
    ended_at: float | None = None  # wall clock when it was reaped
    start_latency: float | None = None  # seconds start() took
    sample: ProcSample | None = None  # the latest sampler reading while it lived
    error: str | None = None  # why it could not start, or the last exception it raised
    traceback: tuple[str, ...] = ()  # the last traceback it printed on stderr
    tag: str | None = None  # who started it, e.g. "tcp 127.0.0.1:5123"; SERVER_TAG
    parent_id: int | None = None  # the row this one restarts
    batch: int | None = None  # started together with others (count > 1): the first one's id
    parent: int | None = None  # watched: the row of its parent in the tree (None: a root)
    command: str = ""  # watched: its command line, shortened
    mp: MpFacts | None = None  # watched: what multiprocessing says it is
    exit_note: str = ""  # watched: why the exit status is not known, or who told it
    stopped_s: float = 0.0  # seconds spent stopped (SIGSTOP, `p`), in stops now over
    stopped_since: float | None = None  # wall clock when its current stop was seen to begin
    # A stop or a continue proclab did not send (SIGSTOP from elsewhere) is seen at a
    # sampler tick: its stopped time is then known to within a tick either way.
    stops_at_ticks: bool = False
    # watched: it had ended (a zombie) when proclab first saw it, so it ended at some
    # moment before ended_at that nothing tells: its wall time is a bound, not a figure.
    end_unseen: bool = False
    # watched: when its pidfd said it ended, before its row ends: a zombie's parent may
    # read its status long after (the lesson's zombie), and its wall time stops here.
    exited_at: float | None = None

    @property
    def own_spec(self) -> ProcessSpec:
        """The spec of a row proclab started; a watched process has none (ValueError)."""
        if self.spec is None:
            raise ValueError(f"{self.name} was not started by proclab: it has no spec")
        return self.spec

    @property
    def cpu_at_least(self) -> bool:
        """Its CPU time is a lower bound: it has ended, and its figures were read while it
        ran (its last tick: a forkserver child killed and reaped by its fork server before
        proclab could read its end), not at its end."""
        return self.state.is_over and self.sample is not None and self.sample.status != "zombie"

    def wall_time(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else self.exited_at
        # Not below 0: a wall clock set back while it ran (or a recording that says so)
        # is no life of minus seconds.
        return max(0.0, (end if end is not None else now) - self.started_at)

    def stopped_time(self, now: float) -> float:
        """Seconds of its life spent stopped: it could not run, nor wanted to."""
        if self.stopped_since is None:
            return self.stopped_s
        return self.stopped_s + max(0.0, (self.ended_at or now) - self.stopped_since)

    def stop_changes(self, state: ProcState, at: float) -> dict[str, Any]:
        """The changes that count its stops when its state becomes `state` at `at`."""
        if state is ProcState.STOPPED:
            return {} if self.stopped_since is not None else {"stopped_since": at}
        if self.stopped_since is None:
            return {}
        return {"stopped_s": self.stopped_time(at), "stopped_since": None}

    def with_sample(self, sample: ProcSample, state: ProcState) -> ProcessRow:
        """This row with a new sample and state. What dataclasses.replace does, in half
        its time (2.3 against 4.6 us here): every tick makes a new row for each child."""
        values = list(_ROW_VALUES(self))
        values[_SAMPLE_AT], values[_STATE_AT] = sample, state
        return ProcessRow(*values)

    def with_changes(self, **changes: Any) -> ProcessRow:
        """This row with `changes`, as dataclasses.replace makes it, without reading each
        field's definition: a child's start and end each make a new row, and replace
        touched 13 pages more of proclab's memory, each a copy while a fork child shares
        it (the launcher's page faults, 300 starts). Unknown fields raise TypeError."""
        values = list(_ROW_VALUES(self))
        for name, value in changes.items():
            at = _ROW_INDEX.get(name)
            if at is None:
                raise TypeError(f"ProcessRow has no field {name!r}")
            values[at] = value
        return ProcessRow(*values)


_ROW_FIELDS = [f.name for f in dataclasses.fields(ProcessRow)]
_ROW_VALUES = operator.attrgetter(*_ROW_FIELDS)
_ROW_INDEX = {name: at for at, name in enumerate(_ROW_FIELDS)}
_SAMPLE_AT, _STATE_AT = _ROW_INDEX["sample"], _ROW_INDEX["state"]


@dataclass(frozen=True, slots=True)
class SystemSample:
    """One sampler tick's whole-machine figures."""

    time: float  # monotonic
    wall: float  # wall clock
    per_core: tuple[float, ...]  # percent busy per logical CPU
    total: float  # percent busy over all CPUs
    mem_total: int
    mem_used: int
    mem_percent: float
    load: tuple[float, float, float]


# Events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spawned:
    row: ProcessRow


@dataclass(frozen=True, slots=True)
class StateChanged:
    row: ProcessRow
    old: ProcState


@dataclass(frozen=True, slots=True)
class Exited:
    row: ProcessRow


@dataclass(frozen=True, slots=True)
class OutputLine:
    id: int
    pid: int
    name: str
    stream: Stream
    text: str
    time: float  # wall clock when proclab read it
    # A piece of a line longer than output.MAX_LINE_BYTES, going on from the one before.
    continues: bool = False
    # Read after its process had ended (and every byte it wrote had been read): written
    # by a process it started that kept its output, a grandchild, not by `pid` itself.
    after_end: bool = False


@dataclass(frozen=True, slots=True)
class ProcessCall:
    """A multiprocessing call one watched process made on another, as the hook in the
    caller reported it: start(), join() (how long the caller was blocked in it),
    terminate() or kill(). Times are the caller's wall clock."""

    id: int  # the caller's row
    pid: int
    name: str
    call: Literal["start", "join", "terminate", "kill"]
    child_id: int | None  # the row of the process it was called on (None: not seen)
    child_pid: int
    child_name: str
    called_at: float  # when the call began
    returned_at: float  # when it returned
    timeout: float | None = None  # join(timeout)
    ended: bool | None = None  # join: the child had ended (else the timeout ran out)
    exitcode: int | None = None  # join: the exit code the caller read (-N: signal N)

    @property
    def took(self) -> float:
        """Seconds inside the call: for join(), how long the caller was blocked."""
        return self.returned_at - self.called_at


@dataclass(frozen=True, slots=True)
class Sampled:
    """One tick: the machine, and each live child measured. `stood`: children read this
    tick whose every figure was what their last sample says (nothing ran, nothing moved:
    a sleeping child's usual tick); that sample stands, as of this tick's time, and no new
    one is made (the registry's `current_sample`)."""

    system: SystemSample
    procs: Mapping[int, ProcSample]
    stood: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class RowUpdated:
    """Something other than the state changed: a rename, a traceback read from stderr."""

    row: ProcessRow


@dataclass(frozen=True, slots=True)
class Cleared:
    ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the controller did on its own that a person should see."""

    level: NoticeLevel
    text: str
    time: float


# What the TCP server and its handlers did: one class per kind, or per group of kinds with
# the same fields. Every one says when, and which client and which process, where it has
# them; `kind` is what a log styles and a JSON line names.


@dataclass(frozen=True, slots=True)
class ServerListening:
    """The server listens: where, and how it serves."""

    time: float  # wall clock
    address: str  # "127.0.0.1:8001"
    mode: ServerMode | Literal["watched"]  # watched: a socket a watched program listens on
    max_clients: int  # the limit of clients at once
    # The handlers' start method ("": thread mode has no handler processes). Typed, so a
    # recording that names another is refused as it is read, not shown.
    method: StartMethod | Literal[""] = ""
    workers: int = 0  # pool mode's worker processes
    text: str = ""  # what to tell a person
    client: str = ""
    pid: int | None = None
    kind: Literal["listening"] = "listening"
    # Its --log level: at "errors" no connection's opening or end is told ("": a
    # recording made before it was kept, or a watched program's socket).
    log: Literal["all", "connections", "errors", ""] = ""


@dataclass(frozen=True, slots=True)
class ServerNote:
    """Something to tell a person: an error, a warning, or that the server stopped."""

    kind: Literal["error", "warning", "stopped"]
    time: float
    text: str
    client: str = ""  # the client it concerns, if any
    pid: int | None = None  # the handler or worker it concerns, if any


@dataclass(frozen=True, slots=True)
class ClientAccepted:
    time: float
    client: str  # "127.0.0.1:51234"
    pid: int | None  # the handler (process mode), worker (pool) or proclab (thread)
    text: str = ""  # thread mode: which thread
    kind: Literal["accepted"] = "accepted"


@dataclass(frozen=True, slots=True)
class ClientData:
    """Bytes in from a client, or out to it."""

    kind: Literal["data_in", "data_out"]
    time: float
    client: str
    pid: int | None
    nbytes: int
    preview: str  # the first bytes, printable


@dataclass(frozen=True, slots=True)
class ClientClosed:
    time: float
    client: str
    pid: int | None
    reason: str  # peer closed, idle timeout, reset, lifetime, ...
    duration: float | None = None  # how long it lasted; None: the handler could not say
    bytes_in: int = 0  # totals
    bytes_out: int = 0
    kind: Literal["disconnected"] = "disconnected"


@dataclass(frozen=True, slots=True)
class ClientTurnedAway:
    """A client sent away at once: busy (the limit of clients), or refused (stopping)."""

    kind: Literal["busy", "refused"]
    time: float
    client: str
    pid: int | None
    max_clients: int  # the limit of clients at once
    text: str = ""  # why, when it is not max_clients


ServerEvent = (
    ServerListening | ServerNote | ClientAccepted | ClientData | ClientClosed | ClientTurnedAway
)
SERVER_EVENT_CLASSES: dict[str, type[ServerEvent]] = {
    "listening": ServerListening,
    "error": ServerNote,
    "warning": ServerNote,
    "stopped": ServerNote,
    "accepted": ClientAccepted,
    "data_in": ClientData,
    "data_out": ClientData,
    "disconnected": ClientClosed,
    "busy": ClientTurnedAway,
    "refused": ClientTurnedAway,
}


# Read once: a busy server builds thousands of events a second.
_FIELD_NAMES = {
    cls: frozenset(f.name for f in dataclasses.fields(cls)) for cls in SERVER_EVENT_CLASSES.values()
}


def server_event(kind: str, time: float, **fields: Any) -> ServerEvent:
    """The event of this kind from fields that may hold more than it needs (a handler's
    report, a format-1 recording's line): the others are left out. ValueError for a kind
    that does not exist, TypeError for a field it needs and did not get."""
    fields["time"] = time
    return server_event_from(kind, fields)


def server_event_from(kind: str, fields: dict[str, Any]) -> ServerEvent:
    """server_event, from a dict holding its time, which it may change and keep: a busy
    server's log builds thousands a second, and each copy of their fields (keywords
    passed on, a dict updated) cost it about a microsecond (timeit)."""
    cls = SERVER_EVENT_CLASSES.get(kind)
    if cls is None:
        raise ValueError(f"no server event of kind {kind!r}")
    names = _FIELD_NAMES[cls]
    if not fields.keys() <= names:
        fields = {k: v for k, v in fields.items() if k in names}
    fields["kind"] = kind
    return cls(**fields)


@dataclass(frozen=True, slots=True)
class ServerStatus:
    running: bool
    address: str  # "127.0.0.1:8001" while running
    mode: ServerMode | Literal["watched", ""]  # "": not running (a recording's)
    method: StartMethod | Literal[""]
    workers: int
    max_clients: int
    active: int  # connections being served
    served: int  # connections served to their end (not those cut short by their handler's end)
    rejected: int  # clients turned away with "busy"
    handlers: int  # live handler or worker processes
    # Whether active and served are known: a recording of a pool or thread server at
    # --log errors holds no connection's opening or end.
    counted: bool = True


# The events that carry a process's row (the row as it was made, or as it stands when it
# goes out: core/registry.py). A subscriber that keeps rows keeps the last of these.
RowEvent = Spawned | StateChanged | Exited | RowUpdated

Event = (
    Spawned
    | StateChanged
    | Exited
    | OutputLine
    | Sampled
    | RowUpdated
    | Cleared
    | Notice
    | ServerEvent
    | ProcessCall
)
