"""What the hook inside a watched program tells proclab: one JSON object per message.

The hook (`hook/_proclab_hook.py`) writes them; `parse` reads them. Bytes from a process
are hostile input: anything that is not exactly a known message (not JSON, too large,
nested too deep, a field missing, of the wrong type, out of range, not finite) is a
`ProtocolError` with a one-line reason, never another exception. Unknown extra fields
are ignored, so a newer hook can add some.

Every message carries `pid` (the sender; the server checks it against the kernel's
credentials of the message) and `t` (`time.time()` in the sender, so times from
different processes compare).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A message larger than this is refused. The hook bounds argv (64 items of 1,000
# characters) and reprs (200 characters), so a real message stays far below it.
MAX_MESSAGE_BYTES = 65536
MAX_TEXT = 4096
MAX_ITEMS = 256
MAX_PID = 2**31 - 1

STREAMS = ("stdout", "stderr")


class ProtocolError(ValueError):
    """A message that is dropped (and counted), with why."""


# How the command line of multiprocessing's fork server, and so of every child it forks,
# reads (`python -B -c 'from multiprocessing.forkserver import main; ...'`).
FORK_SERVER_MAIN = "from multiprocessing.forkserver import main"


@dataclass(frozen=True, slots=True)
class Hello:
    """A Python process started (`via` "load") or was forked ("fork") and, for each
    name in `streams`, took a pipe of its own for that fd: the read ends came with the
    message, in that order. Empty `streams`: its output goes where its parent's does.
    `in_start`: forked inside its parent's `Process.start()`, which will tell of it."""

    pid: int
    t: float
    ppid: int
    argv: tuple[str, ...]
    exe: str
    via: str
    streams: tuple[str, ...]
    in_start: bool = False


@dataclass(frozen=True, slots=True)
class MpStart:
    """`Process.start()` returned in the sender, having started `child`."""

    pid: int
    t: float
    child: int
    name: str
    target: str | None  # qualified name, or a repr
    args: str  # repr, shortened
    kwargs: str
    daemon: bool
    method: str | None  # "fork", "forkserver", "spawn"
    t_call: float  # when start() was called

    @property
    def took(self) -> float:
        return self.t - self.t_call


@dataclass(frozen=True, slots=True)
class MpRun:
    """The sender is a multiprocessing child and is about to run its target. `t` minus
    the parent's `MpStart.t_call` is how long the child took to start."""

    pid: int
    t: float
    name: str
    target: str | None
    parent: int | None  # the Process's parent (for a forkserver child, not its OS parent)


@dataclass(frozen=True, slots=True)
class MpName:
    """The sender, a multiprocessing child, renamed itself (`current_process().name`)."""

    pid: int
    t: float
    name: str


@dataclass(frozen=True, slots=True)
class MpJoin:
    """`join()` on `child` returned in the sender."""

    pid: int
    t: float
    child: int
    t_call: float
    timeout: float | None
    ended: bool  # the child had ended (else the timeout ran out)
    exitcode: int | None  # multiprocessing's: -N for signal N

    @property
    def blocked(self) -> float:
        return self.t - self.t_call


@dataclass(frozen=True, slots=True)
class MpSignal:
    """`terminate()` or `kill()` of `child` returned in the sender."""

    pid: int
    t: float
    child: int
    how: str  # "terminate" or "kill"


@dataclass(frozen=True, slots=True)
class Started:
    """`subprocess.Popen` started `child` in the sender: its parent, which a walk may not
    see (the sender can exit before any walk, and the child is then the reaper's), and
    what it runs: the argv Popen exec'd (empty: not known)."""

    pid: int
    t: float
    child: int
    argv: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Exec:
    """The sender is about to exec `argv` (`exe`: the file, where a path names it). True
    once its connection closes (Bye); None: the exec failed, and it runs on as it was."""

    pid: int
    t: float
    argv: tuple[str, ...] | None
    exe: str | None


