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
import errno
import itertools
import json
import math
import os
import threading
import time
import types
import typing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal, NoReturn

from proclab.core import model
from proclab.core.defaults import OUTPUT_LINES_KEPT
from proclab.core.errors import ProclabError, UnknownProcess, past_digit_limit
from proclab.core.model import (
    SERVER_TAG,
    Cleared,
    Event,
    OutputLine,
    ProcessRow,
    ProcessSpec,
    RowEvent,
    Sampled,
    ServerEvent,
    ServerListening,
    ServerStatus,
    SystemSample,
)
from proclab.core.overwrite import not_overwritable
from proclab.core.source import Capabilities, NotAllowed
from proclab.core.targets import Target

if TYPE_CHECKING:
    from proclab.core.server.tcp import ServerConfig
    from proclab.core.source import ProcessSource

# 2: a class per server event kind (ServerListening, ClientData...) where format 1 wrote
# one ServerEvent with every field; format 1 is still read.
# 3: a watched program's (proclab watch/attach): rows with no spec, their tree parent,
# command, multiprocessing facts and exit note, and ProcessCall events; 1 and 2 still read.
FORMAT = 3
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
        model.ServerListening,
        model.ServerNote,
        model.ClientAccepted,
        model.ClientData,
        model.ClientClosed,
        model.ClientTurnedAway,
        model.ProcessCall,
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
        # JSON escapes C0 controls, and only with this C1's (\x9b is a CSI to a terminal
        # that reads UTF-8 C1, as xterm does) and bidi overrides: `tail -f` shows text.
        ensure_ascii=True,
    )


# Decoding ------------------------------------------------------------------------------

# Wall-clock fields are read by time.localtime() and friends: past the year 9999 (or before
# 1970) they are not a time at all.
WALL_FIELDS = frozenset(
    {"t", "wall", "created_at", "started_at", "ended_at", "exited_at", "called_at", "returned_at"}
)
LATEST_WALL = 253_402_300_799.0  # 9999-12-31 23:59:59 UTC
LARGEST_INT = 2**63 - 1  # what a pid, a byte count or a counter can be
LARGEST_FLOAT = 1e15


class DecodeError(ProclabError):
    """A value in a recording is not what its field holds; `field` names where."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)


def decode_event(type_name: str, data: Any) -> Event:
    if type_name == "ServerEvent":  # format 1
        old: _ServerEventV1 = _decode(_ServerEventV1, data, "event")
        fields = {f.name: getattr(old, f.name) for f in dataclasses.fields(old)}
        return model.server_event(**fields)
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise ProclabError(f"unknown event type {type_name!r}")
    event: Event = _decode(cls, data, "event")
    return event


@dataclasses.dataclass(frozen=True, slots=True)
class _ServerEventV1:
    """A server event as format 1 wrote it: every kind's fields in one class."""

    kind: Literal[
        "listening",
        "accepted",
        "data_in",
        "data_out",
        "disconnected",
        "busy",
        "refused",
        "error",
        "warning",
        "stopped",
    ]
    time: float
    client: str = ""
    pid: int | None = None
    nbytes: int = 0
    preview: str = ""
    duration: float | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    reason: str = ""
    max_clients: int = 0
    text: str = ""
    address: str = ""
    mode: str = ""
    method: str = ""
    workers: int = 0


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls, _NAMESPACE)
    return hints


_HINTS: dict[type, dict[str, Any]] = {}


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:39] + "…"


