"""The first code a child runs, before its target is even imported.

It cuts the child off from proclab's terminal (fds 0, 1 and 2 become /dev/null and two pipes
the controller reads), gives it a session and process group of its own (so a terminate
reaches its grandchildren and the terminal's Ctrl+C does not reach it), makes sure it dies
with proclab, and only then imports and calls the target.

Kept small on purpose: a spawn child imports this module from scratch, and every import
here is paid on every start.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal's C module: no stubs
import _thread
import collections
import contextlib
import ctypes
import errno
import gc
import importlib
import importlib.util
import io
import os
import resource
import select
import signal
import struct
import sys
import threading
import time
from multiprocessing import parent_process

# Not typing's: a spawn child imports this module and the handler's from scratch, and
# typing was the largest import among them (3-6 ms of each spawn child, python -X
# importtime). Type checkers read any TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, NamedTuple

PR_SET_PDEATHSIG = 1

# Blocked in the thread that starts children, so that a child inherits them blocked: one
# that arrives before the child has reset its inherited handlers waits, and is delivered
# when the bootstrap unblocks them (a SIGTERM then ends the child, as it should).
DEFERRED_SIGNALS = frozenset(
    {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2}
)
_DEFERRED_NUMBERS = tuple(int(s) for s in DEFERRED_SIGNALS)


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Loaded when proclab imports this module, so fork and forkserver children inherit it.
prctl = _load_prctl()

# The fork server this module was loaded in, once that server is sure to die with its
# parent (forkserver_guard sets it): the children it forks inherit the value.
guarded_fork_server: int | None = None

__all__ = [
    "DEFERRED_SIGNALS",
    "EXIT_RECORD",
    "PR_SET_PDEATHSIG",
    "ChildPayload",
    "InheritedFd",
    "child_main",
    "load_target",
    "parse_exit_record",
    "prctl",
    "prepare_writers",
    "read_exit_record",
    "record_pipe",
]


class InheritedFd:
    """A file descriptor handed to the child, whatever the start method: fork children
    inherit it as is; for spawn and forkserver, pickling it asks multiprocessing to pass
    the fd along (its DupFd), as it does for a Connection, without importing
    multiprocessing.connection into every spawn child."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        from multiprocessing import reduction

        return (_rebuild_fd, (reduction.DupFd(self.fd),))


def _rebuild_fd(dup: Any) -> InheritedFd:
    return InheritedFd(dup.detach())


if TYPE_CHECKING:

    class ChildPayload(NamedTuple):
        kind: str  # "module" or "file"
        location: str  # module name or absolute path
        function: str
        args: tuple[Any, ...]
        kwargs: dict[str, Any]
        cwd: str
        affinity: tuple[int, ...] | None
        stdout: InheritedFd  # write ends of the controller's pipes
        stderr: InheritedFd
        method: str
        keep_fds: tuple[int, ...]  # inherited fds the target needs (e.g. a client socket)
        title_target: str | None = None  # for the process title (ps, htop); None: leave it
        record: InheritedFd | None = None  # write end of the pipe for its exit record
        record_pipe: tuple[int, int] | None = None  # that pipe's device and inode
        fd_limit: tuple[int, int] | None = None  # the open-files limit to give back (fd_limit)

else:  # the same, built without typing
    ChildPayload = collections.namedtuple(
        "ChildPayload",
        "kind location function args kwargs cwd affinity stdout stderr method keep_fds"
        " title_target record record_pipe fd_limit",
        defaults=(None, None, None, None),
    )


