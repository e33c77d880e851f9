"""The echo server's connection handling: what runs in a handler process, a pool worker
or a handler thread.

The lesson's handler, with its flaws fixed:
- `recv()` returning b"" means the peer has closed: the handler stops reading (it still
  sends what it owes, for a half-closed peer) and ends; it never spins;
- TCP is a byte stream: each chunk is upper-cased as bytes (`bytes.upper()` changes ASCII
  letters only), so any bytes, split anywhere, come back exactly;
- a client that stops reading is not buffered for without bound: past OUT_LIMIT pending
  bytes the handler stops reading from it, and the idle timeout ends it;
- an idle timeout and a maximum connection lifetime bound every connection.

Every connection is non-blocking and served from one selector loop, so one pool worker
serves many clients at once. Events (accepted, data in/out, disconnected, busy) go to the
server as short JSON lines on a shared pipe (writes under PIPE_BUF bytes are atomic). If
the server falls behind and the pipe is full, data events are left out (counted, and the
count is reported) rather than stalling a client; connection events wait their turn and
are never lost. A handler process or pool worker ends its connections on SIGTERM and
reports each with its true byte counts.

Kept light: spawn children import this module from scratch.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal's C module: no stubs
import contextlib
import errno
import itertools
import os
import resource
import select
import signal
import socket
import sys
import time
from collections import deque

from proclab.core import bootstrap, fd_limit, proctitle
from proclab.core.groups import signal_group
from proclab.core.server.event_lines import (
    accepted_line,
    data_line,
    disconnected_line,
    event_line,
)
from proclab.core.words import plural

TYPE_CHECKING = False  # not typing's: kept light for spawn handlers (bootstrap says why)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

READ_CHUNK = 64 * 1024
OUT_LIMIT = 1024 * 1024  # bytes owed to a client before its handler stops reading it
REJECT_READS = 16  # reads of what a turned-away client sent, at most (1 MiB)
PREVIEW_BYTES = 32
# The pool's shared counts (a multiprocessing Array of WORKER_OPEN + workers): connections
# open now, and connections served (ended), across every worker, whatever is logged; then
# each worker's own open ones, by its number (from 1), which its server counts as closed
# when the worker ends without closing them (killed): they held the limit's places.
OPEN, SERVED, WORKER_OPEN = 0, 1, 2
SWEEP_S = 0.25  # how often a pool worker looks for idle or expired connections
POOL_EMPTY = "every pool worker has ended (a pool starts no others): the server stops"
SETTLE_WAIT_S = 1.0  # how long a pool's server waits for the counts' lock past a dead worker
STOPPING_LINE = b"stopping: the server is shutting down\n"
STOPPING = "server stopping"  # why a client was refused as the server stopped
MAX_HANDLERS = 1 << 16  # a process server's handlers alive at once, whatever its room
ACCEPTS_PER_WAKE = 8  # clients a process server accepts before it reaps again
# Out of file descriptors, a listener rests this long before it accepts again (ready at
# once with a client waiting in the backlog, its loop spun a core and logged every
# turn: 187,360 lines in 3 s), and the log says so at most every FD_SAID_S.
FD_REST_S = 0.05
FD_SAID_S = 1.0


LOG_LEVELS = ("all", "connections", "errors")
DATA_KINDS = ("data_in", "data_out")
FLUSH_WAIT_S = 30.0  # how long an ending handler waits for a server that is behind
PIPE_BUF = select.PIPE_BUF  # a write this long or shorter is all or nothing
# A handler describes at most this many chunks a second; the rest are counted. One
# connection of the lesson never comes near it; a pool worker under load would otherwise
# spend more time describing its chunks than moving them (benchmarks/tcp.py).
DATA_EVENTS_PER_S = 200
# The log shows at most this many data events a second, whatever the handlers send: more
# is more than anyone reads, and each costs the server's thread (benchmarks/tcp.py). The
# handlers of one server share it (SharedBudget), so that none describes a chunk the log
# would leave out: with one process per connection, each has a budget of its own.
LOG_DATA_EVENTS_PER_S = 1000
# How often a handler tells the server how many data events it left out (the server says
# it at most once a second). Told at every flush, a busy pool worker sent one such line
# per chunk it moved: more lines than it described, each a write for it and a parse for
# the server (benchmarks/tcp.py, pool with --log all).
LEFT_OUT_EVERY_S = 0.25
# How long a handler or pool worker may hold its events to send more of them in one
# write. Sent as they came, a worker under load wrote after nearly every message it moved
# and woke the server's thread each time; a handler process of a short connection now
# sends its whole story at its end. The log is drawn once a frame anyway.
HOLD_S = 0.02
RETRY_S = 0.05  # a loop's next try at a full pipe, or at handlers it polls
NO_WAIT_S = 3600.0  # "nothing due": a loop's wait then ends at its next event
HOLD_LINES = 32  # sent at once past this many, held or not


class Reporter:
    """Writes events, one JSON line each, to the server's event pipe, never blocking its
    client. `level`: all (every chunk in and out too), connections (accepted,
    disconnected), errors (only errors and busy): a load test's handlers need not
    describe every byte.

    Events wait in order in `queue` and go out together (`flush`, which the serving loop
    calls before it waits again): one write of up to PIPE_BUF bytes for many events. A
    connection's opening and closing (`opened`, `closed`) wait as their fields, and their
    lines are made as they go out.
    When the pipe is full, the data events waiting are left out and counted, and so are
    those past DATA_EVENTS_PER_S; the counts go to the server ("left_out") once there
    is room, at most every LEFT_OUT_EVERY_S and at the end, or sooner on the next
    "disconnected" line. Any other event waits its turn, and `close` waits for all of
    them before the handler ends."""

    def __init__(
        self,
        fd: int,
        pid: int | None = None,
        level: str = "all",
        hold: float = 0.0,
        shared: SharedBudget | None = None,
    ) -> None:
        self.fd = fd
        self.shared = shared  # the server's SharedBudget, if it has one
        self.hold = hold  # seconds an event may wait for others to go out with it
        self.pid = pid if pid is not None else os.getpid()
        self.data = level == "all"
        self.connections = level in ("all", "connections")
        self.behind = 0  # data events left out for a full pipe, not yet told
        self.over_rate = 0  # data events past DATA_EVENTS_PER_S, not yet told
        # (line, a data event); a connection's opening or closing waits as its fields
        self.queue: deque[tuple[bytes | tuple[Any, ...], bool]] = deque()
        self._unmade = 0  # of those, how many
        self.broken = False  # the server is gone
        self._second = 0  # the second the data budget is counted for
        self._budget = DATA_EVENTS_PER_S
        # monotonic time the next left-out count may go: a handler that lives less than
        # this tells its count once, at its end, with its other events
        self._left_out_due = time.monotonic() + LEFT_OUT_EVERY_S
        self._held_until = 0.0  # monotonic time the events waiting must go by

    @property
    def left_out(self) -> int:
        return self.behind + self.over_rate

    def __call__(self, kind: str, client: str, **fields: Any) -> None:
        """Any event but a connection's opening and closing (`opened`, `closed`)."""
        if self.broken:
            return
        self._hold()
        self.queue.append((self._line(kind, client, **fields), kind in DATA_KINDS))

    def chunk(self, kind: str, client: str, data: bytes | bytearray, nbytes: int) -> None:
        """A chunk moved (`kind` data_in or data_out) that data_wanted said to describe:
        by its size and first PREVIEW_BYTES in hex. proclab makes its preview
        (tcp.preview), in its own process, where that code is warm: made here, a fork
        handler's first preview took 80-120 µs (decoding and escaping, every page of that
        code copied in a new child), and `--log all` cost a handler 0.70-0.75 ms of CPU
        more than `--log errors`, 0.35-0.45 now (benchmarks/handler_cost.py)."""
        self._hold()
        head = data[: min(nbytes, PREVIEW_BYTES)].hex()
        self.queue.append((data_line(kind, client, self.pid, time.time(), nbytes, head), True))

    def opened(self, client: str, at: float | None = None) -> None:
        """A connection accepted (at levels all and connections), `at` (time.time()) or
        now."""
        if self.connections and not self.broken:
            self._hold()
            self.queue.append(((client, time.time() if at is None else at), False))
            self._unmade += 1

    def closed(
        self, client: str, duration: float, bytes_in: int, bytes_out: int, reason: str
    ) -> None:
        """A connection's end (at levels all and connections), with its figures.

        Its line is made when it goes out. Made as it happened, each of a connection's two
        lines cost a pool worker under load more than it costs alone: its user CPU rose by
        20-30 us a connection, and the pool served 6-7 % fewer connections a second
        (README, "Measured")."""
        if not self.connections or self.broken:
            return
        self._hold()
        fields: tuple[Any, ...] = (client, time.time(), duration, bytes_in, bytes_out, reason)
        if self.left_out:
            # The count rides on the line the connection's end writes anyway: a line of its
            # own at the end of each short-lived handler that the log's budget had left
            # out was a third of a handler's lines at --log all, each built and parsed by
            # proclab (benchmarks/tcp.py, process mode).
            fields += (self.left_out, self.over_rate)
            self.behind = self.over_rate = 0
        self.queue.append((fields, False))
        self._unmade += 1

    def _hold(self) -> None:
        if self.hold and not self.queue:
            self._held_until = time.monotonic() + self.hold

    def _made(self, entry: bytes | tuple[Any, ...]) -> bytes:
        if isinstance(entry, bytes):
            return entry
        if len(entry) == 2:
            return accepted_line(entry[0], self.pid, entry[1])
        return disconnected_line(entry[0], self.pid, *entry[1:])

    def wait_left(self, now: float) -> float:
        """Seconds the serving loop may wait before flush has something to send."""
        return max(0.0, self._held_until - now) if self.queue else NO_WAIT_S

    def flush_and_wait(self, now: float, wait: float) -> float:
        """Write what is due, and how long the serving loop may then wait, at most
        `wait`: a moment if the server is behind (the pipe is full), else until the
        events held are due."""
        if now < self._held_until and len(self.queue) < HOLD_LINES and now < self._left_out_due:
            # Held, and no count due: the serving loop asks after every wake, and under
            # load this is what it finds.
            return min(wait, self._held_until - now)
        if not self.left_out and now >= self._left_out_due:
            self._left_out_due = now + LEFT_OUT_EVERY_S  # nothing to tell: look again then
        if not self.flush():
            return min(wait, RETRY_S)
        return min(wait, self.wait_left(now))

    def data_wanted(self, now: float | None = None) -> bool:
        """Whether to describe a chunk now (a data event): only at level "all", and within
        DATA_EVENTS_PER_S; past it the chunk is counted, and not even described. `now`:
        the monotonic clock, if the caller has read it."""
        if not self.data or self.broken:
            return False
        second = int(time.monotonic() if now is None else now)
        if second != self._second:
            self._second, self._budget = second, DATA_EVENTS_PER_S
        if self._budget > 0:
            if self.shared is None or self.shared.take(second):
                self._budget -= 1
                return True
            self._budget = 0  # the log's is spent until the next second: not asked again
        self.over_rate += 1
        return False

    def flush(self, final: bool = False) -> bool:
        """Write what waits, as far as the pipe takes it; True once nothing waits (a
        left-out count may wait for its time, and held events for theirs, unless
        `final`)."""
        if self.broken:
            self.queue.clear()
            return True
        held = self.hold and not final and 0 < len(self.queue) < HOLD_LINES
        if held and time.monotonic() < self._held_until:
            return True
        if self.left_out and (final or time.monotonic() >= self._left_out_due):
            # First in the next write, with the events waiting: a line of its own cost
            # each short-lived handler a write, and proclab's server thread a wake. Not
            # a data event: it waits for room if the pipe is full, as connections do.
            line = self._line("left_out", "", count=self.left_out, over_rate=self.over_rate)
            self.queue.appendleft((line, False))
            self.behind = self.over_rate = 0
            self._left_out_due = time.monotonic() + LEFT_OUT_EVERY_S
        if self._unmade:
            self.queue = deque((self._made(entry), data) for entry, data in self.queue)
            self._unmade = 0
        while self.queue:
            chunk, taken = bytearray(), 0
            for made, _data in self.queue:
                assert isinstance(made, bytes)  # made above
                if chunk and len(chunk) + len(made) > PIPE_BUF:
                    break
                chunk += made
                taken += 1
            if not self._write(chunk):
                self._drop_data()
                return False
            for _ in range(taken):
                self.queue.popleft()
        return True

    def _drop_data(self) -> None:
        """The pipe is full: the data events waiting are left out (counted); the others
        wait for room."""
        kept = deque(entry for entry in self.queue if not entry[1])
        self.behind += len(self.queue) - len(kept)
        self.queue = kept

    def close(self, timeout: float = FLUSH_WAIT_S) -> None:
        """Wait (up to `timeout`) until everything waiting is written."""
        deadline = time.monotonic() + timeout
        while not self.flush(final=True) and time.monotonic() < deadline:
            select.select([], [self.fd], [], max(0.0, deadline - time.monotonic()))

    def _line(self, kind: str, client: str, **fields: Any) -> bytes:
        return event_line(kind, {"client": client, "pid": self.pid, "time": time.time(), **fields})

    def _write(self, data: bytes | bytearray) -> bool:
        try:
            os.write(self.fd, data)  # at most PIPE_BUF bytes: all of it, or nothing
        except BlockingIOError:
            return False
        except OSError:
            self.broken = True  # the server is gone: nothing to tell
        return True