@dataclass(frozen=True, slots=True)
class Reaped:
    """The sender reaped `child` (os.waitpid and friends): the exit status only a parent
    can read. `user`/`system` are the child's CPU seconds, its own reaped children
    included (absent when reaped through waitid)."""

    pid: int
    t: float
    child: int
    status: int  # exit code, or -N for signal N
    user: float | None
    system: float | None


@dataclass(frozen=True, slots=True)
class PoolReport:
    """The sender is a pool worker: tasks it has run so far (a task is what the pool
    queues: for map, a chunk), and calls of the user's function in them. Sent when the
    worker starts, at most every 0.1 s while it works, whenever it finds no task waiting,
    and at its end (`final`: the count is exact; otherwise the worker may have been
    terminated after running more, e.g. by `Pool.__exit__`)."""

    pid: int
    t: float
    kind: str  # "Pool" or "ProcessPoolExecutor"
    tasks: int
    calls: int
    final: bool


@dataclass(frozen=True, slots=True)
class Helper:
    """The sender is one of multiprocessing's own processes."""

    pid: int
    t: float
    role: str  # "forkserver", "resource_tracker", "manager"


@dataclass(frozen=True, slots=True)
class Dropped:
    """The sender could not send `count` messages (its socket was full)."""

    pid: int
    t: float
    count: int


@dataclass(frozen=True, slots=True)
class Bye:
    """Made by the server, never sent: the process's connection closed (it exited, or
    exec'd; a Python it exec'd says hello again). Every message it sent came before."""

    pid: int
    t: float


Message = (
    Hello
    | MpStart
    | MpRun
    | MpName
    | MpJoin
    | MpSignal
    | Started
    | Exec
    | Reaped
    | PoolReport
    | Helper
    | Dropped
    | Bye
)


# --- field checks: each returns the value as the dataclass holds it, or raises --------

Check = Callable[[Any], Any]


def _int(low: int, high: int) -> Check:
    def check(value: Any) -> int:
        if type(value) is not int or not low <= value <= high:
            raise ProtocolError(f"not an integer in {low}..{high}")
        return value

    return check


def _number(value: Any) -> float:
    # An int too large for a float would raise OverflowError in math.isfinite.
    if type(value) is int and abs(value) <= 2**53:
        return float(value)
    if type(value) is float and math.isfinite(value):
        return value
    raise ProtocolError("not a finite number")


def _time(value: Any) -> float:
    seconds = _number(value)
    if seconds < 0:
        raise ProtocolError("not a time")
    return seconds


def _seconds(value: Any) -> float | None:
    return None if value is None else _number(value)


def _text(value: Any) -> str:
    if type(value) is not str or len(value) > MAX_TEXT:
        raise ProtocolError(f"not a string of at most {MAX_TEXT} characters")
    return value


def _optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ProtocolError("not true or false")
    return value


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str:
        if type(value) is not str or value not in choices:
            raise ProtocolError(f"not one of {', '.join(choices)}")
        return value

    return check


def _texts(item: Check) -> Check:
    def check(value: Any) -> tuple[Any, ...]:
        if type(value) is not list or len(value) > MAX_ITEMS:
            raise ProtocolError(f"not a list of at most {MAX_ITEMS} items")
        return tuple(item(v) for v in value)

    return check


_pid = _int(1, MAX_PID)
_count = _int(0, 2**62)
_status = _int(-255, 255)


@dataclass(frozen=True, slots=True)
class _Kind:
    cls: type
    fields: dict[str, Check]  # wire name -> check
    optional: dict[str, Any]  # wire name -> default when absent
    renamed: dict[str, str]  # wire name -> dataclass field


