"""proclab's end of the hook: a private Unix socket every Python process of a watched
program connects to, and one thread that reads them.

    with HookServer(on_message) as server:
        env = server.environment(output_fds=(out_w, err_w))  # for the program
        ...

Each hooked process holds one SOCK_SEQPACKET connection (its messages in order, the end
of it seen as the connection closing; a process that floods fills its own socket, not
everyone's, and a full queue of the kind a datagram socket shares, 10 deep by default,
cannot drop a burst of hellos). The socket lives in a 0700 directory of its own; a
connection from another user is refused (SO_PEERCRED), and every message carries the
kernel's word for its sender (SO_PASSCRED), which must be the pid it claims.

The thread sweeps the connections every 20 ms while messages come (100 ms when idle)
rather than waiting on them, so that sending wakes nobody: see `_serve`.

`on_message(message, fds)` runs for each valid message (`protocol.parse`), and a `Bye`
when a process's connection closes: on the server's thread, or on whichever thread asked
for a process's messages now (`deliver_pending`, `deliver_all`), one thread at a time. A
`Hello` comes with its output pipes' read ends: `fds.take()` makes them the caller's, and
every fd a message brought that nobody took is closed after the callback returns (an
ignored hello's pipes then break, and that process's writes fail: take them). Anything
else a process sends is dropped and counted in `stats()`, never raised.

A message that says how much of its sender's output was still unread as it was sent
(`protocol.Unread`: a start, a join, a reap) waits, with what that process sends after
it, until `in_turn` says the lines written before it have been handed out (`release`,
after each chunk of lines; every sweep), or HOLD_MAX_S: a start() is then told after the
lines printed just before it, however late proclab reads them.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import py_compile
import select
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from proclab.core.watch.protocol import (
    FORK_SERVER_MAIN,
    MAX_MESSAGE_BYTES,
    Bye,
    Dropped,
    Hello,
    Message,
    MpJoin,
    MpStart,
    ProtocolError,
    Reaped,
    Unread,
    parse_sent,
)

HOOK_DIR = Path(__file__).with_name("hook")
SOCKET_ENV = "PROCLAB_HOOK"
PIPES_ENV = "PROCLAB_HOOK_PIPES"  # the hook's own name for it: hook/_proclab_hook.py

MAX_FDS = 2  # a hello's stdout and stderr; more is junk (room for 8 to see and close it)
_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid
_ANCILLARY = socket.CMSG_SPACE(8 * 4) + socket.CMSG_SPACE(_CREDS.size)
# Between sweeps a process's messages wait in its connection's socket buffer, which holds
# about 170 of them (300 bytes each; measured): 20 ms sweeps drain 8,000 a second from
# each process, and even the first sweep after an idle spell comes in time for 1,700 a
# second, more than a process can start children; what does not fit is counted.
SWEEP_BUSY = 0.02
SWEEP_IDLE = 0.1  # after sweeps that found nothing: benchmarks/hook_cost.py, "idle server"
PER_ROUND = 512  # at most this many from one connection a sweep: more than its buffer holds
_UNIX_PATH_MAX = 107
# At most this long a message waits for the lines its sender wrote before it (in_turn):
# a process that prints on and on never lets its pipe run empty.
HOLD_MAX_S = 2.0


@dataclass(frozen=True, slots=True)
class HookStats:
    connections: int  # accepted, in all
    live: int  # open now
    refused: int  # another user's, or past max_connections
    messages: int  # delivered to the callback
    junk: int  # dropped: not a message, wrong sender, wrong fds, cut short
    lost: int  # messages processes said they could not send (Dropped)
    fds_closed: int  # passed to proclab and closed because nobody took them
    callback_errors: int
    last_error: str  # the last junk reason or callback error, for a log line


class PassedFds:
    """The fds that came with one message. Taken ones are the caller's to close."""

    __slots__ = ("_fds",)

    def __init__(self, fds: tuple[int, ...]) -> None:
        self._fds = fds

    def __len__(self) -> int:
        return len(self._fds)

    def take(self) -> tuple[int, ...]:
        fds, self._fds = self._fds, ()
        return fds

    def close(self) -> int:
        """Close what nobody took; how many."""
        fds = self.take()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        return len(fds)