class SharedBudget:
    """The log's data budget, shared by a server's handlers or workers: the second it is
    for and the data events left in it, two int64 in shared memory (one per server
    process). Read and taken without a lock, between processes: two handlers may both take
    its last event, or both renew it, and the log may get a few more than
    LOG_DATA_EVENTS_PER_S, which it then leaves out itself and counts. A lock would cost
    every chunk two system calls when contended.

    A memfd mapped by each process, read through a memoryview: a fork child inherits the
    mapping, a forkserver or spawn child maps the fd it is passed (pickled as an
    InheritedFd). It was a multiprocessing RawArray, which brought ctypes, tempfile and
    random into the server process (random reseeds itself in every fork child: 20 page
    faults and 0.06 ms of each fork handler) and cost a ctypes lookup per chunk."""

    __slots__ = ("_counts", "_fd", "_map")

    def __init__(self, fd: int = -1) -> None:
        import mmap

        if fd < 0:
            fd = os.memfd_create("proclab-log-budget", os.MFD_CLOEXEC)
            os.ftruncate(fd, 16)  # zeros: second 0, nothing left
        self._fd = fd  # passed on to a forkserver or spawn child (pickled)
        self._map = mmap.mmap(fd, 16)
        self._counts = memoryview(self._map).cast("q")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_mapped_budget, (bootstrap.InheritedFd(self._fd),))

    def close(self) -> None:
        self._counts.release()
        self._map.close()
        os.close(self._fd)

    def take(self, second: int) -> bool:
        """One data event of `second`'s budget, if any is left."""
        counts = self._counts
        if counts[0] < second:  # only forward: a process may hold an older clock reading
            # The count first: a process that reads the new second reads its new count
            counts[1] = LOG_DATA_EVENTS_PER_S
            counts[0] = second
        if counts[1] <= 0:
            return False
        counts[1] -= 1
        return True