def _decode(hint: Any, value: Any, where: str) -> Any:
    """`value` as the type `hint` names, checked all the way down; DecodeError naming the
    field (`where`, e.g. event.row.sample.cpu_percent) otherwise."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [o for o in typing.get_args(hint) if o is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        if all(typing.get_origin(o) is Literal for o in options):  # one list of choices
            choices = tuple(c for o in options for c in typing.get_args(o))
            return _decode(Literal[choices], value, where)
        problems = []
        for option in options:
            try:
                return _decode(option, value, where)
            except DecodeError as exc:
                problems.append(str(exc))
        raise DecodeError("", problems[0])
    if value is None and hint is not Any:
        raise DecodeError(where, f"null where {_kind(hint)} belongs")
    if hint is Any or hint is object:
        return value
    if origin is Literal:
        if value not in typing.get_args(hint):
            allowed = ", ".join(str(c) if c != "" else '""' for c in typing.get_args(hint))
            raise DecodeError(where, f"{_shown(value)} is not one of {allowed}")
        return value
    if hint is ProcessSpec:
        return _decode_spec(value, where)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise DecodeError(where, f"{_shown(value)} where an object belongs")
        hints = _hints(hint)
        fields = {}
        for f in dataclasses.fields(hint):
            if f.name in value:
                fields[f.name] = _decode(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise DecodeError(f"{where}.{f.name}", "missing")
        _check_figures(hint, fields, where)
        return hint(**fields)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except (ValueError, TypeError):
            allowed = ", ".join(str(m.value) for m in hint)
            raise DecodeError(where, f"{_shown(value)} is not one of {allowed}") from None
    if origin is tuple:
        if not isinstance(value, list):
            raise DecodeError(where, f"{_shown(value)} where a list belongs")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise DecodeError(where, f"{len(value)} items where {len(args)} belong")
        return tuple(
            _decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is Mapping or origin is dict:
        if not isinstance(value, dict):
            raise DecodeError(where, f"{_shown(value)} where an object belongs")
        key_type, value_type = typing.get_args(hint)
        decoded = {}
        for key, item in value.items():
            try:
                decoded[key_type(key)] = _decode(value_type, item, f"{where}[{key}]")
            except ValueError:
                raise DecodeError(where, f"key {_shown(key)} is not {_kind(key_type)}") from None
        return decoded
    return _scalar(hint, value, where)


# Figures no machine gives, each of which a replay showed as measured: "ran for
# -251605868137243 ms", "cpu0 -1000000000000000%", "mem 4194304.0T of 0B".
_NOT_NEGATIVE: dict[type, tuple[str, ...]] = {
    model.ProcSample: (
        "interval", "cpu_percent", "cpu_user", "cpu_system", "cpu_delta", "run_delay_delta",
        "run_delay", "rss", "threads", "ctx_voluntary", "ctx_involuntary", "descendants",
        "reaped_cpu", "others_cpu",
    ),
    SystemSample: ("mem_total", "mem_used"),  # its percentages: _PERCENT_OF_ALL
    ProcessRow: ("stopped_s",),
}  # fmt: skip
_PERCENT_OF_ALL: dict[type, tuple[str, ...]] = {SystemSample: ("total", "mem_percent")}
MAX_SIGNAL = 64  # SIGRTMAX on Linux: an exit code is 0-255, or minus the signal that ended it


def _check_figures(cls: type, fields: dict[str, Any], where: str) -> None:
    """A decoded object's figures within what a machine can measure; DecodeError naming
    the first that is not."""
    for name in _NOT_NEGATIVE.get(cls, ()):
        if fields.get(name, 0) < 0:
            raise DecodeError(f"{where}.{name}", f"{_shown(fields[name])} is below 0")
    for name in _PERCENT_OF_ALL.get(cls, ()):
        if name in fields and not 0 <= fields[name] <= 100:
            raise DecodeError(f"{where}.{name}", f"{_shown(fields[name])} is not 0-100 %")
    if cls is SystemSample:
        for i, busy in enumerate(fields.get("per_core", ())):
            if not 0 <= busy <= 100:
                raise DecodeError(f"{where}.per_core[{i}]", f"{_shown(busy)} is not 0-100 %")
        if fields.get("mem_used", 0) > fields.get("mem_total", 0):
            raise DecodeError(f"{where}.mem_used", "more than mem_total")
    if cls is ProcessRow:
        # A replay showed pid -5, and "-999 signa…" as the exit code of an exited row.
        pid, code = fields.get("pid"), fields.get("exitcode")
        if pid is not None and pid < 1:
            raise DecodeError(f"{where}.pid", f"{_shown(pid)} is no process id")
        if code is not None and not -MAX_SIGNAL <= code <= 255:
            raise DecodeError(
                f"{where}.exitcode", f"{_shown(code)} is neither an exit status nor a signal"
            )
        # "start() took -5000 ms": a steady clock's difference, never below 0. (An end
        # before its start is not refused: a wall clock set back makes a genuine one.)
        latency = fields.get("start_latency")
        if latency is not None and latency < 0:
            raise DecodeError(f"{where}.start_latency", f"{_shown(latency)} is below 0")


def _scalar(hint: Any, value: Any, where: str) -> Any:
    name = where.rsplit(".", 1)[-1]
    if hint is bool:
        if not isinstance(value, bool):
            raise DecodeError(where, f"{_shown(value)} is not true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DecodeError(where, f"{_shown(value)} is not a whole number")
        if abs(value) > LARGEST_INT:
            raise DecodeError(where, f"{_shown(value)} is out of range")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DecodeError(where, f"{_shown(value)} is not a number")
        number = float(value) if abs(value) <= LARGEST_FLOAT else math.inf
        if not math.isfinite(number) or (name in WALL_FIELDS and not 0 <= number <= LATEST_WALL):
            what = "a time" if name in WALL_FIELDS else "a number in range"
            raise DecodeError(where, f"{_shown(value)} is not {what}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise DecodeError(where, f"{_shown(value)} is not text")
        return value
    raise DecodeError(where, f"cannot read a {hint!r}")  # a field type this file forgot


def _kind(hint: Any) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}
    return names.get(hint, "a value")


def _decode_spec(value: Any, where: str) -> ProcessSpec:
    """A spec: its args and kwargs are stored as Python literals (their repr)."""
    if not isinstance(value, dict):
        raise DecodeError(where, f"{_shown(value)} where an object belongs")
    fields = dict(value)
    literals: dict[str, Any] = {}
    for name, kind in (("args", tuple), ("kwargs", dict)):
        text = fields.pop(name, "()" if kind is tuple else "{}")
        if not isinstance(text, str):
            raise DecodeError(f"{where}.{name}", f"{_shown(text)} is not a Python literal's text")
        try:
            literal = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise DecodeError(
                f"{where}.{name}", f"{_shown(text)} is not a Python literal"
            ) from None
        if not isinstance(literal, kind) or (
            kind is dict and not all(isinstance(k, str) for k in literal)
        ):
            raise DecodeError(f"{where}.{name}", f"{_shown(text)} is not a {kind.__name__}")
        literals[name] = literal
    hints = _hints(ProcessSpec)
    checked = {}
    for f in dataclasses.fields(ProcessSpec):
        if f.name in fields:
            checked[f.name] = _decode(hints[f.name], fields[f.name], f"{where}.{f.name}")
        elif f.name == "target":
            raise DecodeError(f"{where}.target", "missing")
    return ProcessSpec(**checked, **literals)


# Far past the longest line proclab writes (an event holds at most an output line of
# 16 KiB, or args of 100,000 characters, each escaped in JSON at most six times over):
# anything longer is not a recording, and is not read whole into memory to say so.
MAX_LINE_BYTES = 4 << 20


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
        try:
            return _read_lines(path, handle, events)
        except OSError as exc:  # opened, then failed (a device, a file on a failing disk)
            raise ProclabError(f"cannot read {path}: {exc.strerror or exc}") from None
        except MemoryError:  # a replay holds every event: a recording of days, say
            events.clear()
            read = ""
            with contextlib.suppress(OSError):  # a FIFO has no position
                read = f" ({handle.tell() / 1e6:,.0f} MB read)"
            raise ProclabError(
                f"{path}: too big to replay in the memory this machine gives proclab{read}"
            ) from None


def _read_lines(
    path: str | Path, handle: BinaryIO, events: list[tuple[float, Event]]
) -> tuple[list[tuple[float, Event]], int | None]:
    """read_recording's reading, line by line, into `events`."""
    newer = ""  # said with an error, when the header names a format newer than this one's
    # A row event of a row no Spawned event began made up a row (one process listed
    # twice). Its Spawned may come after it: a watched tree's row was told updated as
    # another thread told it made (recordings of earlier proclabs hold some).
    spawned: set[int] = set()
    first_seen: dict[int, int] = {}  # row -> the line of its first row event
    headers = 0
    for number, raw in enumerate(iter(partial(handle.readline, MAX_LINE_BYTES + 1), b""), 1):
        if len(raw) > MAX_LINE_BYTES:  # /dev/zero, or a file with no newline in it
            raise ProclabError(
                f"{path} line {number}: longer than {MAX_LINE_BYTES:,} bytes"
                " (not a proclab recording)"
            )
        # Only the last line can lack its newline; if it follows readable lines and does
        # not parse, it was being written when proclab stopped.
        cut = number > 1 and not raw.endswith(b"\n")
        try:
            # An editor's byte-order mark before the first line (schedule reads one too)
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            if cut:
                return events, number
            raise ProclabError(
                f"{path} line {number}: not UTF-8 text (not a proclab recording)"
            ) from None
        if not line.strip():
            continue
        parsed = False
        try:
            record = json.loads(line)
            parsed = True
            if not isinstance(record, dict):
                raise DecodeError("", f"{_shown(record)} where an event belongs")
            if "format" in record:  # the header line
                written = record["format"]
                if type(written) is not int or written < 1:
                    # Read on without a word, a header of format "x" or 0 replayed what
                    # followed as if it were proclab's.
                    raise DecodeError(
                        "format", f"{_shown(written)} is not a format (proclab's are 1 to {FORMAT})"
                    )
                if written > FORMAT:
                    newer = f" (recorded by a newer proclab: format {written}; this one reads 1 to {FORMAT})"
                if events or headers:
                    # Two files joined (`cat a.jsonl b.jsonl`): replayed as one, the second
                    # session's rows took the first's ids, and three of five processes were
                    # shown.
                    raise DecodeError(
                        "format", "a second recording's header (two recordings joined?)"
                    )
                headers += 1
                continue
            for key in ("t", "type", "event"):
                if key not in record:
                    raise DecodeError(key, "missing")
            wall = _scalar(float, record["t"], "t")
            if events and wall < events[-1][0]:
                wall = _in_order(wall, events[-1][0])
            if not isinstance(record["type"], str):
                raise DecodeError("type", f"{_shown(record['type'])} is not an event type")
            event = decode_event(record["type"], record["event"])
            if isinstance(event, model.Spawned):
                spawned.add(event.row.id)
            elif isinstance(event, RowEvent):
                first_seen.setdefault(event.row.id, number)
            events.append((wall, event))
        except ProclabError as exc:
            raise ProclabError(f"{path} line {number}: {exc}{newer}") from None
        except RecursionError:
            raise ProclabError(f"{path} line {number}: nested too deeply") from None
        except (ValueError, KeyError, TypeError, SyntaxError) as exc:
            if cut and not parsed:  # whole JSON is a whole line, broken otherwise
                return events, number
            digits = past_digit_limit(exc)
            if digits is not None:
                raise ProclabError(f"{path} line {number}: {digits}") from None
            raise ProclabError(
                f"{path} line {number}: not a proclab event ({type(exc).__name__}: {exc})"
            ) from None
    _all_spawned(path, first_seen, spawned)
    return events, None