_KINDS: dict[str, _Kind] = {
    "hello": _Kind(
        Hello,
        {
            "ppid": _int(0, MAX_PID),
            "argv": _texts(_text),
            "exe": _text,
            "via": _one_of("load", "fork"),
            "fds": _texts(_one_of(*STREAMS)),
            "st": _bool,
        },
        {"st": False},
        {"fds": "streams", "st": "in_start"},
    ),
    "mp_start": _Kind(
        MpStart,
        {
            "child": _pid,
            "name": _text,
            "target": _optional(_text),
            "args": _text,
            "kwargs": _text,
            "daemon": _bool,
            "method": _optional(_one_of("fork", "forkserver", "spawn")),
            "t_call": _time,
        },
        {},
        {},
    ),
    "mp_run": _Kind(
        MpRun,
        {"name": _text, "target": _optional(_text), "parent": _optional(_pid)},
        {"parent": None},
        {},
    ),
    "mp_name": _Kind(MpName, {"name": _text}, {}, {}),
    "mp_join": _Kind(
        MpJoin,
        {
            "child": _pid,
            "t_call": _time,
            "timeout": _seconds,
            "ended": _bool,
            "exitcode": _optional(_status),
        },
        {},
        {},
    ),
    "mp_signal": _Kind(MpSignal, {"child": _pid, "how": _one_of("terminate", "kill")}, {}, {}),
    "started": _Kind(Started, {"child": _pid, "argv": _texts(_text)}, {"argv": ()}, {}),
    "exec": _Kind(
        Exec, {"argv": _optional(_texts(_text)), "exe": _optional(_text)}, {"exe": None}, {}
    ),
    "reaped": _Kind(
        Reaped,
        {"child": _pid, "status": _status, "user": _optional(_time), "system": _optional(_time)},
        {"user": None, "system": None},
        {},
    ),
    "pool": _Kind(
        PoolReport,
        {
            "kind": _one_of("Pool", "ProcessPoolExecutor"),
            "tasks": _count,
            "calls": _count,
            "final": _bool,
        },
        {},
        {},
    ),
    "helper": _Kind(Helper, {"role": _one_of("forkserver", "resource_tracker", "manager")}, {}, {}),
    "dropped": _Kind(Dropped, {"count": _int(1, 2**62)}, {}, {}),
}


def _no_constants(name: str) -> Any:
    raise ProtocolError(f"{name} is not a number")


# Bytes of its output still in the sender's own pipes as it made a message: when it
# counted them (time.time(), "tu", else the message's time), then for fds 1 and 2 (None:
# not its own pipe, or not known); None: not told (hook/: _TOLD_IN_TURN).
Unread = tuple[float, int | None, int | None] | None

_unread_count = _optional(_int(0, 2**31 - 1))


def unread_on(unread: Unread, stream: str) -> int | None:
    """Of `unread`, the bytes left in the sender's `stream` ("stdout", "stderr") pipe."""
    if unread is None:
        return None
    return unread[1] if stream == "stdout" else unread[2]


def parse(data: bytes) -> Message:
    """The message in `data`, or ProtocolError saying why it is not one."""
    return parse_sent(data)[0]


def parse_sent(data: bytes) -> tuple[Message, Unread]:
    """The message in `data` and what its sender had left unread in its pipes as it sent
    it, or ProtocolError saying why it is not one."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        obj = json.loads(data, parse_constant=_no_constants)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"not JSON ({type(exc).__name__})") from None
    if type(obj) is not dict:
        raise ProtocolError("not a JSON object")
    kind = obj.get("k")
    spec = _KINDS.get(kind) if type(kind) is str else None
    if spec is None:
        raise ProtocolError("unknown kind")
    values: dict[str, Any] = {"pid": _pid(obj.get("pid")), "t": _time(obj.get("t"))}
    for name, check in spec.fields.items():
        if name in obj:
            try:
                value = check(obj[name])
            except ProtocolError as exc:
                raise ProtocolError(f"{kind}.{name}: {exc}") from None
        elif name in spec.optional:
            value = spec.optional[name]
        else:
            raise ProtocolError(f"{kind}: no {name}")
        values[spec.renamed.get(name, name)] = value
    unread: Unread = None
    if "u" in obj:
        told = obj["u"]
        if type(told) is not list or len(told) != 2:
            raise ProtocolError(f"{kind}.u: not a list of 2 counts")
        try:
            counted = _time(obj["tu"]) if "tu" in obj else values["t"]
            unread = (counted, _unread_count(told[0]), _unread_count(told[1]))
        except ProtocolError as exc:
            raise ProtocolError(f"{kind}.u: {exc}") from None
    return spec.cls(**values), unread