def _mapped_budget(inherited: bootstrap.InheritedFd) -> SharedBudget:
    return SharedBudget(inherited.fd)


def takes_shared_budget(log: str, method: str, handler: bool) -> bool:
    """Whether a server process's child takes the log's shared budget: only at "all"
    (the other levels describe no chunk), and not a spawn handler, which would import
    mmap to take it (0.7 ms of its start, python -X importtime) and starts too slowly to
    be the log's flood."""
    return log == "all" and not (handler and method == "spawn")


class OpenConnections:
    """Which of a server process's handlers still hold their client's connection: a byte
    each in shared memory, set by the server as it starts a handler, cleared by the
    handler as it closes its connection (handle_connection), and by the server when it
    reaps one that never did (killed). max clients counts these, as the pool and thread
    modes count open connections. Counted as processes alive instead, a handler that had
    closed its client's connection but had not yet exited and been reaped turned the
    next client away: every few clients with --max-clients 1, one client after another,
    and 15-20 % of clients under benchmarks/tcp.py's load (12 clients, 64 allowed).
    Handlers alive, those still ending included, are bounded by proclab's limit of live
    processes (the server's room: its capacity), as every child is.

    A memfd, so that every start method's handler gets it (an fd, passed as the event
    pipe is) and writes its byte with one pwrite, importing nothing."""

    def __init__(self, capacity: int) -> None:
        import mmap

        self.capacity = capacity
        self.fd = os.memfd_create("proclab-open-connections", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, max(1, capacity))  # mmap refuses an empty file: room 0
        self._bytes = mmap.mmap(self.fd, max(1, capacity))
        self._free = list(range(capacity - 1, -1, -1))  # the lowest is taken first
        self._top = 0  # one past the highest byte ever taken: the rest are all 0
        # a handler (its Process, not its pid: the fork server reaps a forkserver handler
        # at once, and its pid may be another handler's before this one is reaped) -> byte
        self._slot_of: dict[Any, int] = {}

    def open_count(self) -> int:
        return self._bytes[: self._top].count(1)

    def held(self) -> int:
        """Handlers started and not yet reaped, each holding a byte."""
        return self.capacity - len(self._free)

    def take(self) -> int:
        """A byte for a handler about to start, set: its connection is open."""
        slot = self._free.pop()
        self._bytes[slot] = 1
        self._top = max(self._top, slot + 1)
        return slot

    def started(self, handler: Any, slot: int) -> None:
        self._slot_of[handler] = slot

    def give_back(self, slot: int) -> None:
        self._bytes[slot] = 0
        self._free.append(slot)

    def reaped(self, handler: Any) -> None:
        slot = self._slot_of.pop(handler, None)
        if slot is not None:
            self.give_back(slot)

    def close(self) -> None:
        self._bytes.close()
        os.close(self.fd)


class SigtermStop:
    """SIGTERM (the server stopping, or a terminate from the table), turned into a request
    to stop: the handler closes its connections, reporting each with its true figures,
    and returns. Readable (fileno) once it is set, to wake the serving loop."""

    def __init__(self) -> None:
        self._set = False
        self._r, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # Through _signal, the C module under `signal`, whose wrappers make an enum member
        # of every handler: in a fork handler each first write to a page copies it
        # (bootstrap._reset_signal_handlers measured the same).
        _signal.set_wakeup_fd(write)
        _signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, _signum: int, _frame: object) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def fileno(self) -> int:
        return self._r


class _Conn:
    __slots__ = (
        "bytes_in",
        "bytes_out",
        "client",
        "eof",
        "fd",
        "last",
        "mask",
        "out",
        "sock",
        "started",
    )

    def __init__(self, sock: socket.socket, client: str, now: float) -> None:
        if sock.gettimeout():  # Python would wait out a timeout where MSG_DONTWAIT failed
            sock.settimeout(None)
        self.sock = sock  # left blocking: every recv and send here says MSG_DONTWAIT
        self.fd = sock.fileno()
        self.client = client
        self.started = now
        self.last = now
        self.bytes_in = 0
        self.bytes_out = 0
        self.out = bytearray()  # owed to the client, not sent yet
        self.eof = False
        self.mask = _IN  # what it is registered for


def dropped_by_reset(sock: socket.socket) -> int:
    """Bytes sent on `sock` that closing it now drops: a socket closed with input it has
    not read resets the connection, and what its peer has not acknowledged is lost (a
    client that stopped reading was logged "out 4,128,768 B" and had 32,768). 0 where
    nothing is unread: a close then delivers the rest."""
    import fcntl  # only here: a spawn handler imports this module from scratch
    import termios

    try:
        unread = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        if not int.from_bytes(unread, sys.byteorder):
            return 0
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    return int.from_bytes(queued, sys.byteorder)


def client_address(address: Any) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# The serving loop waits on epoll itself rather than through selectors: a pool worker
# moves every message through it, and selectors' layers (a key per ready fd, masks
# translated both ways, a clock read per chunk) were half of its own CPU. A worker of
# this loop, 3,000 connections of 10 messages from 4 client threads: 0.10-0.13 ms of
# user CPU a connection with selectors, 0.05 for a bare epoll echo loop and for a
# blocking accept/recv/send one (/tmp harnesses, see the README's "Measured").
_IN, _OUT = select.EPOLLIN, select.EPOLLOUT
# A connection's socket is not switched to non-blocking (an ioctl per connection): each
# recv and send on it is asked not to wait instead, which is all the loop needs.
_DONTWAIT = socket.MSG_DONTWAIT


