"""The watcher thread owns every fd handed to it, and stopping it races with nothing."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from support import wait_until

from proclab.core.watcher import ChildWatcher


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def _watcher() -> ChildWatcher:
    return ChildWatcher(lambda *_: None, lambda _rec_id: True, lambda _rec_id: None)


def _handed_over(watcher: ChildWatcher, rec_id: int) -> tuple[list[int], list[int]]:
    """Hand the watcher the read ends of three pipes; returns (read ends, write ends)."""
    pairs = [os.pipe() for _ in range(3)]
    reads = [r for r, _ in pairs]
    watcher.watch(rec_id, reads[0], reads[1], (reads[2],))
    return reads, [w for _, w in pairs]


def test_fds_handed_over_after_stop_are_closed_not_leaked():
    watcher = _watcher()
    watcher.start()
    watcher.stop()
    reads, writes = _handed_over(watcher, 1)
    assert all(_closed(fd) for fd in reads)
    for fd in writes:
        os.close(fd)


def test_watchers_stopped_while_their_children_end_leave_no_fd_and_raise_nothing():
    # The thread can end on its own between stop()'s check and its wake-up write (an
    # exit fd woke it and it saw the stop flag): that write once hit a closed fd (EBADF,
    # seen in CI), and could hit another thread's fd that reused the number. The race is
    # rare; this shakes it, and counts the fds either way.
    before = _open_fds()
    for rec_id in range(100):
        watcher = _watcher()
        watcher.start()
        reads, writes = _handed_over(watcher, rec_id)
        for fd in writes:  # the child "ends": every fd becomes readable at once
            os.close(fd)
        watcher.stop()
        assert all(_closed(fd) for fd in reads)
    assert _open_fds() - before == set()  # another test's thread may close its own meanwhile


class _Told:
    """What a watcher told, by the thread it runs on."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str, str, bool]] = []
        self.exited: list[int] = []
        self.closed: list[int] = []
        self.done = threading.Event()

    def watcher(self) -> ChildWatcher:
        def on_exit(rec_id: int) -> bool:
            self.exited.append(rec_id)
            self.done.set()
            return True

        return ChildWatcher(lambda *line: self.lines.append(line), on_exit, self.closed.append)


def test_a_child_that_ends_as_it_is_handed_over_is_heard_whole() -> None:
    """A child is taken on by the thread that hands it over, while the watcher's thread
    may already hear of its first fd: an empty child has often ended by then. The
    watcher once read the first pipe to its end meanwhile, the second was never taken
    on, and the watcher's thread died on it (KeyError, every child after it unreaped;
    benchmarks/spawn.py hung). Here the handover pauses after its first pipe."""
    told = _Told()
    watcher = told.watcher()
    watcher.start()
    pairs = [os.pipe() for _ in range(3)]
    os.write(pairs[0][1], b"out\n")
    os.write(pairs[1][1], b"err\n")
    for _, write in pairs:  # the child has ended before it is handed over
        os.close(write)
    real = os.set_blocking
    calls = []

    def set_blocking(fd: int, blocking: bool) -> None:
        calls.append(fd)
        if len(calls) == 2:  # the first pipe is taken on, the second not yet
            time.sleep(0.1)  # the watcher's thread hears of the first meanwhile
        real(fd, blocking)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "set_blocking", set_blocking)
        watcher.watch(7, pairs[0][0], pairs[1][0], (pairs[2][0],))
    assert told.done.wait(5), "the child's end was never heard"
    watcher.stop()
    assert sorted(told.lines) == [(7, "stderr", "err", False), (7, "stdout", "out", False)]
    assert told.exited == [7]
    assert told.closed == [7]
    assert all(_closed(read) for read, _ in pairs)


