"""The face of a source of processes: what a view (the app, a test) reads and may ask.

proclab's own `Controller` is one source; a recorded session (`Replay`) is another, and a
watched program will be a third. A view depends on this face only: what a source allows
is in its `capabilities`, never found out by `isinstance` or `getattr`. A command a source
does not allow raises `NotAllowed`, with a sentence a person can read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from proclab.core.errors import ProclabError

if TYPE_CHECKING:
    from proclab.core.model import (
        Event,
        OutputLine,
        ProcessRow,
        ProcessSpec,
        ServerStatus,
        SystemSample,
    )
    from proclab.core.server.tcp import ServerConfig


class NotAllowed(ProclabError):
    """The source does not allow this command (a recording cannot start or signal)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a source allows. A view offers only these (keys, buttons); the source refuses
    the rest with NotAllowed."""

    spawn: bool  # start new processes
    signal: bool  # terminate, kill, pause, resume
    rename: bool
    restart: bool
    join: bool  # wait for a process to end
    clear: bool  # forget ended processes
    server: bool  # start and stop the TCP server (its status may be shown anyway)
    # Quitting ends the source's processes (proclab's own children); False: they are left
    # as they are (an attached program's, or none at all in a recording).
    ends_on_quit: bool


class ServerLike(Protocol):
    """The TCP server as a view sees it: its status, and start/stop where allowed."""

    @property
    def running(self) -> bool: ...
    def status(self) -> ServerStatus: ...
    def start(self, config: ServerConfig) -> str: ...
    def stop(self, reason: str = ...) -> None: ...


class ProcessSource(Protocol):
    """Rows of processes, their output and events, and the commands a view may send.

    Events reach subscribers from the source's own threads; the snapshots (`rows()`,
    `system()`, `output()`) are frozen dataclasses, safe to keep.
    """

    # what it is and allows
    @property
    def capabilities(self) -> Capabilities: ...
    def describe(self) -> str:
        """What the status line says about the source ("new: forkserver, tick 1 s, max
        256"; "at 3.2 s of 8.0 s · recorded …")."""
        ...

    @property
    def server(self) -> ServerLike | None: ...
    @property
    def max_procs(self) -> int: ...
    @property
    def grace(self) -> float: ...
    @property
    def interval(self) -> float: ...
    def set_interval(self, seconds: float) -> None: ...

    # reading
    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...
    def rows(self) -> tuple[ProcessRow, ...]: ...
    def row(self, rec_id: int) -> ProcessRow: ...
    def system(self) -> SystemSample | None: ...
    def output(self, rec_id: int, last: int | None = None) -> tuple[OutputLine, ...]: ...
    def live_count(self) -> int: ...
    def usable_cpus(self) -> tuple[int, ...]: ...
    def strays(self) -> tuple[int, ...]:
        """The pids of processes its children started that outlived them and run on, no
        row's (adopted by proclab): quitting ends them too."""
        ...

    # commands (NotAllowed where the capabilities say no)
    def spawn(self, spec: ProcessSpec, count: int = 1) -> tuple[int, ...]: ...
    def terminate(self, rec_id: int, escalate_after: float | None = None) -> None: ...
    def kill(self, rec_id: int) -> None: ...
    def pause(self, rec_id: int) -> None: ...
    def resume(self, rec_id: int) -> None: ...
    def rename(self, rec_id: int, name: str) -> None: ...
    def restart(self, rec_id: int) -> None: ...
    def clear_exited(self) -> int: ...
    async def join_async(self, ids: Iterable[int], timeout: float | None = None) -> bool: ...
    def shutdown_children(self, grace: float) -> None: ...
    def hurry(self) -> None:
        """Cut a shutdown's grace short, now or to come: SIGKILL without waiting."""
        ...
