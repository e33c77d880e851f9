"""One thread that reads every child's output pipes and notices every child's exit.

Exits are noticed through a pidfd, which becomes readable the moment the child ends: exact,
and immune to grandchildren that inherited the child's end of multiprocessing's sentinel
pipe (which keeps the sentinel silent until they end too). A forkserver child is reaped by
the fork server, which then sends its status on the sentinel: that one is watched too, so
the status is read the moment it arrives. Nothing here ever calls waitpid(-1).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import termios
import threading
import time
from collections import deque
from collections.abc import Callable, Sized
from dataclasses import dataclass, field

from proclab.core.model import Stream
from proclab.core.output import LineSplitter

READ_CHUNK = 64 * 1024
RETRY_REAP_S = 0.01
FRESH_S = 1.0  # a pipe taken on this long ago and never read is no longer a new one
FRESH_READS = 4  # chunks read from a new pipe before another pipe's chunk
READS_KEPT = 256  # a pipe's recent reads, to tell what a process sent among its lines


@dataclass(slots=True)
class _Pipe:
    rec_id: int
    stream: Stream
    fd: int
    splitter: LineSplitter
    # Shared by a process's pipes: whether any of them was read yet (a new process's
    # bytes were written before what a known one's pipe gives at the same time).
    heard: list[bool] = field(default_factory=lambda: [False])
    taken_at: float = 0.0  # time.monotonic() when the watcher took it on
    # Kept only where lines are told in turn with what else a process says
    # (before_lines): bytes read so far, of those the bytes whose lines were handed out
    # (or wait in the splitter for their line's end), and each recent read as (when it
    # began and when it was done, by time.time(); bytes read once it was done).
    taken: int = 0
    handed: int = 0
    # Read for a sibling pipe's sake, and written after what its process said that waits
    # for that sibling's chunk in hand: handed out once that chunk is (_hand_out_in_turn).
    unhanded: bytes = b""
    reads: deque[tuple[float, float, int]] = field(default_factory=lambda: deque(maxlen=READS_KEPT))


class ChildWatcher:
    """Calls on_line(rec_id, stream, text, continues) for each output line (`continues`:
    a piece of a long line, after the one before it) and on_exit(rec_id) when a
    child has ended; on_exit returns False if the exit status is not there yet (it is then
    asked again shortly). on_closed(rec_id) follows the last line of a child's output."""

    def __init__(
        self,
        on_line: Callable[[int, Stream, str, bool], None],
        on_exit: Callable[[int], bool],
        on_closed: Callable[[int], None],
        before_lines: Callable[[int], bool | None] | None = None,
        after_lines: Callable[[int], None] | None = None,
        cut: Callable[[int, Stream], int | None] | None = None,
    ) -> None:
        self._on_line = on_line
        self._on_exit = on_exit
        self._on_closed = on_closed
        # Called with the record id before the lines of each chunk read from its pipes
        # (False: do not read the pipes of processes taken on since first), and after
        # them; `cut`: where in a pipe's bytes so far the lines written before something
        # its process said end, so that the chunk's lines are handed out in two parts.
        self._before_lines = before_lines
        self._after_lines = after_lines
        self._cut = cut
        # What waits for lines to be handed out first (the hook server's held messages,
        # wait_for): while it is empty, neither is asked, at every chunk of a flood.
        self._waiting: Sized = ()
        # epoll itself, not selectors' wrapper around it: each child's fds are taken on,
        # woken on and let go through it, and the wrapper's own objects and calls (a key
        # and a mapping built per fd and per wake) were pages written after every fork.
        self._epoll = select.epoll()
        # Each fd watched: its pipe, its record id (an exit fd), or None (the wake pipe).
        self._watched: dict[int, _Pipe | int | None] = {}
        self._let_go: set[int] = set()  # fds closed since the last poll
        # Woken only to stop: a child's fds are taken on by the thread that hands them over
        # (epoll_ctl is safe from any thread), not queued for this one. A handover
        # woke the thread once a child, a write and a context switch each, and its pages
        # written after every fork (benchmarks/spawn.py).
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        # Held to take fds on, and by the thread as it ends and closes every fd: a
        # handover is either taken on before, and closed with the rest, or finds the
        # watcher stopped and closes its own fds; no write lands on a closed (or reused)
        # wake fd.
        self._lock = threading.Lock()
        self._take_on(self._wake_r, None)
        # Filled by the handing-over thread before its fds are registered, so that the
        # thread finds them by the time it hears of an fd; emptied by the thread.
        self._exit_fds: dict[int, list[int]] = {}  # rec_id -> its exit fds still watched
        self._pipes_of: dict[int, list[_Pipe]] = {}  # rec_id -> its pipes still open
        self._pending_reaps: set[int] = set()
        # Pipes taken on in the last FRESH_S and not read yet, in the order taken on: a
        # new process's (its hello came after it printed) hold bytes written before the
        # chunk that before_lines was called for, which are read first.
        self._fresh: deque[_Pipe] = deque()
        # Pipes whose last read ended inside a line (a write-through stdout writes a
        # print's text and its newline apart): read again before another pipe's lines
        # go out, so that a line begun first is told first.
        self._unfinished: dict[int, _Pipe] = {}
        self._nested = False  # reading before another pipe's chunk (_read)
        # The process (rec_id) whose other pipes are being read for one of its chunks
        # (_read_others): its pipes keep back what comes after the word that waits.
        self._for_sibling: int | None = None
        self._in_hand: set[int] = set()  # pipes whose chunk is being handed out (_read)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="proclab-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def watch(self, rec_id: int, stdout_fd: int, stderr_fd: int, exit_fds: tuple[int, ...]) -> None:
        """Take ownership of the read ends (-1: none for that stream) and of the exit fds
        (closed here when done): on_exit is asked whenever one of them becomes readable."""
        with self._lock:
            if self._wake_w >= 0:
                self._take_on_child(rec_id, stdout_fd, stderr_fd, exit_fds)
                return
        close_fds(stdout_fd, stderr_fd, *exit_fds)  # stopped: nothing will read them

    def unread(self, rec_id: int) -> bool:
        """Whether bytes wait in the record's pipes, not read yet: asked from another
        thread, while this one may be busy with other pipes. A pipe this thread closes
        meanwhile (its fd maybe someone else's by then) may answer wrongly: the answer
        only says whether to wait a little longer for its lines."""
        return any(_waiting(pipe.fd) > 0 for pipe in list(self._pipes_of.get(rec_id, ())))

    def wait_for(self, waiting: Sized) -> None:
        """What waits for lines to be handed out first: after_lines and cut are asked
        only while it holds something."""
        self._waiting = waiting

    def on_its_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def drain(self, rec_id: int) -> None:
        """Read now what the record's pipes hold: all that a process that has ended wrote
        to them, and no more (a program it started may write on to them for good). On
        this watcher's thread only (an on_exit callback)."""
        for pipe in list(self._pipes_of.get(rec_id, ())):
            left = _waiting(pipe.fd)
            while left > 0:
                before = pipe.taken
                if not self._read(pipe):
                    break
                left -= pipe.taken - before

    def told_through(self, rec_id: int, stream: Stream, sent: float, unread: int) -> bool:
        """Whether the lines of what the record's `stream` pipe got before a message sent
        at `sent` (time.time()) by its writer, with `unread` bytes in the pipe then, have
        been handed out: the bytes read by the last read begun before `sent`, and the
        `unread` after them. Or, that estimate aside, whether the pipe is empty and none
        of it is in hand (whatever was written before the message has been told). Asked
        from another thread, as `unread` is, and as loosely: the answer only orders."""
        pipe = self._pipe(rec_id, stream)
        if pipe is None:  # closed (every line handed out), or none for that stream
            return True
        handed = pipe.handed
        if handed >= self._written_before(pipe, sent, unread):
            return True
        if handed != pipe.taken:  # a chunk in hand: its lines are not out yet
            return False
        return _waiting(pipe.fd) == 0

    def all_told(self, rec_id: int) -> bool:
        """Whether everything the record's pipes got so far has been handed out: nothing
        waits in them, nothing read is in hand. Asked from another thread, as `unread`
        is, and as loosely: the answer only orders."""
        return all(
            pipe.handed == pipe.taken and _waiting(pipe.fd) == 0
            for pipe in list(self._pipes_of.get(rec_id, ()))
        )

    def written_before(self, rec_id: int, stream: Stream, sent: float, unread: int) -> int | None:
        """How many bytes of the record's `stream` pipe were written before a message
        sent at `sent` with `unread` bytes in the pipe then (told_through); None: no pipe."""
        pipe = self._pipe(rec_id, stream)
        return None if pipe is None else self._written_before(pipe, sent, unread)

    def _pipe(self, rec_id: int, stream: Stream) -> _Pipe | None:
        return next((p for p in list(self._pipes_of.get(rec_id, ())) if p.stream == stream), None)

    def _written_before(self, pipe: _Pipe, sent: float, unread: int) -> int:
        """The bytes read before `sent`, and the `unread` after them. A read begun before
        `sent` and done after it may have taken its bytes on either side of it: taken as
        before, unless fewer than `unread` bytes came after it, which could not be (under
        load, a read stamped before a start() and made after it took a line printed after
        the join that followed, which went out before the child's lines). Told on this
        watcher's thread only, where no read is under way: elsewhere, bytes a read has
        taken and not yet counted would read as none."""
        before = 0
        mine = self.on_its_thread()
        for began, done, total in list(pipe.reads):  # oldest first
            if began > sent:
                break
            if done > sent and mine and pipe.taken - total + _waiting(pipe.fd) < unread:
                break  # it came after: what it took was not in the pipe yet at `sent`
            before = total
        return before + unread

    def stop(self) -> None:
        self._stopping = True
        if not self._thread.is_alive():
            if self._thread.ident is None:  # never started: nobody else will close fds
                self._close_all()
            return
        self._wake()
        self._thread.join(timeout=5)

    def _wake(self) -> None:
        with self._lock:
            if self._wake_w >= 0:  # else the thread has ended
                with contextlib.suppress(BlockingIOError):  # already woken
                    os.write(self._wake_w, b"\0")

    def _run(self) -> None:
        try:
            while not self._stopping:
                timeout = RETRY_REAP_S if self._pending_reaps else -1
                ready = self._epoll.poll(timeout, len(self._watched))
                if len(ready) > 1 and self._before_lines is not None:
                    # A process none of whose pipes was read yet first: it was taken on
                    # late (its hello came after it printed), so what it holds came first.
                    ready.sort(key=self._heard)
                # An fd polled may be a child's first taken on (watch): the lock waits
                # for the rest of them, which its handling may read, or let go of.
                with self._lock:
                    self._let_go.clear()
                for fd, _ in ready:
                    # Handling one fd may close another (a child's exit drains and closes
                    # its pipes), whose number a child taken on meanwhile may have again.
                    if fd not in self._let_go:
                        self._handle(fd, self._watched[fd])
                if self._pending_reaps:
                    self._pending_reaps = {r for r in self._pending_reaps if not self._on_exit(r)}
        finally:
            self._close_all()

    def _take_on(self, fd: int, data: _Pipe | int | None) -> None:
        self._watched[fd] = data  # first: the thread may hear of the fd at once
        self._epoll.register(fd, select.EPOLLIN)

    def _let_go_of(self, fd: int) -> None:
        """Stop watching `fd`, and close it."""
        with contextlib.suppress(OSError):  # as selectors' unregister: epoll forgets a closed fd
            self._epoll.unregister(fd)
        del self._watched[fd]
        os.close(fd)
        self._let_go.add(fd)

    def _handle(self, fd: int, data: _Pipe | int | None) -> None:
        if data is None:
            os.read(self._wake_r, 4096)  # a stop: the loop looks at _stopping
        elif isinstance(data, _Pipe):
            self._read(data)
        else:  # an exit fd: data is the record id
            self._forget_exit_fd(data, fd)
            # What the child wrote before it ended is in its pipes now: deliver it before
            # its exit, so a traceback is read by the time the exit is reported.
            for pipe in list(self._pipes_of.get(data, ())):
                while self._read(pipe):
                    pass
            if self._on_exit(data):
                for fd in list(self._exit_fds.get(data, ())):
                    self._forget_exit_fd(data, fd)
            elif not self._exit_fds.get(data):  # nothing left to wake us: ask again soon
                self._pending_reaps.add(data)

    def _forget_exit_fd(self, rec_id: int, fd: int) -> None:
        self._let_go_of(fd)
        fds = self._exit_fds[rec_id]
        fds.remove(fd)
        if not fds:
            del self._exit_fds[rec_id]

    def _take_on_child(
        self, rec_id: int, out_fd: int, err_fd: int, exit_fds: tuple[int, ...]
    ) -> None:
        """Under the lock, on the handing-over thread: the watcher's thread handles none
        of the child's fds until all are taken on."""
        streams: tuple[tuple[Stream, int], ...] = (("stdout", out_fd), ("stderr", err_fd))
        heard = [False]
        pipes = [  # an fd of -1: no pipe for that stream (a watched process's hook)
            _Pipe(rec_id, stream, fd, LineSplitter(), heard) for stream, fd in streams if fd >= 0
        ]
        if pipes:
            self._pipes_of[rec_id] = pipes
        self._exit_fds[rec_id] = list(exit_fds)
        for pipe in pipes:
            os.set_blocking(pipe.fd, False)
            self._take_on(pipe.fd, pipe)
        if self._before_lines is not None:
            now = time.monotonic()
            self._forget_stale(now)
            for pipe in pipes:
                pipe.taken_at = now
            self._fresh.extend(pipes)
        for fd in exit_fds:
            self._take_on(fd, rec_id)

    def _heard(self, item: tuple[int, int]) -> bool:
        data = self._watched.get(item[0])
        return not isinstance(data, _Pipe) or data.heard[0]

    def _read(self, pipe: _Pipe) -> bool:
        """Read once; True if there may be more to read right away. False for a pipe let
        go meanwhile (a nested read met its end; its fd may be another's now)."""
        if self._watched.get(pipe.fd) is not pipe or pipe.fd in self._in_hand:
            # In hand: a chunk of it is being handed out further up this thread's stack,
            # and what it gives next comes after that chunk's rest. Read nested (another
            # pipe's lines read before a chunk), it met its end there, and the rest of its
            # chunk went out after the lines its process wrote later (1 run in 50 of the
            # joins recording test, a parent's line after a join before the child's).
            return False
        pipe.heard[0] = True
        if pipe.unhanded:  # before anything read after it
            self._hand_out_unhanded(pipe)
            if pipe.unhanded:
                return False  # it waits on
        began = time.time() if self._after_lines is not None else 0.0
        try:
            data = os.read(pipe.fd, READ_CHUNK)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if data:
            if self._after_lines is not None:
                pipe.taken += len(data)
                pipe.reads.append((began, time.time(), pipe.taken))
            self._in_hand.add(pipe.fd)
            try:
                self._take(pipe, data)
            finally:
                self._in_hand.discard(pipe.fd)
            if self._after_lines is not None:
                self._handed(pipe)
                self._siblings_kept_back(pipe)
            return True
        self._hand_out(pipe, pipe.splitter.flush())
        self._unfinished.pop(pipe.fd, None)
        self._let_go_of(pipe.fd)
        pipes = self._pipes_of[pipe.rec_id]
        pipes.remove(pipe)
        if not pipes:
            del self._pipes_of[pipe.rec_id]
            self._on_closed(pipe.rec_id)
        return False

    def _take(self, pipe: _Pipe, data: bytes) -> None:
        """A chunk just read from `pipe`: what others wrote first read before it, then its
        lines handed out, in turn with what its process said meanwhile."""
        fresh_first = True
        if self._before_lines is not None:
            # For a new process's pipe read nested, before another's chunk, too: what
            # it said first (its name) comes before its lines (a talker forked by a
            # fork server printed under "python").
            fresh_first = self._before_lines(pipe.rec_id) is not False
        if self._before_lines is not None and not self._nested and fresh_first:
            # The reads of the others once, not from the reads it makes itself: each
            # would read the others again, deeper (a few hundred new pipes ran out of
            # stack), and could read this pipe's next bytes before these.
            self._nested = True
            try:
                self._read_fresh(pipe)
                if self._unfinished:
                    self._finish_others(pipe)
            finally:
                self._nested = False
        self._feed(pipe, data)

    def _feed(self, pipe: _Pipe, data: bytes, helped: bool = True) -> None:
        """`data`'s lines handed out, in turn with what its process said (_hand_out_in_turn,
        which may keep back the rest); a line left unfinished noted as such."""
        if self._after_lines is not None and self._waiting:
            data = self._hand_out_in_turn(pipe, data, helped)
        self._hand_out(pipe, pipe.splitter.feed(data))
        if self._before_lines is not None:
            if pipe.splitter.holding:
                self._unfinished[pipe.fd] = pipe
            else:
                self._unfinished.pop(pipe.fd, None)

    def _handed(self, pipe: _Pipe) -> None:
        """After a chunk of `pipe` went out (but what it keeps back): what its process said
        after writing it may be told now."""
        pipe.handed = pipe.taken - len(pipe.unhanded)
        if self._waiting:
            self._after_lines(pipe.rec_id)  # type: ignore[misc]

    def _siblings_kept_back(self, pipe: _Pipe) -> None:
        """What `pipe`'s other pipes kept back for its chunk, just handed out (and what
        its process said after it told), goes now, in turn: once, each, never reading on
        (two pipes of a process flooding both handed each other reads, deeper each time)."""
        if self._after_lines is None or self._for_sibling is not None:
            return
        for other in list(self._pipes_of.get(pipe.rec_id, ())):
            if other.unhanded and other.fd not in self._in_hand:
                self._hand_out_unhanded(other)

    def _hand_out_unhanded(self, pipe: _Pipe) -> None:
        """What `pipe` kept back (`unhanded`), handed out in turn now (its other pipes
        not read again for it: what still waits after that waits on something else)."""
        data, pipe.unhanded = pipe.unhanded, b""
        self._in_hand.add(pipe.fd)
        try:
            self._feed(pipe, data, helped=False)
        finally:
            self._in_hand.discard(pipe.fd)
        self._handed(pipe)

    def _hand_out_in_turn(self, pipe: _Pipe, data: bytes, helped: bool = True) -> bytes:
        """The lines of `data` written before what its process said meanwhile, handed
        out, each part followed by after_lines (which tells what was said then); the rest
        of `data`. `helped`: what it said may be helped out first by reading its other
        pipes (_read_others)."""
        start = pipe.taken - len(data)
        while self._cut is not None:
            cut = self._cut(pipe.rec_id, pipe.stream)
            if cut is not None and cut <= pipe.handed:
                # All of it was written after what its process said, which still waits:
                # for what it wrote before that on its other pipe (a shell child's stderr,
                # which it shares), or for a child's lines. Those go first, and that word
                # with them: a parent's lines after subprocess.run() came before the
                # child's stderr and its reap (8 runs in 15).
                if self._for_sibling == pipe.rec_id:
                    # Read for a sibling whose chunk in hand may hold what that word
                    # waits for: kept back until the sibling's chunk is handed out.
                    pipe.unhanded += data  # after what it kept back before, if any
                    return b""
                if not helped:
                    break
                self._read_others(pipe)
                self._after_lines(pipe.rec_id)  # type: ignore[misc]
                if self._cut(pipe.rec_id, pipe.stream) == cut:
                    break  # it waits on: for lines not written yet, or not to be read now
                continue
            if cut is None or not pipe.handed < cut < pipe.taken:
                break
            part, data = data[: cut - start], data[cut - start :]
            start = cut
            self._hand_out(pipe, pipe.splitter.feed(part))
            pipe.handed = cut
            self._after_lines(pipe.rec_id)  # type: ignore[misc]
        return data

    def _read_others(self, pipe: _Pipe) -> None:
        """What the other pipes of `pipe`'s process hold, read now, FRESH_READS chunks at
        most each (what was written there before its word ends within them). Only that
        process's pipes keep back what comes after its word (other processes' pipes read
        meanwhile, nested, hand out as ever)."""
        if self._for_sibling is not None:
            return
        self._for_sibling = pipe.rec_id
        try:
            for other in list(self._pipes_of.get(pipe.rec_id, ())):
                if other is not pipe:
                    for _ in range(FRESH_READS):
                        if not self._read(other):
                            break
        finally:
            self._for_sibling = None

    def _hand_out(self, pipe: _Pipe, lines: list[str]) -> None:
        on_line, rec_id, stream = self._on_line, pipe.rec_id, pipe.stream
        continuing = pipe.splitter.continuing
        if not continuing:  # all but lines past MAX_LINE_BYTES: a flood's every line
            for line in lines:
                on_line(rec_id, stream, line, False)
            return
        for i, line in enumerate(lines):
            on_line(rec_id, stream, line, i in continuing)

    def _finish_others(self, pipe: _Pipe) -> None:
        """One more read of each other pipe left inside a line, before `pipe`'s lines."""
        for other in list(self._unfinished.values()):
            if other is not pipe:
                self._read(other)

    def _read_fresh(self, current: _Pipe) -> None:
        """What the pipes of processes taken on lately (after the one a chunk was just
        read from) and never read hold, read now: their process was not known when that
        chunk was written, so what they hold came first. At most FRESH_READS chunks each:
        one that floods must not keep the rest waiting."""
        if not self._fresh:
            return
        with self._lock:
            self._forget_stale(time.monotonic())
            fresh = [p for p in self._fresh if p.taken_at > current.taken_at and not p.heard[0]]
        for pipe in fresh:
            for _ in range(FRESH_READS):
                if not self._read(pipe):
                    break

    def _forget_stale(self, now: float) -> None:
        """Under the lock: the oldest fresh pipes that were read, or are FRESH_S old."""
        fresh = self._fresh
        while fresh and (fresh[0].heard[0] or now - fresh[0].taken_at >= FRESH_S):
            fresh.popleft()

    def _close_all(self) -> None:
        with self._lock:  # no handover meanwhile: it would find fds closed under it
            for fd in self._watched:
                os.close(fd)
            self._watched.clear()
            self._epoll.close()
            os.close(self._wake_w)
            self._wake_w = -1


def _waiting(fd: int) -> int:
    """Bytes waiting in a pipe, not read yet (0 for one closed meanwhile)."""
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def close_fds(*fds: int) -> None:
    """Close each of `fds`; -1 stands for none."""
    for fd in fds:
        if fd >= 0:  # -1: no such pipe
            os.close(fd)