def register_exclusive(epoll: select.epoll, fd: int) -> None:
    """Wait on a socket other processes wait on too (the pool's shared listening socket)
    without waking them all.

    Registered as usual, each connection woke every worker: one accepted it and the others
    found nothing (accept4 failed 19 times in 20 in a traced worker) and went back to
    wait. EPOLLEXCLUSIVE wakes one, as a blocking accept() does. Pool of 4 under
    benchmarks/tcp.py's load, --log errors: 2,194 -> 2,521 connections a second."""
    exclusive = getattr(select, "EPOLLEXCLUSIVE", 0)
    try:
        epoll.register(fd, _IN | exclusive)
    except OSError:  # a kernel before 4.5: every worker is woken, as before
        if not exclusive:
            raise
        epoll.register(fd, _IN)


class _Connections:
    """The connections one serving loop holds: registered with its epoll, counted in the
    pool's shared count (or, for a handler, in its server's OpenConnections), and each
    reported with its figures when it closes."""

    def __init__(
        self,
        epoll: select.epoll,
        report: Reporter,
        counter: Any,
        closing: Any = None,
        own: int = WORKER_OPEN,
    ) -> None:
        self.epoll = epoll
        self.report = report
        self.counter = counter
        self.own = own  # a pool worker's own count in `counter`
        self.closing = closing  # called as a connection closes, before the client sees it
        self.by_fd: dict[int, _Conn] = {}

    def open(self, sock: socket.socket, client: str, at: float | None = None) -> None:
        conn = _Conn(sock, client, time.monotonic() if at is None else at)
        self.by_fd[conn.fd] = conn
        self.epoll.register(conn.fd, _IN)

    def close(self, conn: _Conn, reason: str, ours: bool = False) -> None:
        """`ours`: the server ends it (a timeout, a stop), not its client."""
        del self.by_fd[conn.fd]
        if self.closing is not None:
            self.closing()
        if ours:
            dropped = dropped_by_reset(conn.sock)
            if dropped:
                conn.bytes_out -= dropped
                reason += f"; reset, its last {dropped:,} B sent never acknowledged"
        conn.sock.close()  # its only fd: the kernel takes it out of the epoll set
        if self.counter is not None:
            with self.counter.get_lock():
                counts = self.counter.get_obj()  # indexed through the lock held already
                counts[OPEN] -= 1
                counts[self.own] -= 1
                counts[SERVED] += 1
        if not self.report.connections:  # its figures are worked out only to be told
            return
        duration = round(time.monotonic() - conn.started, 6)
        self.report.closed(conn.client, duration, conn.bytes_in, conn.bytes_out, reason)

    def close_all(self, reason: str) -> None:
        for conn in list(self.by_fd.values()):
            self.close(conn, reason, ours=True)

    def sweep(self, now: float, idle_timeout: float, lifetime: float, next_sweep: float) -> float:
        """End those past their idle timeout or lifetime; when the next may be due."""
        for conn in list(self.by_fd.values()):
            due = min(conn.last + idle_timeout, conn.started + lifetime)
            if due <= now:
                why = "idle timeout" if conn.last + idle_timeout <= now else "lifetime"
                self.close(conn, why, ours=True)
            else:
                next_sweep = min(next_sweep, due)
        return next_sweep

    def pump(self, conn: _Conn, events: int, now: float) -> bool:
        """Move a ready connection's bytes; whether it is still open."""
        # As selectors reads epoll: a hang-up or an error is news for a reader and a
        # writer alike (recv or send then says which).
        reason = _pump(conn, events & ~_OUT, events & ~_IN, self.report, now)
        if reason is not None:
            self.close(conn, reason)
            return False
        if not conn.out and not conn.eof and conn.mask == _IN:
            # An echo's usual case, once a message is moved: nothing owed, registered for
            # reading, as it stays (0.3 µs a message less than working it out, timeit).
            return True
        want = _OUT if conn.out else 0
        if not conn.eof and len(conn.out) < OUT_LIMIT:
            want |= _IN
        # Nothing to read or write (stalled by a client that does not read): only its
        # idle timeout or lifetime will end it.
        want = want or _IN
        if want != conn.mask:
            conn.mask = want
            self.epoll.modify(conn.fd, want)
        return True


def serve(
    report: Reporter,
    idle_timeout: float,
    lifetime: float,
    listener: socket.socket | None = None,
    first: tuple[socket.socket, str] | None = None,
    first_at: float | None = None,
    max_clients: int = 0,
    counter: Any = None,
    stop: Any = None,
    closing: Any = None,
    worker: int = 1,
) -> None:
    """Serve `first` (a handler; accepted at `first_at`, by time.monotonic()) or every
    connection `listener` accepts (a pool worker).

    `counter`: the pool's shared counts (OPEN, SERVED, then each worker's open ones) across
    its workers, the open ones checked against `max_clients` on accept; `worker`: this
    worker's number in it. `closing`: called as each connection closes,
    before the client can see it closed. `stop`: an object with is_set(), looked at between events
    (and, if it has a fileno(), readable once set: else polled). Returns when there is no
    listener and no connection left, or when stop is set.
    """
    epoll = select.epoll()
    own = WORKER_OPEN + worker - 1
    conns = _Connections(epoll, report, counter, closing, own)
    by_fd = conns.by_fd
    polled = stop is not None and not hasattr(stop, "fileno")
    stop_reason = "ended by SIGTERM" if hasattr(stop, "fileno") else "server stopped"
    listen_fd = stop_fd = -1
    if first is not None:
        conns.open(*first, at=first_at)
    if listener is not None:
        listener.setblocking(False)
        listen_fd = listener.fileno()
        register_exclusive(epoll, listen_fd)
    if stop is not None and not polled:
        stop_fd = stop.fileno()
        epoll.register(stop_fd, _IN)
    next_sweep = 0.0  # when some connection's idle timeout or lifetime may be due
    # One clock reading a wake, taken as the wait ends: the connections it woke are moved
    # at that time, and the next sweep and wait are worked out from it (what they handled
    # since takes microseconds; the sweep's own period is SWEEP_S). A pool worker under
    # load wakes several times a connection, and each reading and call here is paid
    # each time (benchmarks/tcp.py).
    now = time.monotonic()
    resting_until = 0.0  # out of file descriptors: the listener rests until then
    try:
        while by_fd or listener is not None:
            if stop is not None and stop.is_set():
                conns.close_all(stop_reason)
                return
            if resting_until and now >= resting_until:
                register_exclusive(epoll, listen_fd)
                resting_until = 0.0
            if now >= next_sweep:  # not on every event: one pass over every connection
                later = now + SWEEP_S if listener is not None or polled else now + 3600
                next_sweep = conns.sweep(now, idle_timeout, lifetime, later)
                if not by_fd and listener is None:
                    break  # a handler whose connection just timed out
            wait = next_sweep - now
            if resting_until:
                wait = min(wait, resting_until - now)
            if report.queue or report.left_out:  # else nothing to send, nor to wait for
                wait = report.flush_and_wait(now, wait)
            ready = epoll.poll(wait if wait > 0 else 0)
            now = time.monotonic()
            for fd, events in ready:
                conn = by_fd.get(fd)
                if conn is not None:
                    if conns.pump(conn, events, now) and conn.last + idle_timeout < next_sweep:
                        next_sweep = conn.last + idle_timeout
                elif fd == listen_fd:
                    _accept(listener, conns.open, report, max_clients, counter, own)  # type: ignore[arg-type]
                    if _fd_rests.out_of_fds():
                        epoll.unregister(listen_fd)
                        resting_until = now + FD_REST_S
                elif fd == stop_fd:
                    with contextlib.suppress(OSError):
                        os.read(fd, 64)
    finally:
        conns.close_all("handler ended")
        epoll.close()
        report.close()