def test_children_handed_over_from_another_thread_as_others_end_are_all_heard() -> None:
    """Handovers from one thread while the watcher's thread lets go of ended children's
    fds (whose numbers the next child's then take): every end heard, every fd handed
    over closed. Each fd is known by its pipe's inode: its number may be another's by
    the end (this test's next pipes, or another test's thread in this process)."""
    told = _Told()
    watcher = told.watcher()
    watcher.start()
    handed: list[tuple[int, int]] = []
    for rec_id in range(300):
        pairs = [os.pipe() for _ in range(3)]
        handed += [(read, os.fstat(read).st_ino) for read, _ in pairs]
        watcher.watch(rec_id, pairs[0][0], pairs[1][0], (pairs[2][0],))
        for _, write in pairs:
            os.close(write)
    deadline = time.monotonic() + 10
    while len(told.exited) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    watcher.stop()
    assert sorted(told.exited) == list(range(300))
    still_open = [fd for fd, ino in handed if not _closed(fd) and os.fstat(fd).st_ino == ino]
    assert still_open == []


def test_a_pipe_a_nested_read_closed_is_not_read_again() -> None:
    """Reading a process's pipes at its end, the read of its stdout first read its
    stderr, left inside a line (a progress bar), to its end and let it go; the loop then
    read that closed pipe again, and the watcher's thread died (KeyError)."""
    lines: list[tuple[object, ...]] = []
    watcher = ChildWatcher(
        lambda rec, stream, text, _continues: lines.append((rec, stream, text)),
        lambda _rec: True,
        lambda rec: lines.append(("closed", rec)),
        lambda _rec: None,  # a watched tree's (before_lines)
    )
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    pidfd = os.pidfd_open(pid)
    watcher.watch(1, out_r, err_r, (pidfd,))
    os.write(err_w, b"\r 50%|#####     ")
    watcher._read(watcher._watched[err_r])  # stderr read, and left inside a line
    os.write(out_w, b"last line\n")
    for fd in (out_w, err_w):
        os.close(fd)
    os.waitpid(pid, 0)
    watcher._handle(pidfd, watcher._watched[pidfd])  # its end: raised KeyError
    assert lines == [
        (1, "stderr", "\r 50%|#####     "),
        (1, "stdout", "last line"),
        ("closed", 1),
    ]
    watcher.stop()


def watching_one(told: list[Any], before: Callable[[int], None]) -> tuple[ChildWatcher, int]:
    """A watcher of a watched tree's pipes (with `before_lines`), started on one pipe,
    record 1: the watcher, and the pipe's write end. Lines go to `told` as (record,
    text). `before` is first called once the test writes, after this has returned."""
    watcher = ChildWatcher(
        lambda rec, _stream, text, _continues: told.append((rec, text)),
        lambda _rec: True,
        lambda _rec: None,
        before,
    )
    pipe_r, pipe_w = os.pipe()
    watcher.watch(1, pipe_r, -1, ())
    watcher.start()
    return watcher, pipe_w


def test_a_pipe_s_bytes_are_never_read_ahead_of_its_chunk_in_hand() -> None:
    """A new process's pipe read before another's chunk made the reads it makes itself
    too, and read that other pipe's next bytes before the chunk in hand: 'helloB' and
    ' world'."""
    lines: list[tuple[int, str]] = []
    state: dict[str, object] = {}

    def before(rec: int) -> None:
        if rec == 1 and state.get("chunks") == 1 and "new" not in state:
            os.write(pipe_w, b"B\n")  # written meanwhile
            new_r, new_w = os.pipe()  # a process taken on now, which had printed
            os.write(new_w, b"child line\n")
            state["new"] = (new_r, new_w)
            watcher.watch(2, new_r, -1, ())
        if rec == 1:
            state["chunks"] = int(state.get("chunks", 0)) + 1  # type: ignore[call-overload]

    watcher, pipe_w = watching_one(lines, before)
    try:
        os.write(pipe_w, b"hello")  # left inside a line
        assert wait_until(lambda: state.get("chunks") == 1, 5)
        os.write(pipe_w, b" world\nA\n")
        assert wait_until(lambda: len(lines) >= 4, 5)
    finally:
        watcher.stop()
    assert [text for rec, text in lines if rec == 1] == ["hello world", "A", "B"]
    assert lines[0] == (2, "child line")


