"""Which row each of a watched tree's ChildWatcher channels belongs to: a channel is a
process's pidfd (its end), its output pipes (its lines), or both, under one number.

The lock rule (core/registry.py): every method here runs under the registry's lock, which
the caller holds; nothing here blocks or calls out.
"""

from __future__ import annotations

import itertools


class Channels:
    """The ChildWatcher's channels of a watched tree, and the rows they belong to."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._exits: dict[int, int] = {}  # channel -> row id, its pidfd
        self._outputs: dict[int, int] = {}  # channel -> row id, its output pipes
        self._reading: set[int] = set()  # channels whose output pipes are still open

    def open(self, rec_id: int, *, exit: bool, output: bool) -> int:
        """A new channel for the row: its process's pidfd, its output pipes, or both."""
        channel = next(self._numbers)
        if exit:
            self._exits[channel] = rec_id
        if output:
            self._outputs[channel] = rec_id
            self._reading.add(channel)
        return channel

    def exit_row(self, channel: int) -> int | None:
        return self._exits.get(channel)

    def output_row(self, channel: int) -> int | None:
        return self._outputs.get(channel)

    def closed(self, channel: int) -> None:
        """Its output pipes have closed: all it wrote has been read."""
        self._reading.discard(channel)

    def reading_channels(self) -> list[int]:
        return list(self._reading)

    def reading_for(self, rec_id: int) -> list[int]:
        """The row's channels whose output pipes are still open."""
        return [channel for channel in self._reading if self._outputs[channel] == rec_id]

    @property
    def reading(self) -> bool:
        """Some output pipes are still open."""
        return bool(self._reading)