def child_main(payload: ChildPayload) -> None:
    global _began
    # Born no later than this: the CPU it has used since its fork took at least as long.
    _began = time.monotonic() - time.process_time()
    _redirect_stdio(payload)
    record = payload.record.fd if payload.record is not None else -1
    if payload.method == "fork":
        # Objects inherited from proclab (sockets, pipes) must never be finalized here:
        # their fd numbers are closed below and may be reused by the target.
        gc.freeze()
        close_inherited_fds((*payload.keep_fds, record))
        _forget_fork_server()
        _reset_signal_handlers()
        _be_the_main_thread()
    # Through _signal, as _reset_signal_handlers says why: signal's own turns the old mask
    # into a set of enum members, 29 us of a fork child against 8 (measured in one).
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, _DEFERRED_NUMBERS)
    die_with_parent(payload.method)
    if payload.fd_limit is not None:
        # The one the user's shell set, which proclab raised for itself (fd_limit.py).
        # Not contextlib.suppress: in a fork child every page of its code run is one to copy.
        try:  # noqa: SIM105
            resource.setrlimit(resource.RLIMIT_NOFILE, payload.fd_limit)
        except (ValueError, OSError):
            pass
    if payload.affinity:
        os.sched_setaffinity(0, payload.affinity)
    # Last of the set-up, because the controller reads "leads its own group" as "ready":
    # only then may it be paused (a child stopped earlier would still hold fds inherited
    # from proclab, and would not yet die with it).
    # Not contextlib.suppress: in a fork child every page of its code run is one to copy.
    try:  # noqa: SIM105
        os.setsid()
    except OSError:  # already a session leader
        pass
    os.chdir(payload.cwd)
    if payload.title_target is not None:
        _set_title(payload.title_target)
    target = load_target(payload.kind, payload.location, payload.function, payload.cwd)
    try:
        target(*payload.args, **payload.kwargs)
    finally:
        _report_exit(payload.method, record, payload.record_pipe)


def _set_title(target: str) -> None:
    """What ps and htop show: the child's name (its own Process.name, which for a default
    name is only known here) and its target."""
    from multiprocessing import current_process

    from proclab.core import proctitle  # loaded already, except in a spawn child

    proctitle.set_title(proctitle.title_for(current_process().name, target))


# The child's own last word, when proclab cannot read its figures once it has ended: its
# CPU times, context switches and run-queue wait, written whole (one write under PIPE_BUF)
# to a pipe of its own that proclab reads once the child has ended, and never watches
# meanwhile. On stderr, as it used to be, it came after a flush of the child's output and
# woke proclab's watcher for one line: the record took a forkserver child 0.139 ms on its
# way to its end, 0.088 now (stamped in the child, 200 children).
# Its last figure: when its bootstrap began (time.monotonic(), one clock for every
# process) less the CPU time it had used by then, an upper bound of its birth that a
# forkserver child's parent cannot see: the fork server forks it inside proclab's
# start(), whose return can come milliseconds later.
EXIT_RECORD = struct.Struct("=8d")
_began = 0.0  # set by child_main
# How long a child waits, as it ends, for a fork server of its own to end (it takes about
# a millisecond once told to).
FORK_SERVER_END_S = 0.05
ExitRecord = tuple[float, float, int, int, float, float, float, float]


def record_pipe() -> tuple[int, int, tuple[int, int]]:
    """A child's exit-record pipe: its read end, its write end (neither blocking: proclab
    reads once, after the child has ended, and a child whose code filled the pipe does
    not wait on it as it ends), and what tells it from whatever file later gets the
    write end's fd number in the child (`ChildPayload.record_pipe`). Read here, not in
    the child: an fstat took a fork child 0.025 ms, a few pages copied."""
    read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    return read, write, _identity(write)


def _identity(fd: int) -> tuple[int, int]:
    stat = os.fstat(fd)
    return stat.st_dev, stat.st_ino


def _report_exit(method: str, fd: int, pipe: tuple[int, int] | None) -> None:
    if pipe is None:
        return
    _stop_own_fork_server()
    theirs = resource.getrusage(resource.RUSAGE_CHILDREN)  # the children it reaped
    if method != "forkserver" and not theirs.ru_minflt:
        # proclab forked this child and reaps it with wait4 (launcher.py), whose figures
        # are the child's own to the microsecond while it has reaped no child of its own
        # (whose figures wait4 would add): the record cost a fork child 0.08-0.14 ms of
        # its start + join (benchmarks/spawn.py), and a killed child writes none anyway.
        # A forkserver child is reaped by its fork server, often before proclab can read
        # its figures from /proc.
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ran, waited = scheduled() or (None, 0.0)
    own = (usage.ru_utime, usage.ru_stime, usage.ru_nvcsw, usage.ru_nivcsw, waited)
    threads = others_cpu(usage.ru_utime + usage.ru_stime, ran)
    record = (*own, _began, theirs.ru_utime + theirs.ru_stime, threads)
    # The target may have closed the pipe and opened a file of its own on its number (a
    # daemon's closerange, then open): the record must not go into that file. Not
    # contextlib.suppress: in a child every page of code run is one to copy.
    try:
        if _identity(fd) == pipe:
            os.write(fd, EXIT_RECORD.pack(*record))
    except OSError:  # closed, or full
        pass