def _all_spawned(path: str | Path, first_seen: dict[int, int], spawned: set[int]) -> None:
    """ProclabError naming the first line of a row no Spawned event began."""
    never = [(line, rec_id) for rec_id, line in first_seen.items() if rec_id not in spawned]
    if never:
        line, rec_id = min(never)
        raise ProclabError(
            f"{path} line {line}: event.row.id: {rec_id}: no Spawned event began this row"
        )


# A line's time may be this much before the line before's (a wall clock set back a
# little while recording) and is then taken as that line's; further back, the file is
# broken: its events would be applied out of the order they happened in.
BACK_IN_TIME_S = 1.0


def _in_order(wall: float, before: float) -> float:
    if before - wall > BACK_IN_TIME_S:
        raise DecodeError(
            "t", f"{before - wall:.3f} s before the line before's: a recording is in time order"
        )
    return before


# Recording -----------------------------------------------------------------------------


class Recorder:
    """Subscribe it to a controller: `controller.subscribe(Recorder(path))`.

    A file that cannot be written (a full disk, /dev/full) stops the recording, never the
    session: the first failed write closes it and calls `on_error` once, with one line."""

    def __init__(
        self,
        path: str | Path,
        clock: Callable[[], float] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._clock = clock or _steady_wall_clock()
        self._on_error = on_error
        self._lock = threading.Lock()
        self.error: str | None = None
        self.cut_short: str | None = None  # said once the session is over (record_into)
        # Opened now, so that a path that cannot be written is said before anything
        # starts; emptied and written from the first event on, so that a session that
        # never began (a server refused its port) leaves an earlier recording as it was.
        self._created = not os.path.lexists(self.path)
        self._file: IO[str] | None = _open_for_recording(self.path)
        self._begun = False

    def _begin(self) -> None:
        """Under the lock, before the first line: the file emptied, then the header."""
        if self._begun:
            return
        assert self._file is not None
        self._begun = True
        with contextlib.suppress(OSError):  # a FIFO or a device: nothing to empty
            os.ftruncate(self._file.fileno(), 0)
        self._file.write(
            json.dumps({"format": FORMAT, "recorded": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n"
        )

    def __call__(self, event: Event) -> None:
        with self._lock:
            if self._file is None:
                return
            try:
                self._begin()
                # Stamped under the lock: events from several threads keep their times in
                # the order of their lines, which a replay checks.
                self._file.write(event_line(event, self._clock()) + "\n")
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
            if not self._begun:  # nothing happened: nothing recorded, nothing lost
                self._file.close()
                self._file = None
                if self._created:
                    with contextlib.suppress(OSError):
                        self.path.unlink()
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
        why = exc.strerror or str(exc)
        self.error = f"recording stopped: cannot write {self.path}: {why} (everything else goes on)"
        self.cut_short = (
            f"the recording in {self.path} stops short: it could not be written ({why})"
        )

    def _report(self) -> None:
        if self._on_error is not None and self.error is not None:
            self._on_error(self.error)


class Recordable(typing.Protocol):
    """What `record_into` records: a Controller, or a watched tree (core/watch)."""

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...
    def emit_event(self, event: Event) -> None: ...


def _steady_wall_clock() -> Callable[[], float]:
    """time.time() as the recording starts, then moved on by the monotonic clock: a wall
    clock set back while recording (NTP, by hand) left lines earlier than the ones before
    them, and a replay refuses a recording that goes back in time. CLOCK_BOOTTIME, not
    time.monotonic: it goes on while the machine is suspended, as the wall clock does, so
    a line after a suspend is not early by the suspend's length."""
    anchor = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return lambda: anchor + time.clock_gettime(time.CLOCK_BOOTTIME)


def _open_for_recording(path: Path) -> IO[str]:
    """The file, opened without waiting: a FIFO nobody reads yet would hold the open
    until someone does, where Ctrl+C and SIGTERM could not end proclab cleanly. A file
    that holds anything but a recording is refused, not overwritten."""
    why = not_overwritable(path, _a_recording, "a proclab recording")
    if why is not None:
        raise ProclabError(
            f"cannot record into {path}: {why} (not overwritten: remove it or choose another name)"
        )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise ProclabError(
                f"cannot record into {path}: a FIFO nobody reads yet (start its reader first)"
            ) from None
        raise ProclabError(f"cannot record into {path}: {exc.strerror}") from None
    os.set_blocking(fd, True)  # its writes wait for a reader that falls behind
    return open(fd, "w", encoding="utf-8")


def _a_recording(head: bytes) -> bool:
    """Whether a file that begins so is a recording (its header line). `--record
    notes.txt` replaced the notes, and `watch --stdin in.csv --record in.csv` the
    program's own input."""
    try:
        header = json.loads(head.split(b"\n", 1)[0])
    except ValueError:
        return False
    return isinstance(header, dict) and "format" in header and "recorded" in header


def record_into(controller: Recordable, path: str | Path | None) -> Callable[[], str | None]:
    """`--record FILE`: subscribe a Recorder to `controller` (before it starts, so nothing
    is missed); returns what closes it (after the controller closed: its last events are
    the children's ends), which says why the recording is not whole (None: it is), to be
    said once the session is over (a notice in the app was gone with it, and the app and
    `serve` exited 0 over half a file). Without a path, records nothing. Raises
    ProclabError if the file cannot be opened; a write that fails later is told as a
    Notice from the controller."""
    if path is None:
        return lambda: None
    recorder = Recorder(
        path, on_error=lambda text: controller.emit_event(model.Notice("error", text, time.time()))
    )
    unsubscribe = controller.subscribe(recorder)

    def close() -> str | None:
        unsubscribe()
        recorder.close()
        return recorder.cut_short

    return close


# Replaying -----------------------------------------------------------------------------


MIN_INTERVAL_S = 0.001  # a tick shown as 0 ms was one the panes divided by


def _sample_interval(events: list[tuple[float, Event]]) -> float:
    """The recorded sampler's tick: the median gap between samples (1 s without two). A
    file's sample times may be anything: a gap that is not forward is left out."""
    times = [e.system.time for _, e in events if isinstance(e, Sampled)]
    gaps = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
    if not gaps:
        return 1.0
    return max(MIN_INTERVAL_S, round(gaps[len(gaps) // 2], 3))


class Replay:
    """A recorded session, standing in for a controller (read-only).

    It starts before the first event; `play_to(t)` applies and hands to subscribers every
    event up to wall time `t`. Commands raise NotAllowed: nothing can be started or
    signalled in a recording.
    """

    # Nothing runs: quitting a replay ends nothing.
    capabilities = Capabilities(
        spawn=False,
        signal=False,
        rename=False,
        restart=False,
        join=False,
        clear=False,
        server=False,
        ends_on_quit=False,
    )
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
        # Read once: the app asks at every sample it draws (all of them, once a seek).
        self.sample_interval = _sample_interval(self.events)
        self._subscribers: list[Callable[[Event], None]] = []
        self.rewind()

    @classmethod
    def load(cls, path: str | Path) -> Replay:
        events, cut_line = read_recording(path)
        if not events and cut_line is not None:
            # "holds no events" of a file whose one event was cut off mid-line
            raise ProclabError(
                f"{path}: the recording holds no whole event (its line {cut_line} is cut off"
                " mid-way: proclab stopped while writing it)"
            )
        replay = cls(events)
        replay.cut_line = cut_line
        return replay

    # state
    def rewind(self) -> None:
        self.position = 0  # index of the next event to apply
        self.now = self.start
        self._rows: dict[int, ProcessRow] = {}
        self._cleared: set[int] = set()
        self._system: SystemSample | None = None
        self._output: dict[int, deque[OutputLine]] = {}
        self.server = ReplayServer(self)

    def play_to(self, wall: float) -> list[Event]:
        """Apply (and hand out) every event up to `wall`; returns them."""
        if wall < self.now:
            self.rewind()
        played = []
        while self.position < len(self.events) and self.events[self.position][0] <= wall:
            event = self._apply(self.events[self.position][1])
            if event is not None:
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

    def _apply(self, event: Event) -> Event | None:
        """Take `event` in; what to hand out for it (None: nothing)."""
        if isinstance(event, Sampled):
            self._system = event.system
            for rec_id, sample in event.procs.items():
                row = self._rows.get(rec_id)
                if row is not None and row.state.is_live:
                    self._rows[rec_id] = row.with_sample(sample, row.state)
        elif isinstance(event, OutputLine):
            self._output.setdefault(event.id, deque(maxlen=OUTPUT_LINES_KEPT)).append(event)
        elif isinstance(event, ServerEvent):
            self.server.apply(event)
        elif isinstance(event, Cleared):
            for rec_id in event.ids:
                self._rows.pop(rec_id, None)
                self._output.pop(rec_id, None)
                self._cleared.add(rec_id)
        elif isinstance(event, RowEvent):
            # A recording made before row events went out in order (or edited) can hold
            # a late, older row: a cleared row does not come back, an ended one does not
            # live again (a restart is a new row).
            known = self._rows.get(event.row.id)
            if event.row.id in self._cleared:
                return None
            if known is not None and known.state.is_over and not event.row.state.is_over:
                return dataclasses.replace(event, row=known)
            self._rows[event.row.id] = event.row
        return event

    @property
    def interval(self) -> float:
        return self.sample_interval

    def clock(self) -> float:
        return self.now

    def describe(self) -> str:
        """What the app's status line says instead of its spawn settings."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.start))
        # Where the replay is first: at 80 columns the end of the line is cut.
        text = (
            f"at {self.now - self.start:.1f} s of {self.end - self.start:.1f} s · recorded {when}"
        )
        return f"{self.state_label} · {text}" if self.state_label else text

    status_text = describe  # the app's name for it until it reads describe()

    # the controller's read API
    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        # Replaced, never changed in place (as the registry's): an app quitting
        # unsubscribes from a worker thread while play_to() loops over the list.
        self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            self._subscribers = [c for c in self._subscribers if c is not callback]

        return unsubscribe

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

    def strays(self) -> tuple[int, ...]:
        return ()

    def usable_cpus(self) -> tuple[int, ...]:
        """The recorded machine's CPUs."""
        return tuple(range(len(self._system.per_core))) if self._system else ()

    def set_interval(self, seconds: float) -> None:
        pass

    def shutdown_children(self, grace: float) -> None:
        pass

    def hurry(self) -> None:
        pass  # a recording ends nothing

    # commands: a recording cannot be changed
    def _read_only(self, *_args: object, **_kwargs: object) -> NoReturn:
        raise NotAllowed("this is a recorded session: nothing can be started or signalled")

    spawn = terminate = kill = pause = resume = rename = restart = clear_exited = _read_only

    async def join_async(self, ids: Iterable[int], timeout: float | None = None) -> bool:
        self._read_only()

    def __iter__(self) -> Iterator[tuple[float, Event]]:
        return iter(self.events)


class ReplayServer:
    """The recorded TCP server: its status at the replay's moment, rebuilt from events."""

    read_only = True  # the pane shows it, and offers no Start or Stop

    def __init__(self, replay: Replay) -> None:
        self._replay = replay
        self._listening: ServerListening | None = None
        self._active = self._served = self._rejected = 0
        self._told = False  # a connection's opening or end was recorded

    def apply(self, event: ServerEvent) -> None:
        if isinstance(event, ServerListening):
            self._listening = event
            self._active = self._served = self._rejected = 0
            self._told = False
        elif event.kind == "stopped":
            self._listening = None
        elif event.kind == "accepted":
            self._active += 1
            self._told = True
        elif event.kind == "disconnected":
            self._active = max(0, self._active - 1)
            self._served += 1
            self._told = True
        elif event.kind == "busy":
            self._rejected += 1

    @property
    def running(self) -> bool:
        return self._listening is not None

    def status(self) -> ServerStatus:
        """As the live server counts: its handlers and workers, not its server process;
        connections from their openings and ends where those were recorded, else, in
        process mode, from the handlers (one a connection) started since it listened."""
        listening = self._listening
        since = listening.time if listening else 0.0
        ours = [
            r
            for r in self._replay.rows()
            if r.tag
            and r.tag.startswith("tcp")
            and r.tag != SERVER_TAG
            and (r.started_at or since) >= since
        ]
        handlers = sum(1 for r in ours if r.state.is_live)
        active, served, counted = self._active, self._served, True
        log = listening.log if listening else ""
        if listening is not None and log not in ("all", "connections") and not self._told:
            if listening.mode == "process":
                active, served = handlers, len(ours) - handlers
            else:
                counted = False
        return ServerStatus(
            running=listening is not None,
            address=listening.address if listening else "",
            mode=listening.mode if listening else "",
            method=listening.method if listening else "",
            workers=listening.workers if listening else 0,
            max_clients=listening.max_clients if listening else 0,
            active=active,
            served=served,
            rejected=self._rejected,
            handlers=handlers,
            counted=counted,
        )

    def start(self, config: ServerConfig) -> str:
        raise NotAllowed("this is a recorded session: its server cannot be started")

    def stop(self, reason: str = "") -> None:
        raise NotAllowed("this is a recorded session: its server cannot be stopped")


if TYPE_CHECKING:

    def _has_the_face(replay: Replay) -> ProcessSource:
        return replay  # mypy checks that a Replay is a ProcessSource