class _Held(NamedTuple):
    """A message waiting for its turn: what its sender had left unread as it sent it,
    when it was held (time.monotonic()), and the fds that came with it (a hello's pipes,
    kept until it is delivered)."""

    message: Message
    unread: Unread
    at: float
    passed: PassedFds


class _Connection:
    __slots__ = ("pid", "sock")

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.sock = sock
        self.pid = pid


class HookServer:
    """Receives what the hooks of a watched program say. Start it (or enter it) before
    the program, close it after the program's last process is gone."""

    def __init__(
        self,
        on_message: Callable[[Message, PassedFds], None],
        *,
        in_turn: Callable[[int, Unread], bool] | None = None,
        all_told: Callable[[int], bool] | None = None,
        max_connections: int = 4096,
    ) -> None:
        self._on_message = on_message
        # Whether the lines a process wrote before a message it sent (pid, what it had
        # left unread and when) have been handed out.
        self._in_turn = in_turn
        # Whether every line a process has written so far has been handed out: a word on
        # its end (a reap, a join) waits for them.
        self._all_told = all_told
        # pid -> its messages waiting for their turn, in the order sent
        self._held: dict[int, deque[_Held]] = {}
        # The processes a start() has been told to have started: a fork server's child is
        # told after the start() that asked for it (it came among the lines its starter
        # printed before start(), the fork server's pipes being empty).
        self._started: set[int] = set()
        self._max_connections = max_connections
        self._uid = os.getuid()
        self.directory = _private_directory()
        self.path = os.path.join(self.directory, "hook.sock")
        self._connections: dict[int, _Connection] = {}
        self._fds_of: dict[int, set[int]] = {}  # a pid -> its connections' fds
        self._unheard: set[int] = set()  # connections accepted and not read yet
        # Connections being read further up the stack: a delivery may read others (a
        # child's hello, its parent's word first), never one of these again.
        self._in_read: set[int] = set()
        self._arriving: set[int] = set()  # pids whose hello is being taken in
        self._thread: threading.Thread | None = None
        self._closed = False
        self._released = False
        self._close_lock = threading.Lock()
        # Held while messages are read and delivered, by the sweep or a delivery now:
        # one process's messages are delivered in the order it sent them, from one thread
        # at a time. Re-entrant: a parent's word on a child's end, being delivered, has the
        # child's own messages delivered first (watch/messages.py).
        self._reading = threading.RLock()
        self._owned: list[int] = []  # raw fds: the wake pipe
        try:
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self._epoll = select.epoll()
            self._wake_r, self._wake_w = os.pipe()
            self._owned = [self._wake_r, self._wake_w]
        except BaseException:
            self._release()
            raise
        self._accepting = True
        self._resume_accept_at = 0.0
        self._counts = dict.fromkeys(
            ("connections", "refused", "messages", "junk", "lost", "fds_closed", "callback_errors"),
            0,
        )
        self._last_error = ""
        try:
            _compile_hook()
            # Set on the listener, inherited by every connection it accepts, so even a
            # message sent before accept() carries its sender's credentials.
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self._listener.bind(self.path)
            self._listener.listen(socket.SOMAXCONN)
            self._listener.setblocking(False)
            os.set_blocking(self._wake_r, False)
            self._epoll.register(self._listener.fileno(), select.EPOLLIN)
        except BaseException:
            self._release()
            raise

    # --- the caller's side ----------------------------------------------------------

    def start(self) -> HookServer:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._serve, name="proclab-hook", daemon=True)
            self._thread.start()
        return self

    def __enter__(self) -> HookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def environment(
        self, base: Mapping[str, str] | None = None, output_fds: Iterable[int] = ()
    ) -> dict[str, str]:
        """The environment to run the program with: `base` (default os.environ) with the
        hook first on PYTHONPATH (the caller's PYTHONPATH kept after it) and the socket's
        path. `output_fds` are the pipes proclab gives the program as its stdout and
        stderr: the hook takes over only those (and its own), never output the program
        sends elsewhere."""
        env = dict(os.environ if base is None else base)
        old = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(HOOK_DIR) + (os.pathsep + old if old else "")
        env[SOCKET_ENV] = self.path
        env[PIPES_ENV] = ",".join(_pipe_id(fd) for fd in output_fds)
        return env

    def stats(self) -> HookStats:
        return HookStats(live=len(self._connections), last_error=self._last_error, **self._counts)

    def close(self) -> None:
        """Stop reading, close every connection, remove the socket and its directory."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        thread = self._thread
        if thread is None:
            self._release()
        elif thread is not threading.current_thread():  # else: from on_message
            thread.join()  # the thread releases everything as it ends

    # --- the server's thread --------------------------------------------------------

    def _serve(self) -> None:
        """Sweep every connection for what it has sent, then sleep. The thread never
        waits in epoll_wait, on purpose: a message to a thread waiting there wakes it,
        and on a busy machine a process that wakes another often loses its CPU for a
        time slice. Measured at a load of 14 on 2 cores, the send of `mp_start` right
        after a fork took 4 to 10 ms (median) with a waiting server, 0.17 ms with a
        sweeping one. Messages carry their own times, so a sweep's delay (at most
        SWEEP_IDLE) changes no figure."""
        waker = select.poll()
        waker.register(self._wake_r, select.POLLIN)
        interval = SWEEP_BUSY
        try:
            while not self._closed:
                if waker.poll(interval * 1000):
                    return  # close()
                with self._reading:
                    if not self._accepting and time.monotonic() >= self._resume_accept_at:
                        self._resume_accepting()
                    events = self._epoll.poll(0)
                    for fd, mask in events:
                        if fd == self._listener.fileno():
                            self._read_each(self._accept())  # its hello, with its pipes
                        else:
                            conn = self._connections.get(fd)
                            if conn is not None:
                                self._read(fd, conn, mask)
                    for pid in list(self._held):
                        self._release_held(pid)
                busy = events or self._held
                interval = SWEEP_BUSY if busy else min(SWEEP_IDLE, interval * 1.5)
        except Exception as exc:  # a bug here must not take the program's output with it
            self._note("callback_errors", f"hook server stopped: {exc!r}")
        finally:
            with self._reading:
                for pid in list(self._held):  # the last lines are read after this
                    self._release_held(pid, force=True)
                self._release()

    def deliver_pending(self, pid: int) -> None:
        """Deliver now, on the caller's thread, what process `pid` has sent and no sweep
        has read yet. A process that says something (its multiprocessing name) and then
        prints has its message in its socket before its line is in its pipe; a sweep may
        come up to SWEEP_IDLE later, and a line handled first took the name the row had
        before. The caller must not hold a lock that on_message takes; on_message itself
        may call it, for another process than the one it is delivering."""
        self._deliver_now(lambda: self._fds_of.get(pid, ()), accept=pid not in self._fds_of)

    def sent(self, pid: int) -> bool:
        """Whether process `pid` has sent something no sweep has read yet: one
        epoll_wait, without the lock (for a process whose every chunk of lines asks)."""
        fds = self._fds_of.get(pid)
        if not fds:
            return False
        try:
            ready = self._epoll.poll(0)
        except (OSError, ValueError):  # closed meanwhile
            return False
        return any(fd in fds for fd, _ in ready)

    def release(self, pid: int) -> None:
        """Deliver now, on the caller's thread, what process `pid` sent that waits for
        its turn and whose turn has come (after a chunk of its lines went out); and what
        others hold behind those lines (a parent's word on its end, a fork child's hello)."""
        if self._held:
            with self._reading:
                self._release_held(pid)
                # Only those whose turn a chunk of `pid`'s lines can bring (each check
                # may ask the pipes what is unread); the sweep looks at every one.
                for other, queue in list(self._held.items()):
                    if queue and _waits_on(queue[0].message, pid):
                        self._release_held(other)

    def deliver_all(self) -> None:
        """Deliver now, on the caller's thread, what every process has sent and no sweep
        has read yet: before an end is told, the ends that came before it and the pipes
        (hellos) of the processes that ended are known. Not from on_message."""
        self._deliver_now(lambda: self._connections, accept=True)

    @property
    def held(self) -> dict[int, deque[_Held]]:
        """The messages waiting their turn, by process (read, never changed, by others)."""
        return self._held

    def _first_held(self, pid: int) -> _Held | None:
        """The first message of `pid` waiting its turn. Asked from other threads without
        the lock, as the queue changes: none, or one delivered meanwhile, is None."""
        queue = self._held.get(pid)
        try:
            return queue[0]  # type: ignore[index]
        except (TypeError, IndexError):
            return None

    def held_head(self, pid: int) -> Unread:
        """What the first message of `pid` waiting its turn left unread, and when."""
        first = self._first_held(pid)
        return None if first is None else first.unread

    def said_before(self, pid: int, t: float) -> bool:
        """Whether process `pid` said something before `t` (time.time()) that waits its
        turn. A child it started after that comes after it: subprocess.run's second child
        was told started before its first child's end, which its parent had said (a reap
        waiting for the lines printed before it), 8 runs in 30."""
        first = self._first_held(pid)
        return first is not None and first.message.t < t

    def held_gone(self) -> list[int]:
        """The processes gone (their connections closed) whose messages wait their turn."""
        return [pid for pid in list(self._held) if pid not in self._fds_of]

    def hellos_held(self) -> set[int]:
        """The processes whose hello waits its turn (a fork child's, behind the lines its
        parent printed before it)."""
        return {
            pid
            for pid, queue in list(self._held.items())
            if queue and isinstance(queue[0].message, Hello)
        }

    def ends_held(self, pid: int) -> list[int]:
        """The children whose ends (a reap, a join that saw it end) `pid` has said and
        are waiting their turn."""
        ended = (_ended_child(held.message) for held in list(self._held.get(pid, ())))
        return [child for child in ended if child is not None]

    def end_waiting(self, pid: int) -> int | None:
        """The child whose end is the first thing `pid` said that waits its turn."""
        first = self._first_held(pid)
        return None if first is None else _ended_child(first.message)

    def release_now(self, pids: Iterable[int]) -> None:
        """Deliver now, in order, what these processes hold, their lines told or not."""
        with self._reading:
            for pid in pids:
                self._release_held(pid, force=True)

    def release_hello_now(self, pid: int) -> None:
        """Deliver now the hello of process `pid` if it waits its turn (the pipes its
        lines are in), then what it said after it whose turn has come: the rest waits for
        the lines written before it, which can be read now."""
        with self._reading:
            queue = self._held.get(pid)
            if queue and isinstance(queue[0].message, Hello):
                held = queue.popleft()
                self._call(held.message, held.passed)
                self._counts["fds_closed"] += held.passed.close()
            self._release_held(pid)

    def deliver_new(self) -> None:
        """Deliver now, on the caller's thread, what the processes that connected since
        the last sweep have sent: their hellos, with the pipes their lines are in. A
        child that printed, then told its parent (a queue), was told after the line its
        parent printed next: its pipes were not known yet. The caller must not hold a
        lock that on_message takes."""
        with self._reading:
            if self._released or not self._accepting:
                return
            with contextlib.suppress(OSError):  # never raised here (see _deliver_now)
                self._accept()
            # Accepted by a delivery (deliver_pending, deliver_all) and not read by it.
            self._read_each(list(self._unheard))

    def _deliver_now(self, fds: Callable[[], Iterable[int]], accept: bool) -> None:
        with self._reading:
            if self._released:
                return
            if accept and self._accepting:
                # A process that has just connected may not have been accepted yet: its
                # messages wait behind the listener until a sweep would take it. Never
                # raised here: the caller may be the thread that reads every pipe.
                with contextlib.suppress(OSError):
                    self._accept()
            self._read_each(list(fds()))

    def _read_each(self, fds: Iterable[int]) -> None:
        """Under _reading: what each connection has sent. One dropped meanwhile (a nested
        delivery read its end) is gone."""
        for fd in fds:
            conn = self._connections.get(fd)
            if conn is not None:
                self._read(fd, conn, 0)

    def _accept(self) -> list[int]:
        """Take on the connections waiting; their fds."""
        accepted: list[int] = []
        for _ in range(PER_ROUND):
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return accepted
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of fds: stop accepting for a while rather than spin on a
                    # listener that stays readable. The hook waits, then gives up.
                    self._pause_accepting(0.1)
                return accepted
            pid, uid, _gid = _CREDS.unpack(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDS.size)
            )
            if uid != self._uid or len(self._connections) >= self._max_connections:
                sock.close()
                self._counts["refused"] += 1
                continue
            sock.setblocking(False)
            self._connections[sock.fileno()] = _Connection(sock, pid)
            self._fds_of.setdefault(pid, set()).add(sock.fileno())
            self._epoll.register(sock.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
            self._counts["connections"] += 1
            accepted.append(sock.fileno())
            self._unheard.add(sock.fileno())
        return accepted

    def _pause_accepting(self, seconds: float) -> None:
        if self._accepting:
            self._epoll.unregister(self._listener.fileno())
            self._accepting = False
        self._resume_accept_at = time.monotonic() + seconds

    def _resume_accepting(self) -> None:
        self._epoll.register(self._listener.fileno(), select.EPOLLIN)
        self._accepting = True

    def _read(self, fd: int, conn: _Connection, mask: int) -> None:
        if fd in self._in_read:
            return  # its messages go in order from the read under way
        self._in_read.add(fd)
        try:
            self._read_messages(fd, conn, mask)
        finally:
            self._in_read.discard(fd)

    def _read_messages(self, fd: int, conn: _Connection, mask: int) -> None:
        self._unheard.discard(fd)
        hung_up = bool(mask & (select.EPOLLHUP | select.EPOLLRDHUP | select.EPOLLERR))
        for _ in range(PER_ROUND):
            try:
                data, ancillary, flags, _ = conn.sock.recvmsg(MAX_MESSAGE_BYTES, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop_connection(fd, conn)
                return
            fds, creds = _unpack_ancillary(ancillary)
            if not data and not fds:
                # The end, or an empty message (junk). The peer may have closed since
                # epoll reported this fd, so ask again.
                if hung_up or _hung_up(fd):
                    self._drop_connection(fd, conn)
                else:
                    self._note("junk", "an empty message")
                return
            self._deliver(data, fds, creds, flags)

    def _release_held(self, pid: int, force: bool = False) -> None:
        """Under _reading: the held messages of `pid` whose turn has come, in order (or all
        of them, `force`)."""
        queue = self._held.get(pid)
        if queue is None:
            return
        while queue:
            message, unread, held_at, passed = queue[0]
            waited_enough = force or time.monotonic() - held_at >= HOLD_MAX_S
            if not waited_enough and not self._told_first(message, unread):
                return
            queue.popleft()
            self._call(message, passed)
            self._counts["fds_closed"] += passed.close()
        if self._held.get(pid) is queue:
            del self._held[pid]
            for other in list(self._held):  # a parent's word on this one's end may go now
                if other != pid:
                    self._release_held(other)

    def _told_first(self, message: Message, unread: Unread) -> bool:
        """Whether the lines written before `message` have been handed out (for a fork
        child's hello, the lines its parent wrote before it, which were still in the
        parent's pipes as the child began), and, for a parent's word on a child's end,
        what that child said and wrote first (a start of its own told after its parent's
        join; a parent's line after its waitpid() told before its child's lines)."""
        child = _ended_child(message)
        if child is not None and (
            child in self._held or child in self._arriving or not self._asked(self._all_told, child)
        ):
            return False
        if isinstance(message, Hello) and self.said_before(message.ppid, message.t):
            return False  # its parent's word before it comes first (a reap of the last)
        if isinstance(message, Hello) and (message.in_start or _forked_by_a_fork_server(message)):
            # Its start() is told first: the lines its parent wrote before it are then
            # out, and the lines this child prints at once (before start() returned) follow
            # the start() they came from.
            return message.pid in self._started
        if unread is None:
            return True
        writer = message.ppid if isinstance(message, Hello) else message.pid
        return self._asked(self._in_turn, writer, unread)

    def _asked(self, callback: Callable[..., bool] | None, *args: object) -> bool:
        if callback is None:
            return True
        try:
            return callback(*args)
        except Exception as exc:
            self._note("callback_errors", f"{callback.__name__} raised {exc!r}")
            return True

    def _deliver(
        self,
        data: bytes,
        fds: tuple[int, ...],
        creds: tuple[int, int, int] | None,
        flags: int,
    ) -> None:
        passed = PassedFds(fds)
        try:
            reason = ""
            message: Message | None = None
            unread: Unread = None
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                reason = "a message cut short (too large, or too many fds)"
            elif creds is None:
                reason = "a message without its sender's credentials"
            else:
                try:
                    message, unread = parse_sent(data)
                except ProtocolError as exc:
                    reason = str(exc)
            if message is not None and creds is not None:
                wanted = len(message.streams) if isinstance(message, Hello) else 0
                if message.pid != creds[0]:
                    reason = f"pid {message.pid} claimed by pid {creds[0]}"
                elif len(fds) != wanted:
                    reason = f"{len(fds)} fds with a {type(message).__name__} ({wanted} expected)"
            if reason or message is None:
                self._note("junk", reason)
                return
            if isinstance(message, Dropped):
                self._counts["lost"] += message.count
            if isinstance(message, Hello):
                # What an earlier process of its pid (before an exec) still holds goes
                # first. A fork child's hello waits for the lines its parent wrote before
                # it (`unread`: counted on the parent's pipes, its until it takes its
                # own), with its pipes: its own lines are read once it is told.
                self._release_held(message.pid, force=True)
                # What its parent said first, still in its socket, is heard before it;
                # its parent's word on its end, in there too, waits for it.
                self._arriving.add(message.pid)
                try:
                    self._read_each(list(self._fds_of.get(message.ppid, ())))
                finally:
                    self._arriving.discard(message.pid)
                if not self._told_first(message, unread):
                    self._held[message.pid] = deque(
                        [_Held(message, unread, time.monotonic(), passed)]
                    )
                    passed = PassedFds(())  # closed once it is delivered
                    return
            else:
                child = _ended_child(message)
                if child is not None:
                    # The child's own word first, its hello with its pipes: it may still
                    # wait unaccepted, and its end went out before its lines were known
                    # (1 run in 100 of the joins test on a loaded machine).
                    self.deliver_pending(child)
                if message.pid in self._held or not self._told_first(message, unread):
                    self._held.setdefault(message.pid, deque()).append(
                        _Held(message, unread, time.monotonic(), PassedFds(()))
                    )
                    return
            self._call(message, passed)
        finally:
            self._counts["fds_closed"] += passed.close()

    def _call(self, message: Message, passed: PassedFds) -> None:
        self._counts["messages"] += 1
        if isinstance(message, MpStart):
            self._started.add(message.child)
        elif isinstance(message, Bye):  # it holds live processes only
            self._started.discard(message.pid)
        try:
            self._on_message(message, passed)
        except Exception as exc:
            self._note("callback_errors", f"on_message raised {exc!r}")
        if isinstance(message, Dropped):
            # Its start() may have been among what it lost: a hello forked in one waits
            # for it no longer (else HOLD_MAX_S, its pipes unread meanwhile).
            for child, queue in list(self._held.items()):
                first = queue[0].message if queue else None
                if isinstance(first, Hello) and first.in_start and first.ppid == message.pid:
                    self._release_held(child, force=True)
        if isinstance(message, MpStart) and message.child in self._held:
            # A child's hello waited for this start() (forked in it, or by a fork server
            # it asked): told now, its pipes are read before its parent's next lines (a
            # line it printed before telling its parent came after the line its parent
            # printed on hearing it, 2 runs in 16 under forkserver).
            self._release_held(message.child)

    def _drop_connection(self, fd: int, conn: _Connection) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)
        del self._connections[fd]
        self._unheard.discard(fd)
        fds = self._fds_of.get(conn.pid, set())
        fds.discard(fd)
        if not fds:
            self._fds_of.pop(conn.pid, None)
        conn.sock.close()
        if not self._accepting:
            self._resume_accepting()
        bye = Bye(pid=conn.pid, t=time.time())
        if conn.pid in self._held:  # after what it said before it went
            self._held[conn.pid].append(_Held(bye, None, time.monotonic(), PassedFds(())))
        else:
            self._call(bye, PassedFds(()))

    def _note(self, count: str, error: str) -> None:
        self._counts[count] += 1
        self._last_error = error

    def _release(self) -> None:
        """Once: a raw fd closed twice could be someone else's by then."""
        with self._close_lock:
            if self._released:
                return
            self._released = True
        for conn in self._connections.values():
            conn.sock.close()
        self._connections.clear()
        self._fds_of.clear()
        for name in ("_listener", "_epoll"):
            resource = getattr(self, name, None)
            if resource is not None:
                resource.close()
        for fd in self._owned:
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.directory, ignore_errors=True)


