"""The watcher thread owns every fd handed to it, and stopping it races with nothing."""

from __future__ import annotations

import os

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
    assert _open_fds() == before
