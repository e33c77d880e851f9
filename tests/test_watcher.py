"""The watcher thread owns every fd handed to it, and stopping it races with nothing."""

from __future__ import annotations

import os
import queue
import select

import pytest

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


def _wake_waiting(watcher: ChildWatcher) -> bool:
    return bool(select.select([watcher._wake_r], [], [], 0)[0])


def test_a_child_handed_over_while_the_watcher_reads_its_wakes_is_woken_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A burst of handovers wakes the watcher once; whatever the interleaving, a handover
    after the watcher has taken the requests wakes it again (else its child's output and
    end would wait for some other fd). The watcher's step is run here, by hand, with a
    second handover made just as it reads its wake pipe."""
    watcher = _watcher()  # not started: its steps are taken here
    pipes: list[tuple[int, int]] = []

    def hand_over(rec_id: int) -> None:
        pipes.append(os.pipe())
        watcher.watch(rec_id, pipes[-1][0], -1, ())

    hand_over(1)
    assert _wake_waiting(watcher)
    real_read = os.read

    def read_with_a_handover(fd: int, size: int) -> bytes:
        if fd == watcher._wake_r and len(pipes) == 1:
            hand_over(2)
        return real_read(fd, size)

    monkeypatch.setattr(os, "read", read_with_a_handover)
    watcher._handle(watcher._wake_r, None)
    monkeypatch.setattr(os, "read", real_read)
    assert watcher._pipes_of.keys() == {1, 2}
    hand_over(3)
    assert _wake_waiting(watcher), "the third child's handover did not wake the watcher"
    watcher.stop()
    for _, write in pipes:
        os.close(write)


def test_a_child_handed_over_just_after_the_watcher_took_the_requests_is_woken_for() -> None:
    """The other side of the same race: a handover that lands after the watcher's last
    look at its requests must leave it a wake to find them by."""
    watcher = _watcher()  # not started: its steps are taken here
    pipes: list[tuple[int, int]] = []

    def hand_over(rec_id: int) -> None:
        pipes.append(os.pipe())
        watcher.watch(rec_id, pipes[-1][0], -1, ())

    requests = watcher._requests

    class LateHandover:
        """The watcher's request queue, with a handover made as the watcher finds it
        empty (the moment after its last look)."""

        def put(self, item: object) -> None:
            requests.put(item)

        def get_nowait(self) -> object:
            try:
                return requests.get_nowait()
            except queue.Empty:
                if len(pipes) == 1:
                    hand_over(2)
                raise

    hand_over(1)
    watcher._requests = LateHandover()  # type: ignore[assignment]
    watcher._handle(watcher._wake_r, None)
    assert watcher._pipes_of.keys() == {1}
    assert _wake_waiting(watcher), "the late handover left the watcher no wake"
    watcher._handle(watcher._wake_r, None)
    assert watcher._pipes_of.keys() == {1, 2}
    watcher._requests = requests
    watcher.stop()
    for _, write in pipes:
        os.close(write)