def test_a_new_process_s_pipe_read_first_still_has_its_own_word_before_its_lines() -> None:
    """A process taken on while another's chunk was being read has its pipe read first;
    what it had said before printing (its multiprocessing name) was not delivered before
    those lines, and a fork server's talker printed under "python" (CI met it)."""
    told: list[object] = []
    state: dict[str, object] = {}

    def before(rec: int) -> None:
        told.append(("before", rec))
        if rec == 1 and "new" not in state:
            new_r, new_w = os.pipe()  # a process taken on now, which had printed
            os.write(new_w, b"child line\n")
            state["new"] = (new_r, new_w)
            watcher.watch(2, new_r, -1, ())

    watcher, pipe_w = watching_one(told, before)
    try:
        os.write(pipe_w, b"parent line\n")
        assert wait_until(lambda: (2, "child line") in told and (1, "parent line") in told, 5)
    finally:
        watcher.stop()
        os.close(pipe_w)
        os.close(state["new"][1])  # type: ignore[index]
    child = told.index((2, "child line"))
    assert ("before", 2) in told[:child], told
    assert told.index((2, "child line")) < told.index((1, "parent line"))


def test_a_pipe_whose_chunk_is_in_hand_is_not_read_again_under_it() -> None:
    """A chunk cut in two (its process said something between its lines): what is told
    between the parts read that same pipe again, nested, and the lines its process wrote
    later went out before the rest of the chunk (a parent's line after one join before
    the child it joined next; 1 run in 50 of the joins recording test, under load)."""
    told: list[str] = []
    state: dict[str, object] = {"cut": 6}

    def cut(_rec: int, _stream: object) -> int | None:
        return state.pop("cut", None)  # type: ignore[return-value]

    def after(rec: int) -> None:
        if "written" not in state:
            state["written"] = True
            os.write(pipe_w, b"later\n")  # written after the chunk was read
            watcher.drain(rec)  # the end of its process: what its pipes hold, now

    watcher = ChildWatcher(
        lambda _rec, _stream, text, _continues: told.append(text),
        lambda _rec: True,
        lambda _rec: None,
        lambda _rec: None,
        after,
        cut,
    )
    watcher.wait_for([1])  # something waits for lines: cuts are asked for
    pipe_r, pipe_w = os.pipe()
    watcher.watch(1, pipe_r, -1, ())
    try:
        os.write(pipe_w, b"first\nsecond\n")
        watcher._read(watcher._watched[pipe_r])  # type: ignore[arg-type]
        watcher._read(watcher._watched[pipe_r])  # type: ignore[arg-type]
    finally:
        watcher.stop()
        os.close(pipe_w)
    assert told == ["first", "second", "later"]


def test_a_read_begun_before_a_message_and_made_after_it_counts_after_it() -> None:
    """A read stamped before a message and made after it (a preempted reader) took bytes
    written after the message: counted as before it, the message's lines were cut past
    them. Bytes that came after it fewer than the message found unread say it came
    after."""
    watcher = _watcher()
    pipe_r, pipe_w = os.pipe()
    watcher.watch(1, pipe_r, -1, ())
    pipe = watcher._watched[pipe_r]
    try:
        os.write(pipe_w, b"x" * 40)
        pipe.taken = 40  # type: ignore[union-attr]
        # A message at t=5 found 20 bytes unread; the read began at 4 and was done at 6.
        pipe.reads.append((4.0, 6.0, 40))  # type: ignore[union-attr]
        os.read(pipe_r, 40)
        watcher.on_its_thread = lambda: True  # type: ignore[method-assign]  # asked there
        assert watcher.written_before(1, "stdout", 5.0, 20) == 20  # nothing came after it
        os.write(pipe_w, b"y" * 20)  # 20 bytes came after it: it may have come first
        assert watcher.written_before(1, "stdout", 5.0, 20) == 60
    finally:
        watcher.stop()  # closes the read end
        os.close(pipe_w)