class FdRests:
    """A server's accepts that ran out of file descriptors: its listener rests FD_REST_S
    after each, and the log says so at most every FD_SAID_S."""

    __slots__ = ("_pending", "_said_at", "_times")

    def __init__(self) -> None:
        self._pending = False  # out since its loop last asked (out_of_fds)
        self._said_at = 0.0  # monotonic time the log last said so
        self._times = 0  # since then

    def met(self) -> tuple[bool, int]:
        """One more: whether the log may say so now, and how many times it has been out
        since the log last did (0 if it never did)."""
        self._pending = True
        self._times += 1
        now = time.monotonic()
        if now - self._said_at < FD_SAID_S:
            return False, 0
        times = self._times if self._said_at else 0
        self._said_at, self._times = now, 0
        return True, times

    def out_of_fds(self) -> bool:
        """Whether an accept ran out since the last asking: the listener should rest."""
        out, self._pending = self._pending, False
        return out


_fd_rests = FdRests()  # this process's listener's (a pool worker's)


def _waiting_clients(
    listener: socket.socket, report: Reporter, tell_errors: bool = True
) -> Iterator[tuple[socket.socket, str]]:
    """Every client waiting to be accepted, with its address; an accept that fails for
    another reason than an empty backlog is reported (if `tell_errors`; out of file
    descriptors, at most every FD_SAID_S) and ends it."""
    while True:
        try:
            sock, address = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno in fd_limit.OUT_OF_FDS and not _fd_rests.met()[0]:
                return
            if tell_errors:
                report("error", "", text=f"accept failed: {exc.strerror}")
            return
        yield sock, client_address(address)


def _accept(
    listener: socket.socket,
    open_conn: Any,
    report: Reporter,
    max_clients: int,
    counter: Any,
    own: int = WORKER_OPEN,
) -> None:
    # Every client waiting, not one a wake: the listening socket is level-triggered, and
    # while a backlog is left every worker's wait returns it ready, to race for it (tried
    # under benchmarks/tcp.py's load: the pool fell from 0.69x to 0.60x).
    for sock, client in _waiting_clients(listener, report):
        if counter is not None:
            with counter.get_lock():
                counts = counter.get_obj()  # indexed through the lock held already
                full = counts[OPEN] >= max_clients
                if not full:
                    counts[OPEN] += 1
                    counts[own] += 1
            if full:
                reject(sock, client, max_clients, report)
                continue
        report.opened(client)
        open_conn(sock, client)


def reject(
    sock: socket.socket,
    client: str,
    max_clients: int,
    report: Any,
    line: bytes | None = None,
    kind: str = "busy",
    **fields: Any,
) -> None:
    """One line (by default beginning "busy"), then close; never blocks the accept loop.

    What the client has sent already is read first: closed with bytes unread, the socket
    resets the connection, and a client that had sent its first message at once (as the
    lesson's does) met "connection reset" before it could read the line."""
    try:
        sock.setblocking(False)
        if line is None:
            limit = plural(max_clients, "client")
            line = f"busy: the server is at its limit of {limit}; try again later\n".encode()
        sock.send(line)
        sock.shutdown(socket.SHUT_WR)
        for _ in range(REJECT_READS):  # a client that sends on and on: reset after all
            if not sock.recv(READ_CHUNK):
                break
    except OSError:  # nothing more to read now (BlockingIOError), or gone
        pass
    finally:
        sock.close()
    report(kind, client, max_clients=max_clients, **fields)


