"""Controller events as JSON lines, and a session rebuilt from them.

`Recorder` is a controller subscriber that writes every event (spawns, state changes,
exits, samples, output lines, notices) as one JSON object per line, stamped with the wall
clock. `Replay` reads such a file back and stands in for a controller: it answers the
same questions (rows, system, output) for any moment of the recorded session, and hands
the recorded events to its subscribers as it is moved forward. Every figure it shows was
measured when the session was recorded.

Python values inside a spec (args, kwargs) are stored as their repr and read back with
ast.literal_eval: they are literals by construction.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import enum
import itertools
import json
import threading
import time
import types
import typing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from proclab.core import model
from proclab.core.errors import ProclabError, UnknownProcess
from proclab.core.model import (
    Cleared,
    Event,
    OutputLine,
    ProcessRow,
    ProcessSpec,
    Sampled,
    ServerEvent,
    ServerStatus,
    Spawned,
    SystemSample,
)
from proclab.core.targets import Target

FORMAT = 1
EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        model.Spawned,
        model.StateChanged,
        model.Exited,
        model.OutputLine,
        model.Sampled,
        model.RowUpdated,
        model.Cleared,
        model.Notice,
        model.ServerEvent,
    )
}
_NAMESPACE = {**vars(model), "Target": Target}


# Encoding ------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """A JSON-able form of an event or any value inside one."""
    if isinstance(value, ProcessSpec):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        fields["args"] = repr(value.args)
        fields["kwargs"] = repr(dict(value.kwargs))
        return fields
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    return value


def event_line(event: Event, wall: float) -> str:
    return json.dumps(
        {"t": round(wall, 6), "type": type(event).__name__, "event": encode(event)},
        ensure_ascii=False,
    )


# Decoding ------------------------------------------------------------------------------


def decode_event(type_name: str, data: dict[str, Any]) -> Event:
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise ProclabError(f"unknown event type {type_name!r}")
    return _decode(cls, data)  # type: ignore[no-any-return]


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            if option is not type(None):
                return _decode(option, value)
    if hint is ProcessSpec:
        fields = dict(value)
        fields["args"] = ast.literal_eval(fields["args"])
        fields["kwargs"] = ast.literal_eval(fields["kwargs"])
        fields["target"] = _decode(Target, fields["target"])
        fields["affinity"] = tuple(fields["affinity"]) if fields["affinity"] is not None else None
        return ProcessSpec(**fields)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint, _NAMESPACE)
        return hint(
            **{
                f.name: _decode(hints[f.name], value[f.name])
                for f in dataclasses.fields(hint)
                if f.name in value
            }
        )
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if origin is tuple:
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        return tuple(_decode(inner, v) for v in value)
    if origin is Mapping or origin is dict:
        key_type, value_type = typing.get_args(hint)
        return {key_type(k): _decode(value_type, v) for k, v in value.items()}
    if hint is float and isinstance(value, int):
        return float(value)
    return value


def read_events(path: str | Path) -> list[tuple[float, Event]]:
    """Every (wall time, event) in a recording; ProclabError naming the line if broken."""
    return read_recording(path)[0]


def read_recording(path: str | Path) -> tuple[list[tuple[float, Event]], int | None]:
    """Every (wall time, event) in a recording, and the number of its last line if that
    was cut off mid-way and skipped (else None). A proclab killed while recording leaves
    its last line unfinished: the file's last bytes, with no newline after them. Any other
    broken line is a ProclabError naming it."""
    events: list[tuple[float, Event]] = []
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ProclabError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            # Only the last line can lack its newline; if it follows readable lines and does
            # not parse, it was being written when proclab stopped.
            cut = number > 1 and not raw.endswith(b"\n")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                if cut:
                    return events, number
                raise ProclabError(f"{path}: not UTF-8 text (not a proclab recording)") from None
            if not line.strip():
                continue
            parsed = False
            try:
                record = json.loads(line)
                parsed = True
                if "format" in record:
                    continue  # the header line
                events.append((float(record["t"]), decode_event(record["type"], record["event"])))
            except ProclabError as exc:
                raise ProclabError(f"{path} line {number}: {exc}") from None
            except (ValueError, KeyError, TypeError, SyntaxError) as exc:
                if cut and not parsed:  # whole JSON is a whole line, broken otherwise
                    return events, number
                raise ProclabError(
                    f"{path} line {number}: not a proclab event ({type(exc).__name__}: {exc})"
                ) from None
    return events, None


# Recording -----------------------------------------------------------------------------


class Recorder:
    """Subscribe it to a controller: `controller.subscribe(Recorder(path))`.

    A file that cannot be written (a full disk, /dev/full) stops the recording, never the
    session: the first failed write closes it and calls `on_error` once, with one line."""

    def __init__(
        self,
        path: str | Path,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._on_error = on_error
        self._lock = threading.Lock()
        self.error: str | None = None
        try:
            self._file: IO[str] | None = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ProclabError(f"cannot record into {path}: {exc.strerror}") from None
        self._file.write(
            json.dumps({"format": FORMAT, "recorded": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n"
        )

    def __call__(self, event: Event) -> None:
        line = event_line(event, self._clock())
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.write(line + "\n")
                if isinstance(event, Sampled):  # once a tick: a killed proclab loses little
                    self._file.flush()
            except OSError as exc:
                self._give_up(exc)
            else:
                return
        self._report()  # outside the lock: the report may come back here as an event

    def close(self) -> None:
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.close()
            except OSError as exc:
                self._give_up(exc)
            else:
                self._file = None
                return
        self._report()

    def _give_up(self, exc: OSError) -> None:
        """Under the lock: stop recording, with what went wrong kept for `_report`."""
        assert self._file is not None
        with contextlib.suppress(OSError):
            self._file.close()  # the fd is closed even when the flush inside fails
        self._file = None
        self.error = (
            f"recording stopped: cannot write {self.path}: {exc.strerror or exc}"
            " (everything else goes on)"
        )

    def _report(self) -> None:
        if self._on_error is not None and self.error is not None:
            self._on_error(self.error)


def record_into(controller: Any, path: str | Path | None) -> Callable[[], None]:
    """`--record FILE`: subscribe a Recorder to `controller` (before it starts, so nothing
    is missed); returns what closes it (after the controller closed: its last events are
    the children's ends). Without a path, records nothing. Raises ProclabError if the file
    cannot be opened; a write that fails later is told as a Notice from the controller."""
    if path is None:
        return lambda: None
    recorder = Recorder(
        path, on_error=lambda text: controller.emit_event(model.Notice("error", text, time.time()))
    )
    unsubscribe = controller.subscribe(recorder)

    def close() -> None:
        unsubscribe()
        recorder.close()

    return close


# Replaying -----------------------------------------------------------------------------


class Replay:
    """A recorded session, standing in for a controller (read-only).

    It starts before the first event; `play_to(t)` applies and hands to subscribers every
    event up to wall time `t`. Commands raise ProclabError: nothing can be started or
    signalled in a recording.
    """

    max_procs = 0
    grace = 0.0
    state_label = ""  # set by whoever plays it: "playing", "paused"…
    cut_line: int | None = None  # the recording's last line, cut off mid-way and skipped

    def __init__(self, events: Iterable[tuple[float, Event]]) -> None:
        self.events = list(events)
        if not self.events:
            raise ProclabError("the recording holds no events")
        self.start = self.events[0][0]
        self.end = self.events[-1][0]
        self._subscribers: list[Callable[[Event], None]] = []
        self.rewind()

    @classmethod
    def load(cls, path: str | Path) -> Replay:
        events, cut_line = read_recording(path)
        replay = cls(events)
        replay.cut_line = cut_line
        return replay

    # state
    def rewind(self) -> None:
        self.position = 0  # index of the next event to apply
        self.now = self.start
        self._rows: dict[int, ProcessRow] = {}
        self._system: SystemSample | None = None
        self._output: dict[int, deque[OutputLine]] = {}
        self.server = ReplayServer(self)

    def play_to(self, wall: float) -> list[Event]:
        """Apply (and hand out) every event up to `wall`; returns them."""
        if wall < self.now:
            self.rewind()
        played = []
        while self.position < len(self.events) and self.events[self.position][0] <= wall:
            event = self.events[self.position][1]
            self._apply(event)
            played.append(event)
            self.position += 1
        self.now = max(self.now, min(wall, self.end))
        for event in played:
            for callback in self._subscribers:
                callback(event)
        return played

    def step(self) -> list[Event]:
        """Move to the time of the next event."""
        if self.position >= len(self.events):
            return []
        return self.play_to(self.events[self.position][0])

    def _apply(self, event: Event) -> None:
        if isinstance(event, Sampled):
            self._system = event.system
            for rec_id, sample in event.procs.items():
                row = self._rows.get(rec_id)
                if row is not None and row.state.is_live:
                    self._rows[rec_id] = dataclasses.replace(row, sample=sample)
        elif isinstance(event, OutputLine):
            self._output.setdefault(event.id, deque(maxlen=500)).append(event)
        elif isinstance(event, ServerEvent):
            self.server.apply(event)
        elif isinstance(event, Cleared):
            for rec_id in event.ids:
                self._rows.pop(rec_id, None)
                self._output.pop(rec_id, None)
        elif isinstance(event, Spawned) or hasattr(event, "row"):
            row = event.row  # type: ignore[union-attr]
            self._rows[row.id] = row

    @property
    def sample_interval(self) -> float:
        """The recorded sampler's tick (the median gap between samples)."""
        times = [e.system.time for _, e in self.events if isinstance(e, Sampled)]
        gaps = sorted(b - a for a, b in itertools.pairwise(times))
        return round(gaps[len(gaps) // 2], 2) if gaps else 1.0

    def clock(self) -> float:
        return self.now

    def status_text(self) -> str:
        """What the app's status line says instead of its spawn settings."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.start))
        # Where the replay is first: at 80 columns the end of the line is cut.
        text = (
            f"at {self.now - self.start:.1f} s of {self.end - self.start:.1f} s · recorded {when}"
        )
        return f"{self.state_label} · {text}" if self.state_label else text

    # the controller's read API
    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def rows(self) -> tuple[ProcessRow, ...]:
        return tuple(self._rows.values())

    def row(self, rec_id: int) -> ProcessRow:
        try:
            return self._rows[rec_id]
        except KeyError:
            raise UnknownProcess(f"no process #{rec_id} at this point of the recording") from None

    def system(self) -> SystemSample | None:
        return self._system

    def output(self, rec_id: int, last: int | None = None) -> tuple[OutputLine, ...]:
        lines = tuple(self._output.get(rec_id, ()))
        return lines if last is None else lines[-last:]

    def live_count(self) -> int:
        return 0  # nothing runs: quitting a replay ends nothing

    def usable_cpus(self) -> tuple[int, ...]:
        """The recorded machine's CPUs."""
        return tuple(range(len(self._system.per_core))) if self._system else ()

    def set_interval(self, seconds: float) -> None:
        pass

    def shutdown_children(self, grace: float) -> None:
        pass

    # commands: a recording cannot be changed
    def _read_only(self, *_args: object, **_kwargs: object) -> Any:
        raise ProclabError("this is a recorded session: nothing can be started or signalled")

    spawn = terminate = kill = pause = resume = rename = restart = _read_only

    def clear_exited(self) -> int:
        return self._read_only()  # type: ignore[no-any-return]

    async def join_async(self, ids: Iterable[int], timeout: float | None = None) -> bool:
        return self._read_only()  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[tuple[float, Event]]:
        return iter(self.events)


class ReplayServer:
    """The recorded TCP server: its status at the replay's moment, rebuilt from events."""

    read_only = True  # the pane shows it, and offers no Start or Stop

    def __init__(self, replay: Replay) -> None:
        self._replay = replay
        self._listening: ServerEvent | None = None
        self._active = self._served = self._rejected = 0

    def apply(self, event: ServerEvent) -> None:
        if event.kind == "listening":
            self._listening = event
            self._active = self._served = self._rejected = 0
        elif event.kind == "stopped":
            self._listening = None
        elif event.kind == "accepted":
            self._active += 1
        elif event.kind == "disconnected":
            self._active = max(0, self._active - 1)
            self._served += 1
        elif event.kind == "busy":
            self._rejected += 1

    @property
    def running(self) -> bool:
        return self._listening is not None

    def status(self) -> ServerStatus:
        listening = self._listening
        handlers = sum(
            1 for r in self._replay.rows() if r.tag and r.tag.startswith("tcp") and r.state.is_live
        )
        return ServerStatus(
            running=listening is not None,
            address=listening.address if listening else "",
            mode=listening.mode if listening else "",
            method=listening.method if listening else "",
            workers=listening.workers if listening else 0,
            max_clients=listening.max_clients if listening else 0,
            active=self._active,
            served=self._served,
            rejected=self._rejected,
            handlers=handlers,
        )

    def start(self, *_args: object) -> str:
        raise ProclabError("this is a recorded session: its server cannot be started")

    def stop(self, *_args: object) -> None:
        raise ProclabError("this is a recorded session: its server cannot be stopped")