def _waits_on(message: Message, pid: int) -> bool:
    """Whether `message`'s turn may come with `pid`'s lines: a fork child's hello behind
    its parent's, a parent's word on a child's end behind the child's. (A hello forked
    inside a start(), or by a fork server, waits for that start() instead, which lets it
    go: _call.)"""
    if isinstance(message, Hello):
        return message.ppid == pid
    return _ended_child(message) == pid


def _forked_by_a_fork_server(hello: Hello) -> bool:
    """A child multiprocessing's fork server forked (its command line is the server's)."""
    return hello.via == "fork" and any(FORK_SERVER_MAIN in arg for arg in hello.argv)


def _ended_child(message: Message) -> int | None:
    """The child whose end `message` tells (a reap, a join that saw it end), if it does."""
    if isinstance(message, Reaped) or (isinstance(message, MpJoin) and message.ended):
        return message.child
    return None


def _hung_up(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLRDHUP)
    return any(mask & (select.POLLHUP | select.POLLRDHUP) for _, mask in poller.poll(0))


def _unpack_ancillary(
    ancillary: list[tuple[int, int, bytes]],
) -> tuple[tuple[int, ...], tuple[int, int, int] | None]:
    fds: list[int] = []
    creds = None
    for level, kind, data in ancillary:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_RIGHTS:
            whole = len(data) - len(data) % 4
            fds.extend(
                int.from_bytes(data[i : i + 4], sys.byteorder, signed=True)
                for i in range(0, whole, 4)
            )
        elif kind == socket.SCM_CREDENTIALS and len(data) >= _CREDS.size:
            creds = _CREDS.unpack(data[: _CREDS.size])
    return tuple(fds), creds