def scheduled(pid: int | str = "self") -> tuple[float, float] | None:
    """Seconds a process's main thread ran on a CPU, and waited in a run queue (as the
    sampler reads them); None for a kernel without schedstats. A child that ends before
    its first sample is still known to have waited for a CPU. A zombie's can still be
    read, until it is reaped. Read with os.read, as procfs reads /proc: open() builds a
    buffered file object for one short read."""
    try:
        fd = os.open(f"/proc/{pid}/schedstat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            ran, waited = os.read(fd, 256).split()[:2]
            return int(ran) / 1e9, int(waited) / 1e9
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return None


def run_delay(pid: int | str = "self") -> float:
    """Seconds a process's main thread waited in a run queue (0 where not known)."""
    return (scheduled(pid) or (0.0, 0.0))[1]


def others_cpu(cpu: float, main_ran: float | None) -> float:
    """Of a process's CPU seconds, those its threads other than the main one ran, from
    what its main thread ran (0 where that is not known): threads of its own keep cores
    busy by themselves."""
    return max(0.0, cpu - main_ran) if main_ran is not None else 0.0


def read_exit_record(fd: int) -> ExitRecord | None:
    """(user s, system s, voluntary, involuntary, run-queue wait s, born by then:
    time.monotonic(), its reaped children's CPU s, its other threads' CPU s) from the
    child's record pipe, else None: nothing written (a killed
    child, or one proclab reaps), or anything but one record of sane figures (the child's
    code holds the pipe too)."""
    try:
        data = os.read(fd, 4096)
    except OSError:  # nothing written, its write end still open somewhere
        return None
    return parse_exit_record(data)


def parse_exit_record(data: bytes) -> ExitRecord | None:
    if len(data) != EXIT_RECORD.size:
        return None
    user, system, voluntary, involuntary, delay, began, reaped, threads = EXIT_RECORD.unpack(data)
    # Not negative, not NaN (which fails every comparison), below a century of CPU.
    figures = (user, system, voluntary, involuntary, delay, began, reaped, threads)
    if not all(0 <= figure < 3e9 for figure in figures):
        return None
    return user, system, int(voluntary), int(involuntary), delay, began, reaped, threads


def die_with_parent(method: str = "fork", parent_pid: int | None = None) -> None:
    """End this child when proclab ends, even by SIGKILL, and its process group with it.

    The kernel SIGKILLs the child when its parent dies (PR_SET_PDEATHSIG): no Python code
    has to run for that (a child in C code holding the GIL dies too), a paused child dies
    too, and it survives exec. The parent is the thread that started the child (proclab's
    launcher; for a TCP handler, its server process) or, for forkserver, the fork server,
    which dies with proclab (forkserver_guard) or with the server process. The rest of
    the family is proclab's guardian's to end (family.py).

    A parent that died before the kernel was asked is seen at once: the child has been
    given another one. Under fork and spawn the parent is the process that started the
    child; under forkserver, the fork server, when the server is sure to die with its own
    parent (guarded_fork_server), so that the kernel's signals chain from proclab to the
    child. Otherwise (an unguarded fork server, no prctl) a daemon thread waits on
    proclab's sentinel: a thread in every child cost a fork child half a millisecond, a
    quarter of its set-up, and a forkserver child 0.1 ms (with the GIL it took from the
    steps after it, 0.3 ms; stamped in the child).

    `parent_pid`: the process that forked this child with os.fork itself (a TCP handler;
    multiprocessing's parent_process() would name that process's own parent).
    """
    parent = parent_process()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if parent_pid is None and method == "forkserver":
            if guarded_fork_server not in (None, os.getpid()):  # inherited from its server
                parent_pid = guarded_fork_server
        elif parent_pid is None and parent is not None:
            parent_pid = parent.pid
        if parent_pid is not None:
            if os.getppid() != parent_pid:  # asked too late: the parent is gone
                _end_with_group()
            return
    sentinel = parent.sentinel if parent is not None else None
    if sentinel is None:
        return

    def watch() -> None:
        with contextlib.suppress(OSError, ValueError):
            select.select([sentinel], [], [])
        _end_with_group()

    # A bare thread (daemon by nature): threading.Thread.start() would wait for it to run,
    # which costs a fork child about a millisecond.
    _thread.start_new_thread(watch, ())


def _end_with_group() -> None:
    # Only this child's own group, the one its setsid() made: until then the child is
    # still in proclab's group, which holds proclab's caller too (a shell, its other
    # jobs), and the group named by our pid does not exist.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _redirect_stdio(payload: ChildPayload) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(payload.stdout.fd, 1)
    os.dup2(payload.stderr.fd, 2)
    os.close(payload.stdout.fd)
    os.close(payload.stderr.fd)
    # sys.stdin already reads /dev/null: multiprocessing replaced it before calling us (on
    # an fd of its own, which close_inherited_fds keeps).
    global _ready_writers, _writers_tried
    if payload.method == "fork" and _ready_writers is not None:
        sys.stdout, sys.stderr = _ready_writers
        # This child's own now, and what it writes goes in them: a controller it runs
        # makes its own children new ones (taken, a child's unfinished line or closed
        # stdout would be theirs too).
        _ready_writers, _writers_tried = None, False
    else:
        sys.stdout = _pipe_writer(1)
        sys.stderr = _pipe_writer(2)
    # The originals too: those inherited write to fds 1 and 2 as well, buffered, and at the
    # end multiprocessing flushes only sys.stdout and sys.stderr (what a target wrote to
    # sys.__stdout__ was lost; in a child of a script they are the same objects). Kept,
    # never flushed: freed, one would flush what its parent had buffered into our pipe.
    _inherited_streams.extend((sys.__stdout__, sys.__stderr__))
    sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr  # type: ignore[misc]


_inherited_streams: list[object] = []


# fds 1 and 2's writers for fork children, built once in proclab's process before its
# first fork child (prepare_writers) and inherited by each: built in a fork child, whose
# every first write to a page copies it, the two took 0.12-0.14 ms against 0.02 to take
# them ready (stamped in fork children of a process holding a controller). A forkserver
# child builds its own: in the small fork server's child that took 0.04 ms, and writers
# made there ahead saved nothing measurable (benchmarks/spawn_floor.py).
_ready_writers: tuple[io.TextIOWrapper, io.TextIOWrapper] | None = None
_writers_tried = False  # once: where none could be made, none will be


class _PipeFileIO(io.FileIO):
    """The raw file under a writer made ahead: fds 1 and 2 of the fork child that takes
    it are pipes (_redirect_stdio), whatever they are in proclab when it is made. Built
    on proclab's file or terminal, io's own would ask that file whether it can seek and
    where it stands, and the writers above it keep both answers: the child's stdout
    would claim to seek. This one answers as a pipe does, under io's own repr."""

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError(errno.ESPIPE, os.strerror(errno.ESPIPE))

    def __repr__(self) -> str:
        # io's own on every Python: 3.11 names the base class, 3.13 this one.
        text = super().__repr__()
        return "<_io.FileIO" + text[text.index(" ") :]


def prepare_writers() -> None:
    """In proclab's process, before it forks a child. The writers only hold the fd
    numbers, which are each child's pipes by the time it writes; proclab itself never
    writes to them. Where its own fd 1 or 2 is closed, each child builds its own."""
    global _ready_writers, _writers_tried
    if _writers_tried:
        return
    _writers_tried = True
    with contextlib.suppress(OSError, ValueError):
        _ready_writers = (
            _line_writer(_PipeFileIO(1, "wb", closefd=False)),
            _line_writer(_PipeFileIO(2, "wb", closefd=False)),
        )


def _line_writer(raw: io.FileIO) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        io.BufferedWriter(raw),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )


def _pipe_writer(fd: int) -> io.TextIOWrapper:
    """A writer on fd 1 or 2 of this child, which is its pipe."""
    return _line_writer(io.FileIO(fd, "wb", closefd=False))


def close_inherited_fds(keep: tuple[int, ...]) -> None:
    """A fork child inherits every fd proclab had open (the terminal, sockets, other
    children's pipes): close them, as subprocess's close_fds does. Not those a fork child
    of the learner's own script would use: sys.stdin's (its bootstrap opened /dev/null
    for it on an fd of its own: closed, input() failed with EBADF, not EOFError) and the
    resource tracker's (which spawn and forkserver children share too: closed, a target's
    SharedMemory or spawn child failed with EBADF). Either one closed, a file the target
    opened next could land on its number and be read as stdin, or be written to by the
    tracker."""
    parent = parent_process()
    keep_set = {0, 1, 2, *keep, _stdin_fd(), _resource_tracker_fd()}
    if parent is not None and parent.sentinel is not None:
        keep_set.add(parent.sentinel)
    low = 3
    for fd in sorted(keep_set):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, _max_fd())


def _stdin_fd() -> int:
    try:
        return sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):  # None, closed, or not a file
        return 0


def _resource_tracker_fd() -> int:
    # From sys.modules: an import statement took a fork child 8 us a module (stamped).
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    fd = getattr(getattr(tracker, "_resource_tracker", None), "_fd", None)
    return fd if isinstance(fd, int) else 0