def _pump(conn: _Conn, readable: int, writable: int, report: Any, now: float) -> str | None:
    """Move bytes; the reason to close, or None to go on."""
    if readable and not conn.eof and len(conn.out) < OUT_LIMIT:
        try:
            data = conn.sock.recv(READ_CHUNK, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            data = None
        except ConnectionResetError:
            return "reset"
        except OSError as exc:
            return f"error: {exc.strerror}"
        if data == b"":
            conn.eof = True  # the peer will send no more; it may still read what it is owed
        elif data:
            conn.bytes_in += len(data)
            conn.last = now
            # `data` first: at the other levels a chunk costs no call
            if report.data and report.data_wanted(now):
                report.chunk("data_in", conn.client, data, len(data))
            if not conn.out:
                # Nothing owed before it (an echo's usual case): sent as it is, and only
                # what the client's socket does not take is kept. A pool worker moves
                # every message through here (benchmarks/tcp.py).
                return _send(conn, data.upper(), report, now)
            conn.out += data.upper()
    if conn.out and (readable or writable):
        return _send(conn, conn.out, report, now)
    if conn.eof and not conn.out:
        return "peer closed"
    return None


def _send(conn: _Conn, owed: bytes | bytearray, report: Any, now: float) -> str | None:
    """Send what is owed (`conn.out`, or a chunk sent before it was kept there); what is
    left of it is kept in `conn.out`. The reason to close, or None to go on."""
    try:
        sent = conn.sock.send(owed, _DONTWAIT)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except (BrokenPipeError, ConnectionResetError):
        return "reset"
    except OSError as exc:
        return f"error: {exc.strerror}"
    if sent:
        if report.data and report.data_wanted(now):
            report.chunk("data_out", conn.client, owed, sent)
        conn.bytes_out += sent
        conn.last = now
    if owed is conn.out:
        del owed[:sent]
    elif sent < len(owed):
        conn.out += owed[sent:]
    if conn.eof and not conn.out:
        return "peer closed"
    return None


# Entry points: one per concurrency mode. -------------------------------------------------


def handle_connection(
    conn: socket.socket,
    client: str,
    events: Any,
    idle_timeout: float,
    lifetime: float,
    log: str = "all",
    method: str = "fork",
    budget: SharedBudget | None = None,
    opened: tuple[Any, int] | None = None,
    forked_by: int = 0,
    accepted: float = 0.0,
) -> None:
    """A handler process, started by the server's process (process_server) for one
    connection: the lesson's model. It leads its own process group, as proclab's own
    children do (proclab signals a row's group), and dies with its server. A forkserver
    handler tells its CPU figures at its end (the fork server reaps it, and tells its
    server only the exit status); a fork or spawn handler's are read by its server.

    `budget`: the log's data budget, shared with the server's other handlers
    (SharedBudget). `opened`: (the fd of its server's OpenConnections, its byte there),
    cleared as it closes its connection. `forked_by`: the server process's pid, when it
    forked this handler itself (_fork) rather than through multiprocessing. `accepted`:
    when its server accepted the connection (time.monotonic(), one clock for every
    process): the connection's duration, idle timeout and lifetime count from there, not
    from the handler's start (a spawn handler's takes 0.1-0.3 s)."""
    fd = _fd(events)
    opened_fd, slot = (_fd(opened[0]), opened[1]) if opened is not None else (-1, -1)
    if method == "fork":  # the server's listening socket and its other handlers' fds
        bootstrap.close_inherited_fds((conn.fileno(), fd, opened_fd))
    stop = _as_servers_child(method, f"tcp {client}", "handle_connection", forked_by)
    report = Reporter(fd, level=log, hold=HOLD_S, shared=budget)
    # Its own word on when its connection was accepted, first of its lines: its server's
    # may come after them (a forkserver handler whose fork server was starting wrote its
    # lines 75 ms before its server's, and the log said accepted when the handler began).
    if accepted:
        report.opened(client, time.time() - (time.monotonic() - accepted))

    def closing() -> None:
        # Not contextlib.suppress, here and in _as_servers_child: a fork handler copies
        # each page of code it runs (bootstrap.child_main says the same).
        try:  # noqa: SIM105
            os.pwrite(opened_fd, b"\0", slot)  # else its server counts it until it reaps it
        except OSError:
            pass

    try:
        serve(
            report,
            idle_timeout,
            lifetime,
            first=(conn, client),
            first_at=accepted or None,
            stop=stop,
            closing=closing if opened is not None else None,
        )
    finally:
        if method == "forkserver":  # else its server reads them with wait4
            _tell_figures(report, client)
        report.close()


def _as_servers_child(method: str, name: str, function: str, forked_by: int = 0) -> SigtermStop:
    """The set-up of a process the server process starts (a handler, a pool worker), and
    its stop on SIGTERM, caught before it leads its group: proclab reads a group's leader
    as ready, and a terminate from its row then ends it as a stop does, never half set up.

    A group, not a session: it stays in its server's session, as the lesson's handlers
    stay in their script's. Each session is a scheduling group of its own (autogroup)
    that would weigh each handler or worker as much as a whole program, and take the CPU
    from its clients. proclab's own children lead sessions so that a child's tree cannot
    starve proclab; these run the server's own code, capped (allow_descendants)."""
    stop = SigtermStop()
    try:  # noqa: SIM105
        os.setpgid(0, 0)
    except OSError:
        pass
    bootstrap.die_with_parent(method, forked_by or None)
    proctitle.set_title(proctitle.title_for(name, f"{__name__}:{function}"))
    return stop


def _tell_figures(report: Reporter, client: str) -> None:
    """A forkserver handler's own CPU figures, told at its end: the fork server reaps it,
    and tells its server only the exit status."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report("figures", client, figures=_figures(usage, bootstrap.run_delay()))


_UNTOLD = object()  # a fork server's word on a child's end that never came


def _told_by_fork_server(process: Any) -> Any:
    """A forkserver child's exit code as its fork server tells it; None while it runs;
    _UNTOLD if the server's word could not be read (out of file descriptors, or gone).
    Process.exitcode gives 255 then, which was shown as the handler's "failed, exit 255"
    (118 handlers of a server out of descriptors)."""
    popen = process._popen
    if popen is None or popen.returncode is not None:
        return process.exitcode
    from multiprocessing import forkserver
    from multiprocessing.connection import wait

    if not wait([popen.sentinel], 0):
        return None
    try:
        popen.returncode = forkserver.read_signed(popen.sentinel)
    except (OSError, EOFError):
        popen.returncode = 255  # multiprocessing's own word for it: it is done with it
        return _UNTOLD
    return popen.returncode


def _figures(usage: resource.struct_rusage, run_delay: float) -> list[float]:
    """A process's CPU figures as proclab reads an exit record: user s, system s,
    voluntary and involuntary switches, run-queue wait s."""
    return [usage.ru_utime, usage.ru_stime, usage.ru_nvcsw, usage.ru_nivcsw, run_delay]


def process_server(
    listener: socket.socket,
    events: Any,
    idle_timeout: float,
    lifetime: float,
    max_clients: int,
    method: str,
    grace: float,
    log: str = "all",
    room: tuple[int, str] = (1 << 30, ""),
    pool: tuple[int, Any] = (0, None),
) -> None:
    """The lesson's server as a process of its own: its accept loop starts one handler
    process per connection with `method` and closes its own copy of the connection, and
    reaps each handler when it ends. A small process forking is what makes one process
    per connection cheap: forked from proclab itself, with its threads and its 20 MB,
    each handler cost about three times as much CPU (benchmarks/tcp_split.py).

    It tells the server's pipe each handler it starts ("handler": its pid and how long
    starting it took) and each it reaps ("reaped": its exit code and, when it was its parent,
    its CPU figures from wait4). Past max_clients connections open (OpenConnections), or
    past the room proclab's limit of processes leaves, a client gets "busy".
    On SIGTERM it stops accepting, passes SIGTERM to every handler (each ends its
    connection and reports it), SIGKILL after `grace`, and ends once all are reaped.
    `room`: how many handlers proclab's limit of live processes leaves room for, and what
    a client turned away for want of it is told.

    `pool`: (workers, shared counts) makes it the parent of a pre-forked pool instead, as
    a plain pool's script is: it starts that many pool workers ("handler" lines with
    their worker number), which accept on the listening socket themselves, and it
    accepts nothing."""
    import multiprocessing

    # proclab gave this process back the user's limit on open files, as it does every
    # child; it holds a connection and pipes for each of up to `room` handlers.
    fd_limit.raise_own()
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":  # else each handler imports this module anew
        # popen_forkserver: each handler unpickles the fds it is passed from there
        # (methods.FORKSERVER_PRELOAD says what that cost each child)
        preload = [
            __name__,
            "proclab.core.server.fork_server_shield",
            "multiprocessing.popen_forkserver",
        ]
        ctx.set_forkserver_preload([*preload, "mmap"])  # each handler maps the log's budget
    fd = _fd(events)
    # Its handler and reaped lines wait, as a handler's events do, to go out together: one
    # write (and one wake of proclab's server thread) for every few connections.
    report = Reporter(fd, level=log, hold=HOLD_S)
    budget = SharedBudget() if takes_shared_budget(log, method, handler=False) else None
    handlers_budget = budget if takes_shared_budget(log, method, handler=True) else None
    stop = SigtermStop()
    stop_fd = stop.fileno()
    epoll = select.epoll()
    epoll.register(stop_fd, _IN)
    live: dict[int, Any] = {}  # the fd readable once a handler has ended -> its Process
    # Without pidfds (Linux before 5.3) a fork handler's sentinel is read as ended once it
    # has closed its inherited fds: such handlers are then polled.
    polled: dict[int, Any] = {}
    workers, counter = pool
    numbers: dict[int, int] = {}  # a pool worker's pid -> its number
    opened = None if workers else OpenConnections(min(room[0], MAX_HANDLERS))
    listen_fd = -1
    stopping = False
    kill_at: float | None = None
    try:
        if workers:
            for number in range(1, workers + 1):
                name = f"tcp pool worker {number}"
                args: tuple[Any, ...] = (listener, bootstrap.InheritedFd(fd), idle_timeout)
                args += (lifetime, max_clients, counter, log, method, name, budget, number)
                worker = _start_child(
                    ctx, (pool_worker, args, name), method, live, epoll, report, "", worker=number
                )
                numbers[worker.pid] = number
            listener.close()  # its workers have their own copies
        else:
            listener.setblocking(False)
            listen_fd = listener.fileno()
            epoll.register(listen_fd, _IN)
        while listen_fd >= 0 or live or polled:
            if stop.is_set() and not stopping:
                stopping = True
                if listen_fd >= 0:
                    epoll.unregister(listen_fd)
                    _refuse_backlog(listener, report, max_clients)
                    listener.close()
                    listen_fd = -1
                for process in (*live.values(), *polled.values()):
                    signal_group(process.pid, signal.SIGTERM)
                kill_at = time.monotonic() + grace
                continue
            if kill_at is not None and time.monotonic() >= kill_at:
                for process in (*live.values(), *polled.values()):
                    signal_group(process.pid, signal.SIGKILL)
                kill_at = None
            for fd_, process in list(polled.items()):
                if _reap(process, method, report, opened, _left_open(counter, numbers, process)):
                    del polled[fd_]
            now = time.monotonic()
            wait = report.flush_and_wait(now, NO_WAIT_S if kill_at is None else kill_at - now)
            if polled:
                wait = min(wait, RETRY_S)
            accept = False
            for ready, _ in epoll.poll(max(0.0, wait)):
                if ready == listen_fd:
                    # After the handlers this wake says have ended: counted until reaped,
                    # they would turn clients away as "busy" (at max_clients) for nothing.
                    accept = not stop.is_set()
                    continue
                if ready == stop_fd:
                    with contextlib.suppress(OSError):
                        os.read(stop_fd, 64)
                    continue
                process = live.pop(ready, None)
                if process is None:
                    continue
                epoll.unregister(ready)
                if ready != process.sentinel:
                    os.close(ready)  # the pidfd: it has ended
                if not _reap(
                    process, method, report, opened, _left_open(counter, numbers, process)
                ):
                    polled[ready] = process
            if accept:
                assert opened is not None  # a pool's parent accepts nothing
                limits = (idle_timeout, lifetime, log, method, handlers_budget)
                caps = (max_clients, room[1], opened)
                _start_handlers(listener, live, epoll, ctx, report, caps, limits)
        if workers and not stop.is_set():  # its workers were killed; a pool starts no others
            report("error", "", text=POOL_EMPTY)
    finally:
        for process in (*live.values(), *polled.values()):  # only if this failed
            signal_group(process.pid, signal.SIGKILL)
        epoll.close()
        report.close()
        if opened is not None:
            opened.close()
        if budget is not None:
            budget.close()
        if method == "forkserver":
            _stop_fork_server()


def _stop_fork_server() -> None:
    """This process's own fork server, ended with it: left to end by itself (once it
    reads the end of the pipe this process holds), it outlived its parent a moment, and
    proclab, ending its family, named it as a process that had (and sent it SIGTERM)."""
    from proclab.core import methods  # here: only a forkserver server needs it

    methods.stop_fork_server()


def _start_handlers(
    listener: socket.socket,
    live: dict[int, Any],
    epoll: select.epoll,
    ctx: Any,
    report: Reporter,
    caps: tuple[int, str, OpenConnections],
    limits: tuple[float, float, str, str, Any],
) -> None:
    """Accept every waiting client and start its handler, within max_clients connections
    open and the room proclab's limit of processes leaves (`opened`'s capacity; `no_room`
    says so to a client past it)."""
    max_clients, no_room, opened = caps
    # A few a wake, not every client waiting: under load the backlog refills as fast as
    # handlers start, and the loop reaped nothing meanwhile. Its handlers' zombies piled up
    # to proclab's limit of processes (240 of them under benchmarks/tcp.py's load, 12
    # clients connected), and clients were turned away for want of room.
    for sock, client in itertools.islice(_waiting_clients(listener, report), ACCEPTS_PER_WAKE):
        accepted, accepted_wall = time.monotonic(), time.time()
        if opened.open_count() >= max_clients:
            reject(sock, client, max_clients, report)
            continue
        if opened.held() >= opened.capacity:  # those still ending count too
            line = f"busy: {no_room}; try again later\n".encode()
            reject(sock, client, max_clients, report, line, text=no_room)
            continue
        itself = limits[3] == "fork" and _pidfds()
        slot = opened.take()
        args: tuple[Any, ...] = (sock, client, bootstrap.InheritedFd(report.fd), *limits)
        args += ((bootstrap.InheritedFd(opened.fd), slot), os.getpid() if itself else 0, accepted)
        child = (handle_connection, args, f"tcp {client}")
        try:
            handler = _start_child(
                ctx, child, limits[3], live, epoll, report, client, itself, time=accepted_wall
            )
        except Exception as exc:
            opened.give_back(slot)
            why = f"could not start a handler: {type(exc).__name__}: {exc}"
            reject(sock, client, max_clients, report, f"busy: {why}\n".encode(), text=why)
        else:
            opened.started(handler, slot)
        finally:
            sock.close()  # the handler has its own copy: a client must see its close


def _start_child(
    ctx: Any,
    child: tuple[Any, tuple[Any, ...], str],
    method: str,
    live: dict[int, Any],
    epoll: select.epoll,
    report: Reporter,
    client: str,
    itself: bool = False,
    **told: Any,
) -> Any:
    """Start one of the server process's children (target, args, name), watched in `live`
    by the fd readable once it has ended, and tell the server ("handler": its pid, how
    long starting it took, and `told`); returns its Process (or _Forked). `itself`:
    forked with _fork, not multiprocessing."""
    import multiprocessing.process

    target, args, name = child
    began = time.perf_counter()
    if itself:
        process: Any = _fork(target, args)
    else:
        process = ctx.Process(target=target, args=args, name=name)
        process.start()
        # This loop reaps its children itself (with their figures); left in
        # multiprocessing's set, the next start() would reap them first.
        multiprocessing.process._children.discard(process)  # type: ignore[attr-defined]
    latency = time.perf_counter() - began
    ended = process.sentinel
    if itself:  # no sentinel: its pidfd or nothing (it would serve on, never reaped)
        try:
            ended = os.pidfd_open(process.pid)
        except OSError:
            os.kill(process.pid, signal.SIGKILL)
            os.waitpid(process.pid, 0)
            raise
    elif method != "forkserver":  # a fork or spawn child's parent is this process
        with contextlib.suppress(OSError, AttributeError):
            ended = os.pidfd_open(process.pid)
    live[ended] = process
    epoll.register(ended, _IN)
    report("handler", client, handler=process.pid, latency=latency, **told)
    return process


class _Forked:
    """A handler this process forked itself: what the serving loop reads of a Process."""

    __slots__ = ("pid",)
    sentinel = -1  # none: its end is read from its pidfd

    def __init__(self, pid: int) -> None:
        self.pid = pid


def _fork(target: Any, args: tuple[Any, ...]) -> _Forked:
    """Start a fork handler with os.fork itself, not multiprocessing.Process: the same
    fork of this process, without what multiprocessing does around it in both processes
    (its pipes and finalizer, its Process object, the child's bootstrap and exit), which
    was half of what a fork child cost: 3.1-3.4 ms of CPU (parent and child) against
    1.6-1.9 with os.fork (benchmarks/fork_cost.py). Ends as a multiprocessing child
    does (BaseProcess._bootstrap): exit code 0 once `target` returns, a SystemExit's
    code (another value written to stderr, and 1), or 1 with the traceback on stderr.
    Whatever happens in it, the child never returns here."""
    _flush_stdio()  # as multiprocessing does: else each child would write it again
    pid = os.fork()
    if pid:
        return _Forked(pid)
    code = 1
    try:
        target(*args)
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            sys.stderr.write(f"{exc.code}\n")
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        _flush_stdio()
        os._exit(code)


def _flush_stdio() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # a forked child must reach os._exit, whatever happens
        pass


_PIDFDS: list[bool] = []


def _pidfds() -> bool:
    """Whether this kernel has pidfds (Linux 5.3): a handler forked with _fork has no
    sentinel, and its end is read from its pidfd."""
    if not _PIDFDS:
        try:
            os.close(os.pidfd_open(os.getpid()))
            _PIDFDS.append(True)
        except AttributeError:
            _PIDFDS.append(False)
        except OSError as exc:  # only ENOSYS says for good: EMFILE may pass
            if exc.errno != errno.ENOSYS:
                return False
            _PIDFDS.append(False)
    return _PIDFDS[0]


def _refuse_backlog(listener: socket.socket, report: Reporter, max_clients: int) -> None:
    """Clients waiting to be accepted when the server stops are told so ("stopping"), not
    turned away as busy."""
    for sock, client in _waiting_clients(listener, report, tell_errors=False):
        reject(
            sock,
            client,
            max_clients,
            report,
            STOPPING_LINE,
            "refused",
            text=STOPPING,
        )


def _left_open(counter: Any, numbers: dict[int, int], process: Any) -> Callable[[], int] | None:
    """For a pool worker, once it has ended: take the connections it left open (killed,
    it could not close them) off the open count, as served; how many there were."""
    if counter is None:  # not a pool: every handler's reap passes here
        return None
    number = numbers.get(process.pid)
    if number is None:
        return None

    def settle() -> int:
        own = WORKER_OPEN + number - 1
        lock = counter.get_lock()
        # A worker killed while it held the lock never gives it back: its server must not
        # wait for it for ever (-1: not known).
        if not lock.acquire(timeout=SETTLE_WAIT_S):
            return -1
        try:
            counts = counter.get_obj()  # indexed through the lock held already
            left = counts[own]
            counts[own] = 0
            counts[OPEN] -= left  # not served: cut short with it (its server counts them)
        finally:
            lock.release()
        return int(left)

    return settle


def _reap(
    process: Any,
    method: str,
    report: Reporter,
    opened: OpenConnections | None = None,
    left_open: Callable[[], int] | None = None,
) -> bool:
    """Tell the server how a handler ended, once it has: its exit code (as
    Process.exitcode gives it) and, when this process is its parent, its CPU figures from
    wait4, exact even for a handler that was killed. Its byte in `opened` is given back;
    a pool worker's connections left open are settled (`left_open`) and told."""
    told: dict[str, int] = {}
    if method == "forkserver":  # the fork server reaps it, and sends only the status
        exitcode = _told_by_fork_server(process)
        if exitcode is None:
            return False
        if opened is not None:
            opened.reaped(process)
        if left_open is not None:
            told["left_open"] = left_open()
        known = exitcode is not _UNTOLD
        report(
            "reaped",
            "",
            handler=process.pid,
            exitcode=exitcode if known else None,
            figures=None,
            **told,
            **({} if known else {"why": "exit status not known: its fork server did not tell it"}),
        )
        return True
    run_delay = bootstrap.run_delay(process.pid)  # a zombie's: gone once it is reaped
    try:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    except ChildProcessError:
        pid, status, usage = process.pid, 255 << 8, None  # reaped by someone else
    if pid == 0:
        return False
    if opened is not None:
        opened.reaped(process)
    if left_open is not None:
        told["left_open"] = left_open()
    figures = _figures(usage, run_delay) if usage is not None else None
    exitcode = os.waitstatus_to_exitcode(status)
    report("reaped", "", handler=process.pid, exitcode=exitcode, figures=figures, **told)
    return True


def pool_worker(
    listener: socket.socket,
    events: Any,
    idle_timeout: float,
    lifetime: float,
    max_clients: int,
    counter: Any,
    log: str = "all",
    method: str = "fork",
    name: str = "tcp pool worker",
    budget: SharedBudget | None = None,
    number: int = 1,
) -> None:
    """A pre-started worker, started by the pool's server process: accepts on the shared
    listening socket and serves every connection it accepts, many at once. `budget`: as
    a handler's; `number`: its own (from 1), its place among the counts."""
    stop = _as_servers_child(method, name, "pool_worker")
    report = Reporter(_fd(events), level=log, hold=HOLD_S, shared=budget)
    try:
        serve(
            report,
            idle_timeout,
            lifetime,
            listener=listener,
            max_clients=max_clients,
            counter=counter,
            stop=stop,
            worker=number,
        )
    finally:
        if method == "forkserver":  # else its server reads them with wait4
            _tell_figures(report, "")
        report.close()


def _fd(events: Any) -> int:
    return events if isinstance(events, int) else events.fd