def _pipe_id(fd: int) -> str:
    """How the hook recognises one of proclab's pipes (hook/_proclab_hook.py: _pipe_id)."""
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}"


def _compile_hook() -> None:
    """Bytecode for the hook, beside it, if it is missing or stale. Every Python process
    of the program loads the hook, and compiling it from source costs each one tens of
    milliseconds where bytecode is not written (PYTHONDONTWRITEBYTECODE, as here, with an
    editable install). Python versions other than proclab's compile their own, where
    they may. A read-only install keeps the bytecode it was installed with."""
    for name in ("sitecustomize.py", "_proclab_hook.py"):
        source = HOOK_DIR / name
        cached = Path(importlib.util.cache_from_source(str(source)))
        with contextlib.suppress(OSError):
            if cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime:
                continue
            py_compile.compile(str(source), doraise=True)


def _private_directory() -> str:
    """A fresh 0700 directory (mkdtemp's mode) whose socket path fits sun_path."""
    for parent in (None, "/tmp"):
        directory = tempfile.mkdtemp(prefix="proclab-hook-", dir=parent)
        if len(os.path.join(directory, "hook.sock")) <= _UNIX_PATH_MAX:
            return directory
        os.rmdir(directory)
    raise OSError(errno.ENAMETOOLONG, "no temporary directory short enough for a socket path")