def _stop_own_fork_server() -> None:
    """A fork server the target started (a Pool of a forkserver child) forked and reaped
    its workers, so their CPU was in no figure of this child's: two children's Pools that
    computed 1.5 s read "I/O-bound" and nothing more. Stopped and reaped here, as it would
    stop at this exit anyway, their CPU is among this child's reaped children's (the
    batch says it). Not while a child it forked still runs: its exit code comes through
    the server, and multiprocessing joins it after the target returns.

    Not ForkServer._stop(), which waits for good: the server ends once every holder of
    its "alive" pipe has closed it, and a process the target forked by hand after the
    Pool (a daemon) holds it too. Waited for a moment; past it, the server ends with that
    process, an orphan proclab reaps."""
    module = sys.modules.get("multiprocessing.forkserver")
    server = getattr(module, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None:
        return
    from multiprocessing import active_children

    if active_children():
        return
    alive = server._forkserver_alive_fd  # type: ignore[union-attr]
    server._forkserver_alive_fd = server._forkserver_pid = None  # type: ignore[union-attr]
    deadline = time.monotonic() + FORK_SERVER_END_S
    try:
        os.close(alive)
        while not os.waitpid(pid, os.WNOHANG)[0] and time.monotonic() < deadline:
            time.sleep(0.002)
    except OSError:  # reaped already, or not this process's child
        pass


def _forget_fork_server() -> None:
    """proclab's fork server is not the fork child's: its pid is no child of this one, and
    its fds are closed. Left as inherited, a forkserver Process the target started failed
    (waitpid: no child processes); the child starts a fork server of its own instead, as
    a fork child of a script that never used one does."""
    module = sys.modules.get("multiprocessing.forkserver")
    server = getattr(module, "_forkserver", None)
    if getattr(server, "_forkserver_pid", None) is not None:
        server.__init__()  # type: ignore[misc]  # every field as a new ForkServer has it


_CATCHABLE = tuple(
    int(s) for s in signal.valid_signals() if s < 32 and s not in (signal.SIGKILL, signal.SIGSTOP)
)


def _reset_signal_handlers() -> None:
    """A fork child inherits proclab's Python signal handlers (e.g. `proclab run`'s
    SIGTERM handler, which only sets a flag): give it a fresh interpreter's instead, so
    SIGTERM ends it and Ctrl+C raises KeyboardInterrupt.

    Through _signal, the C module under `signal`: signal's own functions turn every
    handler into an enum member, which in a fork child (whose every first write to a
    page copies it) cost 0.23 ms of a ~1.5 ms set-up; this costs 0.04 ms."""
    for sig in _CATCHABLE:
        handler = _signal.getsignal(sig)
        if callable(handler) and handler is not _signal.default_int_handler:
            _signal.signal(sig, _signal.SIG_DFL)
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    # The app's event loop has the interpreter write each signal's number to a socket of
    # its own (asyncio's wake-up fd), closed in the child: a SIGINT then printed "Exception
    # ignored ... Bad file descriptor" in the target's output, or wrote into a socket the
    # target had opened on that number.
    _signal.set_wakeup_fd(-1)


def _be_the_main_thread() -> None:
    """A fork child runs on its copy of the thread that forked it, which threading then
    names its main thread, name and daemon flag included: proclab's launcher. Its code
    (a `print` of `current_thread().name`, logging's `%(threadName)s`) would see
    "proclab-launcher" where a child of the learner's own script sees "MainThread", as
    forkserver and spawn children do: given the main thread's name and flag here."""
    thread = threading.current_thread()
    thread.name = "MainThread"
    # `daemon` may not be set on a running thread; this is the flag behind it.
    thread._daemonic = False  # type: ignore[attr-defined]


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 65536


def load_target(kind: str, location: str, function: str, cwd: str) -> Any:
    """Import the target in the child, as `python file.py` or `python -m` would find it.

    Its top-level code runs here, as a spawn child's re-import of a script runs it; its
    `if __name__ == '__main__':` block does not. A process started by that top-level code
    is refused (see _refuse_starts)."""
    if kind == "module":
        _on_path(cwd)
        if location in sys.modules:
            # Already imported (a fork child of a proclab that checked the target):
            # importing runs nothing, so there is nothing to refuse. Setting that refusal
            # up cost a fork child 0.25 ms, a sixth of its set-up (benchmarks/spawn.py).
            return getattr(sys.modules[location], function)
    with _refuse_starts(location if kind == "file" else None):
        module = _import(kind, location)
    return getattr(module, function)


@contextlib.contextmanager
def _refuse_starts(path: str | None) -> Iterator[None]:
    """While the target is imported, Process.start() raises a RuntimeError naming the line.

    Top-level code runs in every process that imports the file: here, and again in each
    new process that unpickles one of its functions (forkserver, spawn), where it would
    start processes again, until multiprocessing's own "bootstrapping phase" error in a
    grandchild; meanwhile this child ran on and exited 0. The lesson's fix is the guard."""
    from multiprocessing import process

    start = process.BaseProcess.start

    def refused(_self: Any) -> None:
        raise RuntimeError(
            f"{_caller(path)} starts a process while the file is imported: top-level code"
            " runs in every process that imports the file (this child, and each new process"
            " again under forkserver or spawn); put it under if __name__ == '__main__':"
        )

    process.BaseProcess.start = refused  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        process.BaseProcess.start = start  # type: ignore[method-assign]


def _caller(path: str | None) -> str:
    """'lesson.py line 9': the line of the target's code that started the process (the
    file's own line when known, else the innermost line outside multiprocessing)."""
    import traceback
    from multiprocessing import process

    skip = (os.path.dirname(process.__file__ or ""), __file__)
    frames = [f for f in reversed(traceback.extract_stack()) if not f.filename.startswith(skip)]
    mine = [f for f in frames if f.filename == path]
    if not (mine or frames):
        return "its code"
    frame = (mine or frames)[0]
    return f"{os.path.basename(frame.filename)} line {frame.lineno}"


def _on_path(folder: str) -> None:
    if folder not in sys.path:
        sys.path.insert(0, folder)


def _import(kind: str, location: str) -> Any:
    """A module target's folder is on sys.path already (load_target)."""
    if kind == "file":
        _on_path(os.path.dirname(location))
        stem = os.path.splitext(os.path.basename(location))[0]
        name = stem if stem.isidentifier() and stem not in sys.modules else "__proclab_target__"
        spec = importlib.util.spec_from_file_location(name, location)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {location}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(location)
