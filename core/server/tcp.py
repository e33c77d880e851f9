"""The lesson's concurrent TCP echo server, owned by the controller.

Three ways to serve, to switch between and compare:
- process: the lesson's model: a server process (a proclab child, spawned: a small
  interpreter) runs the accept loop, starts one handler process per connection (with the
  chosen start method), hands it the connection, closes its own copy, and reaps it;
- pool:    the same server process starts N worker processes up front, as a plain
           pool's script does; they share the listening socket, and each serves many
           connections at once;
- thread:  one thread per connection, in proclab itself, whose own thread accepts.

No accept loop blocks on a client: past max_clients a client gets one line beginning
"busy" and is closed. The server process is a proclab child; handlers and workers are
its own, in its session, and show in the process table as rows it told proclab of
(tagged with their client's address or worker number), sampled and signalled as
proclab's own. Every one of them reports what it does on a pipe the server's thread
reads, which turns that into ServerEvents for the controller's subscribers.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from proclab.core import fd_limit, methods, procfs
from proclab.core.bootstrap import InheritedFd
from proclab.core.defaults import (
    DEFAULT_METHOD,
    SERVER_HOST,
    SERVER_IDLE_S,
    SERVER_LIFETIME_S,
    SERVER_MAX_CLIENTS,
    SERVER_MODE,
    SERVER_MODES,
    SERVER_PORT,
    SERVER_WORKERS,
    StartMethod,
)
from proclab.core.errors import ProclabError
from proclab.core.exits import describe_exit
from proclab.core.model import (
    SERVER_TAG,
    ClientAccepted,
    ClientClosed,
    ClientData,
    ClientTurnedAway,
    Event,
    ProcessRow,
    ProcessSpec,
    ServerEvent,
    ServerListening,
    ServerNote,
    ServerStatus,
    server_event_from,
)
from proclab.core.output import escape_controls
from proclab.core.server.event_lines import DATA_LINE
from proclab.core.server.handler import (
    DATA_EVENTS_PER_S,
    FD_REST_S,
    LOG_DATA_EVENTS_PER_S,
    LOG_LEVELS,
    OPEN,
    POOL_EMPTY,
    PREVIEW_BYTES,
    SERVED,
    STOPPING,
    STOPPING_LINE,
    WORKER_OPEN,
    FdRests,
    Reporter,
    client_address,
    reject,
    serve,
    takes_shared_budget,
)
from proclab.core.server.hosts import host_problem, ip_of, is_loopback, not_ours
from proclab.core.targets import Target
from proclab.core.words import plural

if TYPE_CHECKING:
    from proclab.core.controller import Controller

Mode = Literal["process", "pool", "thread"]
MODES = SERVER_MODES
HANDLERS = "proclab.core.server.handler"
# Ended handler rows kept in the process table: a busy server would otherwise add one per
# connection for ever.
KEEP_ENDED_HANDLERS = 100
LEFT_OUT_EVERY_S = 1.0  # how often the log may say how many data events it left out
# How long the server thread lets the handlers' lines gather after a read of them, when it
# has nothing else to do (process and pool modes: it accepts nothing). Read as they came,
# each short-lived handler's one write woke it: a wake, a select and a read per connection,
# a third of its time at --log all (strace: 750 wakes a second under benchmarks/tcp.py's
# load). The console shows them every 50 ms and the app once a frame anyway.
READ_EVERY_S = 0.02
EVENT_PIPE_BYTES = 1 << 20  # room for what gathers meanwhile (a pipe holds 64 KiB)
READ_BYTES = 64 * 1024  # what the server thread reads of the pipe at a time
# What a pool's server process tells of its workers (_from_pool_server); anything else
# from a pool (its workers' connections) goes straight to the log.
POOL_SERVER_KINDS = frozenset({"figures", "reaped", "handler"})


class ServerError(ProclabError):
    """The server could not do what was asked (bad setting, port in use, ...)."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = SERVER_HOST
    port: int = SERVER_PORT
    mode: Mode = SERVER_MODE
    workers: int = SERVER_WORKERS
    max_clients: int = SERVER_MAX_CLIENTS
    idle_timeout: float = SERVER_IDLE_S
    lifetime: float = SERVER_LIFETIME_S
    method: StartMethod = DEFAULT_METHOD
    public: bool = False  # allow binding an address other programs' clients can reach
    log: str = "all"  # what handlers report: all, connections (no data), errors (and busy)

    def check(self) -> ServerConfig:
        if self.mode not in MODES:
            raise ServerError(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if not 0 <= self.port <= 65535:
            raise ServerError(
                f"port: {self.port} is not a port number (0-65535; 0 picks a free one)"
            )
        for field, value in (("workers", self.workers), ("max clients", self.max_clients)):
            if value < 1:
                raise ServerError(f"{field}: must be at least 1, got {value}")
        for field, seconds in (("idle timeout", self.idle_timeout), ("lifetime", self.lifetime)):
            if not seconds > 0:
                raise ServerError(f"{field}: must be more than 0 seconds, got {seconds}")
        methods.check_method(self.method)
        if self.log not in LOG_LEVELS:
            raise ServerError(f"log: {self.log!r} is not one of {', '.join(LOG_LEVELS)}")
        problem = host_problem(self.host) or not_ours(self.host)
        if problem is not None:
            raise ServerError(problem)
        address = ip_of(self.host)
        if not is_loopback(self.host) and not self.public:
            # A name is not looked up here (a DNS query may take seconds): it may be this
            # machine's, or none at all, which binding says.
            reach = "is" if address is not None or not self.host else "may be"
            raise ServerError(
                f"host: {self.host or repr(self.host)} {reach} reachable from other machines;"
                " the lesson's server has no authentication. Use 127.0.0.1 (to serve other"
                " machines on purpose: proclab serve --public)"
            )
        return self


class TcpServer:
    def __init__(self, controller: Controller) -> None:
        self._controller = controller
        self._lock = threading.RLock()
        self.config = ServerConfig()
        self._listener: socket.socket | None = None
        # Where its handlers run: the folder proclab was in as the server started (its
        # server process's, which its handlers share)
        self._cwd = ""
        self._events_r = self._events_w = -1
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._stopping = threading.Event()
        self._stopped = threading.Event()  # no stop() under way: start() may make its fds
        self._stopped.set()
        self._by_itself = False  # its server process ended, unasked
        # Set by the loop once it accepts no more; set by stop() once every handler has
        # ended, which lets the loop's thread end.
        self._not_accepting = threading.Event()
        self._handlers_ended = threading.Event()
        self._running = False
        self._address = ""
        self._active = 0  # connections being served (process and thread modes)
        self._served = 0
        self._failed = 0  # connections whose handler failed before it served them
        self._rejected = 0
        self._handlers: set[int] = set()  # record ids of handler/worker processes
        self._server_row: int | None = None  # process mode: the server process's row
        self._server_pid: int | None = None  # its pid, once known (read for every event)
        self._by_pid: dict[int, tuple[int, str]] = {}  # process mode: handler pid -> row, client
        self._figures: dict[int, Any] = {}  # handler pid -> the CPU figures it told at its end
        self._disconnected: set[int] = set()  # handler pids that reported their disconnect
        self._counter: Any = None  # pool mode: OPEN and SERVED, shared by the workers
        # pool mode: a worker's pid -> its clients still open, as its events told (in
        # order: a dict), to close in the log if it ends without closing them
        self._pool_clients: dict[Any, dict[Any, None]] = {}
        self._handler_threads: set[threading.Thread] = set()
        self._ended: deque[int] = deque()  # ended handler rows, oldest first
        self._partial = b""
        self._left_out = 0  # data events left out of the log, not yet told
        self._over_rate = 0  # of which past a handler's rate limit
        self._over_log = 0  # of which past the log's own rate limit
        self._left_out_told = 0.0
        self._fd_rests = FdRests()  # the thread server's listener's
        self._data_second = 0  # the second the log's data budget is counted for
        self._data_budget = LOG_DATA_EVENTS_PER_S
        # While a read of the handlers' lines is taken: its thread, and its events so far
        self._batch: tuple[int, list[Event]] | None = None

    # Commands -----------------------------------------------------------------------------

    def start(self, config: ServerConfig) -> str:
        """Bind, listen and start serving; returns "host:port". ServerError if it cannot
        (then nothing runs)."""
        config = config.check()
        with self._lock:
            if self._running:
                raise ServerError(f"already listening on {self._address}: stop it first")
            if not self._stopped.is_set():  # it would close what this start makes
                raise ServerError("the server is still stopping: start it again in a moment")
            # before anything is bound, said or started; kept for the server process
            room = self._room(config) if config.mode in ("pool", "process") else 0
            cwd = _cwd()
            listener = _bind(config)
            self.config = config
            self._cwd = cwd
            self._listener = listener
            self._address = client_address(listener.getsockname())
            self._events_r, self._events_w = os.pipe()
            os.set_blocking(self._events_w, False)  # handlers drop events rather than stall
            os.set_blocking(self._events_r, False)  # read until it is empty
            with contextlib.suppress(OSError):  # past pipe-max-size: 64 KiB, and more drops
                fcntl.fcntl(self._events_w, fcntl.F_SETPIPE_SZ, EVENT_PIPE_BYTES)
            self._wake_r, self._wake_w = os.pipe()
            self._stopping.clear()
            self._by_itself = False  # its server process ended, unasked
            self._not_accepting.clear()
            self._handlers_ended.clear()
            self._thread = None
            self._active = self._served = self._rejected = self._failed = 0
            self._fd_rests = FdRests()
            self._left_out = self._over_rate = self._over_log = 0
            self._handlers.clear()
            self._server_row = self._server_pid = None
            self._counter = None
            self._by_pid.clear()
            self._figures.clear()
            self._disconnected.clear()
            self._pool_clients.clear()
            self._running = True
        # The address bound, not the host as typed: 0x7f000001 is 127.0.0.1 to the kernel.
        if not is_loopback(str(self._listener.getsockname()[0])):
            self._emit(
                "warning", text=f"listening on {self._address}, reachable from other machines"
            )
        try:
            if config.mode in ("pool", "process"):
                self._start_process_server(room)
        except ProclabError as exc:
            self.stop()
            what = "the pool" if config.mode == "pool" else "the server process"
            raise ServerError(f"could not start {what}: {exc}") from None
        self._thread = threading.Thread(target=self._loop, name="proclab-server", daemon=True)
        self._thread.start()
        self._emit(
            "listening",
            text=f"listening on {self._address} ({self._describe()})",
            address=self._address,
            mode=config.mode,
            method=config.method,
            workers=config.workers,
            max_clients=config.max_clients,
            log=config.log,
        )
        return self._address

    def stop(self, reason: str = "server stopped") -> None:
        """Stop accepting, end every handler, close everything. Idempotent."""
        with self._lock:
            if not self._running:
                return
            self._running = False
            self._stopping.set()
            self._stopped.clear()
            listener, self._listener = self._listener, None
        try:
            self._stop(listener, reason)
        finally:
            self._stopped.set()

    def _stop(self, listener: socket.socket | None, reason: str) -> None:
        thread = self._thread
        looping = thread is not None and thread.is_alive()
        self._wake()
        if looping and thread is not threading.current_thread():
            self._not_accepting.wait(timeout=5)
        if listener is not None:
            listener.close()
        grace = self._controller.grace
        handlers = self._live_handlers()
        for rec_id in handlers:
            with contextlib.suppress(ProclabError):
                self._controller.terminate(rec_id, escalate_after=grace)
        server = self._server_row
        if server is not None:
            # The server process passes SIGTERM on to its handlers, SIGKILL after the grace
            # period, and ends once it has reaped each and told how it ended: waiting for
            # it is waiting for them (if it was killed, they died with it).
            handlers = [server] if self._controller_row_live(server) else []
            with contextlib.suppress(ProclabError):
                self._controller.terminate(server, escalate_after=grace + 2)
        self._controller.join(handlers, timeout=grace + 5)
        for handler_thread in list(self._handler_threads):
            handler_thread.join(timeout=2)
        # Only now may the loop's thread end: until then it goes on reading the handlers'
        # events, so none is lost to a full pipe.
        self._handlers_ended.set()
        self._wake()
        if looping and thread is not threading.current_thread():
            thread.join(timeout=5)  # type: ignore[union-attr]
        still_looping = thread is not None and thread.is_alive()
        if not still_looping or thread is threading.current_thread():
            self._drain_events()  # else the loop, late to end, still reads the pipe
        self._end_unreported()
        self._tell_left_out(now=True)
        for fd in (self._events_r, self._events_w, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._events_r = self._events_w = self._wake_r = self._wake_w = -1
        self._emit(
            "stopped",
            text=f"stopped ({reason}); served {self._served_count()}, rejected {self._rejected}"
            + (
                f", {self._failed} cut short (a handler failed or was ended)"
                if self._failed
                else ""
            ),
        )

    def _live_handlers(self) -> list[int]:
        """The rows of handlers and workers not yet ended. The loop's thread adds rows
        while stop() runs (a worker it is told of late), so the set is copied under the
        lock."""
        with self._lock:
            ids = list(self._handlers)
        return [i for i in ids if self._controller_row_live(i)]

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def status(self) -> ServerStatus:
        with self._lock:
            config = self.config
            handlers = len(self._live_handlers())
            if self._counter is not None and self._running:
                # Not through the Array's lock: a worker killed holding it never gives
                # it back, and the app asks for the status every tick.
                active = self._counter.get_obj()[OPEN]
            elif config.mode == "process":
                active = handlers
            else:
                active = self._active
            return ServerStatus(
                running=self._running,
                address=self._address if self._running else "",
                mode=config.mode,
                method=config.method,
                workers=config.workers,
                max_clients=config.max_clients,
                active=max(0, active),
                served=self._served_count(),
                rejected=self._rejected,
                handlers=handlers,
            )

    @property
    def running(self) -> bool:
        return self._running

    # The loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        selector.register(self._events_r, selectors.EVENT_READ, "events")
        listener = self._listener
        accepting = listener is not None and self.config.mode == "thread"
        paced = self.config.mode != "thread"
        if accepting:
            listener.setblocking(False)  # type: ignore[union-attr]
            selector.register(listener, selectors.EVENT_READ, "accept")  # type: ignore[arg-type]
        resting_until = 0.0  # out of file descriptors: the listener rests until then
        try:
            while True:
                if self._stopping.is_set():
                    if accepting:
                        selector.unregister(listener)  # type: ignore[arg-type]
                        accepting = False
                    resting_until = 0.0  # else a rest's end, passed, made select() spin
                    self._not_accepting.set()
                    if self._handlers_ended.is_set():
                        break
                elif resting_until and time.monotonic() >= resting_until:
                    selector.register(listener, selectors.EVENT_READ, "accept")  # type: ignore[arg-type]
                    accepting, resting_until = True, 0.0
                timeout = LEFT_OUT_EVERY_S if self._left_out else None
                if resting_until:
                    rest = max(0.0, resting_until - time.monotonic())
                    timeout = rest if timeout is None else min(timeout, rest)
                read = False
                for key, _ in selector.select(timeout):
                    if key.data == "accept":
                        if not self._accept_all(listener):  # type: ignore[arg-type]
                            # Left registered, a listener with a client waiting is ready
                            # at once: the loop spun a core, 187,360 log lines in 3 s.
                            selector.unregister(listener)  # type: ignore[arg-type]
                            accepting, resting_until = False, time.monotonic() + FD_REST_S
                    elif key.data == "events":
                        self._read_events()
                        read = True
                    else:
                        os.read(self._wake_r, 64)
                self._tell_left_out()
                if read and paced:
                    self._stopping.wait(READ_EVERY_S)  # a stop ends the wait at once
        except Exception as exc:  # the server thread must say why it stopped
            self._emit("error", text=f"the server loop failed: {type(exc).__name__}: {exc}")
        finally:
            self._not_accepting.set()
            selector.close()

    def _accept_all(self, listener: socket.socket) -> bool:
        """Every client waiting; False if there are no file descriptors left for one."""
        while True:
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return True
            except OSError as exc:
                if exc.errno not in fd_limit.OUT_OF_FDS:
                    return True
                say, times = self._fd_rests.met()
                if say:
                    since = f" ({plural(times, 'time')} since last said)" if times else ""
                    self._emit(
                        "error", text=f"out of file descriptors: clients wait in the backlog{since}"
                    )
                return False
            client = client_address(address)
            if self._stopping.is_set():  # accepted just before the stop
                self._refuse_stopping(sock, client)
                continue
            with self._lock:
                full = self._active >= self.config.max_clients
                if not full:
                    self._active += 1
            if full:
                self._reject(sock, client)
            else:
                self._hand_to_thread(sock, client)

    def _reject(self, sock: socket.socket, client: str, why: str = "") -> None:
        """Turned away, and counted: at max_clients, or (`why`) no handler could start."""
        with self._lock:
            self._rejected += 1
        if why:
            line = f"busy: {why}; try again later\n".encode()
            reject(sock, client, self.config.max_clients, self._report_here, line, text=why)
        else:
            reject(sock, client, self.config.max_clients, self._report_here)

    def _refuse_stopping(self, sock: socket.socket, client: str) -> None:
        """Not a rejection: there is no server to come back to."""
        reject(
            sock,
            client,
            self.config.max_clients,
            self._report_here,
            STOPPING_LINE,
            "refused",
            text=STOPPING,
        )

    def _report_here(self, kind: str, client: str, **fields: Any) -> None:
        """What handlers report on the pipe, for what the server itself does."""
        self._emit(kind, client=client, pid=os.getpid(), **fields)

    def _handler_specs(
        self, function: str, args: tuple[object, ...], shown: tuple[object, ...], name: str
    ) -> tuple[ProcessSpec, ProcessSpec]:
        """A handler child's spec, and the one the table, details and recordings show:
        sockets, pipes and shared counters stand there as words. Its name says whom it
        serves, so the table (and ps) tell handlers apart from other children."""
        spec = ProcessSpec(
            Target("module", HANDLERS, function),
            args=args,
            name=name,
            method=self.config.method,
            cwd=self._cwd,  # read once a start, not once a handler (a system call each)
        )
        return spec, replace(spec, args=shown)

    def _hand_to_thread(self, sock: socket.socket, client: str) -> None:
        def run() -> None:
            error = None
            try:
                serve(
                    Reporter(self._events_w, os.getpid(), level=self.config.log),
                    self.config.idle_timeout,
                    self.config.lifetime,
                    first=(sock, client),
                    stop=self._stopping,
                )
            except Exception as exc:  # a handler's failure ends its client, not proclab
                error = f"handler thread failed: {type(exc).__name__}: {exc}"
                sock.close()
            finally:
                self._handler_done(None, client, error)
                self._handler_threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"proclab-tcp {client}", daemon=True)
        self._handler_threads.add(thread)
        thread.start()  # its own events go through the pipe, read after this one
        if self.config.log != "errors":
            self._emit("accepted", client=client, pid=os.getpid(), text=f"thread {thread.name}")

    def _handler_done(self, row: ProcessRow | None, client: str, error: str | None = None) -> None:
        with self._lock:
            self._active = max(0, self._active - 1)
            reported = row is not None and row.pid in self._disconnected
            failed = bool(error) or (row is not None and not reported and row.exitcode != 0)
            # Not served: its handler failed (a thread out of file descriptors) or was
            # ended before it said it had served it; counted as served, 246 of 300 were.
            if failed:
                self._failed += 1
            else:
                self._served += 1
            if row is not None:
                self._handlers.discard(row.id)
                self._ended.append(row.id)
                old = [self._ended.popleft() for _ in range(len(self._ended) - KEEP_ENDED_HANDLERS)]
            else:
                old = []
        if old:
            self._controller.forget(old)
        if row is not None:  # its pid may come again; and a server may serve millions
            self._disconnected.discard(row.pid)
        if error:
            self._emit("error", client=client, text=error)
        elif row is not None and not reported and row.exitcode != 0:
            # Ended without reporting its disconnect (killed, crashed): how long it lasted
            # and what went each way are unknown, and said to be (duration None).
            self._emit(
                "disconnected",
                client=client,
                pid=row.pid,
                reason=f"handler ended ({_how_ended(row)}) before it reported its figures",
            )

    def _start_process_server(self, room: int) -> None:
        """The lesson's accept loop, in a process of its own (handler.process_server),
        which starts the handlers; or, in pool mode, the pool's parent, which starts the
        workers. Spawned, so that it is a small interpreter, not a copy of proclab:
        forking that copy is the handlers' start-up cost. Its children stay in its session,
        so the kernel weighs server and children as one program, as it does the lesson's
        script and a plain pool (handler._as_servers_child)."""
        config = self.config
        assert self._listener is not None
        why = (
            f"starting another would pass proclab's limit of {self._controller.max_procs}"
            " live processes; raise --max-procs"
        )
        pool: tuple[int, Any] = (0, None)
        if config.mode == "pool":
            # Named, so that it passes to a spawned process (one made for fork is not).
            self._counter = methods.context("spawn").Array("q", WORKER_OPEN + config.workers)
            pool = (config.workers, self._counter)
        limits = (
            config.idle_timeout,
            config.lifetime,
            config.max_clients,
            config.method,
            self._controller.grace,
            config.log,
            (room, why),
        )
        shown_pool = (config.workers, "<shared count>") if pool[0] else pool
        spec, shown = self._handler_specs(
            "process_server",
            (self._listener, InheritedFd(self._events_w), *limits, pool),
            (f"<listening socket {self._address}>", "<event pipe>", *limits, shown_pool),
            "tcp server",
        )
        (rec_id,) = self._controller.spawn(
            replace(spec, method="spawn"),
            tag=SERVER_TAG,
            keep_fds=(self._listener.fileno(), self._events_w),
            shown_spec=replace(shown, method="spawn"),
        )
        # Its handlers or workers are its own processes (handlers: up to the room, those
        # whose client has gone and still ending included; and, under forkserver, its
        # fork server): not a fork bomb.
        children = config.workers if pool[0] else room
        self._controller.allow_descendants(rec_id, children + 1)
        self._server_row = rec_id
        self._controller.on_exit(rec_id, self._server_process_ended)

    def _room(self, config: ServerConfig) -> int:
        """The handlers or workers proclab's limit of live processes leaves room for once
        the server process is started (its handlers count against it, as they did when
        proclab started them); ServerError where it leaves too little to serve anyone
        (--max-procs 1 started a server that turned every client away)."""
        controller = self._controller
        limit, running = controller.max_procs, controller.live_count()
        room = max(0, limit - running - 1)
        besides = f" besides the {plural(running, 'process')} running" if running else ""
        if config.mode == "pool" and config.workers > room:
            raise ServerError(
                f"could not start the pool: {plural(config.workers, 'pool worker')} and their"
                f" server process{besides} would pass proclab's limit of {limit} live"
                " processes; raise --max-procs"
            )
        if config.mode == "process" and room < 1:
            raise ServerError(
                f"could not start the server process: it and a handler{besides} would pass"
                f" proclab's limit of {limit} live {'process' if limit == 1 else 'processes'};"
                " raise --max-procs"
            )
        return room

    def _server_process_pid(self) -> int | None:
        """The server process's pid, read from its row until known (the launcher starts
        it), then kept: every event from a handler or worker is checked against it."""
        if self._server_pid is None and self._server_row is not None:
            self._server_pid = self._controller.row(self._server_row).pid
        return self._server_pid

    def _server_process_ended(self, row: ProcessRow) -> None:
        """The server process ended: if nothing stopped it (it was killed), the server is
        down, and is stopped (from another thread: this is the reaper's)."""
        if row.id != self._server_row:
            return  # an earlier server's, ending after a restart
        if self._running and not self._stopping.is_set():
            self._by_itself = True  # what it said last is news
            why = f"its server process {row.pid} ended ({_how_ended(row)})"
            self._emit("error", pid=row.pid, text=why)
            threading.Thread(target=self.stop, args=(why,), daemon=True).start()

    def _stopped_not_by_itself(self) -> bool:
        return self._stopping.is_set() and not self._by_itself

    def _end_unreported(self) -> None:
        """Handlers whose end their server process did not tell (it was killed): they died
        with it (their parent-death signal), and nobody can tell how."""
        for pid in list(self._by_pid):
            # pop, not del: a loop's thread stop() gave up waiting for may reap it too
            known = self._by_pid.pop(pid, None)
            if known is None:
                continue
            rec_id, client = known
            if self._controller_row_live(rec_id):
                note = "its server process ended before it told how this child ended"
                self._controller.end_reported(rec_id, None, None, note)
                if self.config.mode == "process":
                    self._handler_done(self._controller.row(rec_id), client)

    def _from_process_server(self, kind: str, record: dict[str, Any]) -> bool:
        """Process mode: a handler's row, made the first time the server process or the
        handler itself names it, and ended when the server process has reaped it. True
        if the event is used up here, False if it goes to the log."""
        pid = record.get("handler") if kind in ("handler", "reaped") else record.get("pid")
        if not isinstance(pid, int) or pid == self._server_process_pid():
            return False  # the server process's own (busy, an error)
        if self.config.mode == "pool":
            return self._from_pool_server(kind, pid, record)
        client = str(record.get("client") or "")
        known = self._by_pid.get(pid)
        if known is None:
            if kind == "reaped" and not client:
                client = "?"
            name = f"tcp {client}"
            config = self.config
            _, shown = self._handler_specs(
                "handle_connection",
                (),
                (
                    f"<connection from {client}>",
                    client,
                    "<event pipe>",
                    config.idle_timeout,
                    config.lifetime,
                    config.log,
                    config.method,
                    self._shown_budget(handler=True),
                    "<its byte among the open connections>",
                ),
                name,
            )
            rec_id = self._controller.add_reported(
                name, pid, shown, tag=name, parent=self._server_row, started_at=_born(pid, record)
            )
            known = self._by_pid[pid] = (rec_id, client)
            with self._lock:
                self._handlers.add(rec_id)
            if self.config.log != "errors":  # when the handler or its server said it
                self._emit(
                    "accepted", client=client, pid=pid, time=record.get("time") or time.time()
                )
        rec_id, client = known
        if kind == "accepted":  # the handler's own word: told once, as its row was made
            return True
        if kind == "handler":
            self._start_told(rec_id, pid, record)
            return True
        if kind == "figures":
            self._figures[pid] = record.get("figures")
            return True
        if kind == "reaped":
            self._handler_done(self._reaped(pid, record), client)
            return True
        return False

    def _from_pool_server(self, kind: str, pid: int, record: dict[str, Any]) -> bool:
        """Pool mode: a worker's row, made when the pool's server process tells it started
        it, and ended when it has reaped it. A worker's own events (its connections) go
        to the log: only the kinds in POOL_SERVER_KINDS are asked here (a kind added
        below belongs there too)."""
        if kind == "figures":
            self._figures[pid] = record.get("figures")
            return True
        if kind == "reaped" and pid in self._by_pid:
            row = self._reaped(pid, record)
            with self._lock:
                self._handlers.discard(row.id)
            self._worker_ended(row, record.get("left_open"))
            return True
        if kind != "handler":
            return False
        if pid not in self._by_pid:
            config = self.config
            name = f"tcp pool worker {record.get('worker')}"
            _, shown = self._handler_specs(
                "pool_worker",
                (),
                (
                    f"<listening socket {self._address}>",
                    "<event pipe>",
                    config.idle_timeout,
                    config.lifetime,
                    config.max_clients,
                    "<shared count>",
                    config.log,
                    config.method,
                    name,
                    self._shown_budget(handler=False),
                ),
                name,
            )
            rec_id = self._controller.add_reported(
                name, pid, shown, tag=name, parent=self._server_row, started_at=_born(pid, record)
            )
            self._by_pid[pid] = (rec_id, "")
            with self._lock:
                self._handlers.add(rec_id)
        self._start_told(self._by_pid[pid][0], pid, record)
        return True

    def _start_told(self, rec_id: int, pid: int, record: dict[str, Any]) -> None:
        """A "handler" line: how long its server's start() took, and when it began."""
        with contextlib.suppress(ProclabError, TypeError, ValueError):
            latency = float(record.get("latency", 0))
            self._controller.set_start_latency(rec_id, latency, _born(pid, record))

    def _reaped(self, pid: int, record: dict[str, Any]) -> ProcessRow:
        """The row of a child the server process has reaped, ended with what it told."""
        rec_id, _ = self._by_pid.pop(pid)
        own = self._figures.pop(pid, None)  # a forkserver child's, told at its end
        told = record.get("figures") or own
        exitcode = record.get("exitcode")
        self._controller.end_reported(
            rec_id,
            exitcode if isinstance(exitcode, int) else None,
            _figures(told),
            ""
            if isinstance(exitcode, int)
            else str(record.get("why") or "its server process did not say how it ended"),
        )
        return self._controller.row(rec_id)

    def _worker_ended(self, row: ProcessRow, left_open: object) -> None:
        """A pool worker has ended: its connections still open (it was killed before it
        could close them) are closed in the log, as their client saw, and the pool's
        server has counted them closed (they held the limit's places: every later client
        was turned away as busy)."""
        clients = self._pool_clients.pop(row.pid or 0, {})
        if isinstance(left_open, int) and left_open > 0:
            with self._lock:
                self._failed += left_open  # cut short, not served
        why = f"its pool worker ended ({_how_ended(row)}) with it open"
        for client in clients:
            self._emit("disconnected", client=client, pid=row.pid, reason=why)
        if self._running and not self._stopping.is_set():
            held = ""
            if isinstance(left_open, int) and left_open > 0:
                held = f": {plural(left_open, 'connection')} it held closed with it"
            elif left_open == -1:  # the counts' lock was held past SETTLE_WAIT_S
                held = ": the pool's counts could not be settled (their lock was held)"
            self._emit(
                "error", pid=row.pid, text=f"pool worker {row.pid} ended ({_how_ended(row)}){held}"
            )

    # Events from handlers -----------------------------------------------------------------

    def _read_events(self) -> None:
        """What the pipe holds: paced (READ_EVERY_S), one read of 64 KiB a wake would
        take at most 3 MiB a second. Not one read of the pipe's size: a read's buffer is
        allocated whole, and 1 MiB cost 9 µs a read against 0.5 (timeit, 300 bytes
        waiting), which thread mode pays for every event."""
        while True:
            try:
                data = os.read(self._events_r, READ_BYTES)
            except (BlockingIOError, OSError):
                return
            self._take_events(data)
            if len(data) < READ_BYTES:  # the pipe is empty
                return

    def _drain_events(self) -> None:
        if self._events_r < 0:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            while data := os.read(self._events_r, READ_BYTES):
                self._take_events(data)
        self._partial = b""

    def _take_events(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        second = int(time.monotonic())
        if second != self._data_second:
            self._data_second, self._data_budget = second, LOG_DATA_EVENTS_PER_S
        kept = []
        for line in lines:
            if line.startswith(DATA_LINE):
                if self._data_budget <= 0:  # counted without even being parsed
                    self._left_out += 1
                    self._over_log += 1
                    continue
                self._data_budget -= 1
            kept.append(line)
        # Their events go to the subscribers together once the read is taken: one call
        # for the read, not one for each of its events. An event this thread makes
        # meanwhile (a handler's row made in process mode) joins them in its turn.
        events: list[Event] = []
        self._batch = (threading.get_ident(), events)
        try:
            for record in _records(kept):
                self._event_from_handler(record)
        finally:
            self._batch = None
            if events:
                self._controller.emit_events(events)

    def _event_from_handler(self, record: dict[str, Any]) -> None:
        kind = record.pop("kind", "")
        if kind == "left_out":
            self._count_left_out(record.get("count", 0), record.get("over_rate", 0))
            return
        if kind == "disconnected":
            if "left_out" in record:  # a handler's count, told with its connection's end
                self._count_left_out(record.pop("left_out"), record.pop("over_rate", 0))
            if isinstance(pid := record.get("pid"), int):
                if self.config.mode == "pool":
                    self._pool_clients.get(pid, {}).pop(record.get("client"), None)
                else:
                    self._disconnected.add(pid)
        elif kind == "accepted" and self.config.mode == "pool":
            self._pool_clients.setdefault(record.get("pid"), {})[record.get("client")] = None
        if kind == "error" and record.get("text") == POOL_EMPTY and self._stopped_not_by_itself():
            return  # a stop's SIGTERM ended its workers before it heard its own: no news
        if kind == "busy" and self.config.mode != "thread":
            with self._lock:
                self._rejected += 1
        if (
            self._server_row is not None
            and (kind in POOL_SERVER_KINDS or self.config.mode != "pool")
            and self._from_process_server(kind, record)
        ):
            return
        # Not contextlib.suppress, which costs 0.5 µs (timeit): this runs for every line.
        try:
            if "head" in record:  # a chunk's first bytes (Reporter.chunk), shown as its preview
                record["preview"] = preview(record.pop("head"), record.get("nbytes"))
            self._emit_fields(kind, record)
        except (ValueError, TypeError):
            return  # a line no handler writes

    def _count_left_out(self, count: Any, over_rate: Any) -> None:
        # Not contextlib.suppress (as below): at --log all under load, every worker's
        # "disconnected" line carries a count.
        try:
            count, over_rate = int(count), int(over_rate)
        except (TypeError, ValueError):
            return
        self._left_out += count
        self._over_rate += over_rate

    def _tell_left_out(self, now: bool = False) -> None:
        """Say how many data events were left out, at most once a second."""
        if not self._left_out:
            return
        if not now and time.monotonic() - self._left_out_told < LEFT_OUT_EVERY_S:
            return
        count, self._left_out = self._left_out, 0
        # By who left it out: a handler (its own limit, or the log's that handlers share:
        # it does not tell which), or the log as it read them (a lone handler's 200 a
        # second was put on the log's 1,000).
        over_log, self._over_log = min(self._over_log, count), 0
        over_rate, self._over_rate = min(self._over_rate, count - over_log), 0
        self._left_out_told = time.monotonic()
        why = []
        if over_rate:
            why.append(
                f"{over_rate:,} past a handler's limit of {DATA_EVENTS_PER_S:,} a second"
                f" or the {LOG_DATA_EVENTS_PER_S:,} a second handlers share"
            )
        if over_log:
            why.append(f"{over_log:,} past the log's limit of {LOG_DATA_EVENTS_PER_S:,} a second")
        if count > over_rate + over_log:
            why.append(f"{count - over_rate - over_log:,} while it fell behind the handlers")
        self._emit(
            "warning",
            text=f"{count:,} data {'event' if count == 1 else 'events'} left out of the log"
            f" ({'; '.join(why)}); every connection's opening and closing is kept",
        )

    def _emit(self, kind: str, **fields: Any) -> None:
        self._emit_fields(kind, fields)

    def _emit_fields(self, kind: str, fields: dict[str, Any]) -> None:
        """_emit, from a dict of fields it may change and keep (a handler's record)."""
        if "time" not in fields:
            fields["time"] = time.time()
        event = server_event_from(kind, fields)
        batch = self._batch
        if batch is not None and batch[0] == threading.get_ident():
            batch[1].append(event)  # in its place among the read's events
        else:
            self._controller.emit_event(event)

    # Helpers ------------------------------------------------------------------------------

    def _describe(self) -> str:
        config = self.config
        parts: list[str] = [config.mode]
        if config.mode != "thread":
            parts.append(config.method)
        if config.mode == "pool":
            parts.append(plural(config.workers, "worker"))
        parts.append(f"max {plural(config.max_clients, 'client')}")
        return ", ".join(parts)

    def _served_count(self) -> int:
        """A pool's workers count what they serve (their events may not be logged)."""
        if self.config.mode == "pool" and self._counter is not None:
            return int(self._counter.get_obj()[SERVED])  # not through its lock: status()
        return self._served

    def _shown_budget(self, handler: bool) -> str | None:
        """How a row shows the log's data budget its server process shares out."""
        config = self.config
        if not takes_shared_budget(config.log, config.method, handler):
            return None
        return "<the log's shared data budget>"

    def _controller_row_live(self, rec_id: int) -> bool:
        try:
            return self._controller.row(rec_id).state.is_live
        except ProclabError:
            return False


def _born(pid: int, record: dict[str, Any]) -> float | None:
    """When a child the server process started began: as its start() was called (the
    "handler" line's time less how long start() took), else its start in /proc (to the
    clock tick, never later than the truth); None if neither is known. A handler's row
    counted from when proclab heard of it: a connection of 58 ms was shown 1 ms of
    runtime, and CPU/wall at 172 %."""
    now = time.time()
    with contextlib.suppress(KeyError, TypeError, ValueError):
        born = float(record["time"]) - float(record["latency"])
        if math.isfinite(born) and now - 3600 < born <= now:
            return born
    with contextlib.suppress(OSError, ValueError, IndexError):
        return procfs.brief(pid).started
    return None


def _how_ended(row: ProcessRow) -> str:
    """ "killed, exit -9 SIGKILL"; "ended, exit status not known" (not "exit None")."""
    if row.exitcode is None:
        return f"{row.state}, exit status not known"
    return f"{row.state}, exit {describe_exit(row.exitcode)}"


def _records(lines: list[bytes]) -> list[dict[str, Any]]:
    """The JSON object on each line; a line that holds none is left out, and loses only
    itself. One json.loads for a whole read: a pool's log runs at thousands of lines a
    second, and a call per line was a fifth of an event's cost (cProfile of
    benchmarks/tcp_events.py). Line by line only if that fails or finds another count of
    values than of lines."""
    if not lines:
        return []
    try:
        records = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        records = None
    if records is None or len(records) != len(lines):
        records = []
        for line in lines:
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return [record for record in records if isinstance(record, dict)]


def preview(head: Any, nbytes: Any) -> str:
    """A chunk's first bytes as a handler sent them (hex), printable: text where they are
    UTF-8, \\xNN where not (a chunk may end inside a character), "…" if the chunk was
    longer. ValueError if `head` is not that."""
    if not isinstance(head, str):
        raise ValueError("a chunk's head is hex")
    data = bytes.fromhex(head)[:PREVIEW_BYTES]
    shown = escape_controls(data.decode("utf-8", "backslashreplace"), tabs=True)
    more = isinstance(nbytes, int) and nbytes > len(data)
    return shown + ("…" if more else "")


def _figures(told: Any) -> tuple[float, float, int, int, float] | None:
    """A handler's CPU figures as its server told them (user s, system s, voluntary and
    involuntary switches, run-queue wait s), or None if they are not that."""
    try:
        user, system, voluntary, involuntary, run_delay = told
        return float(user), float(system), int(voluntary), int(involuntary), float(run_delay)
    except (TypeError, ValueError):
        return None


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError as exc:  # its folder deleted: the server process could not start there
        raise ServerError(
            f"proclab's folder is gone ({exc.strerror}): cd to one that exists"
        ) from None


def _bind(config: ServerConfig) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # TIME_WAIT from the last run must not block a restart on the same port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.host, config.port))
        sock.listen(socket.SOMAXCONN)  # a burst waits in the backlog for its busy line
    except OSError as exc:
        sock.close()
        where = f"{config.host}:{config.port}"
        if exc.errno == errno.EADDRINUSE:
            raise ServerError(
                f"port {config.port} on {config.host} is already in use: stop what uses it, or choose another port"
            ) from None
        if exc.errno == errno.EACCES:
            raise ServerError(
                f"not allowed to listen on {where} (ports below 1024 need privileges): choose a port above 1024"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
            raise ServerError(f"host: {config.host} is not an address of this machine") from None
        raise ServerError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return sock


def describe_event(event: ServerEvent) -> str:
    """One line for a log: what happened, to which client, through which handler."""
    who = event.client
    handler = f" [{event.pid}]" if event.pid else ""
    match event:
        case ClientAccepted() if event.text.startswith("thread "):
            # A thread server's handler is no process: "handler 41" read as a child's pid,
            # and 41 is proclab's own.
            return f"{who} accepted by a thread in proclab ({event.pid})"
        case ClientAccepted():
            return f"{who} accepted by handler {event.pid}" + (
                f" ({event.text})" if event.text else ""
            )
        case ClientData():
            arrow = "<-" if event.kind == "data_in" else "->"
            return f"{who}{handler} {arrow} {event.nbytes} B  {event.preview}"
        case ClientClosed() if event.duration is None:
            # the server's word for a handler that could not report
            return f"{who}{handler} closed: {event.reason}"
        case ClientClosed():
            # Why first: the line's point, which a narrow pane cut off at its end.
            return (
                f"{who}{handler} closed: {event.reason}, after {event.duration:.2f} s"
                f" (in {event.bytes_in} B, out {event.bytes_out} B)"
            )
        case ClientTurnedAway() if event.kind == "busy":
            why = event.text or f"at the limit of {plural(event.max_clients, 'client')}"
            return f"{who} turned away: busy ({why})"
        case ClientTurnedAway():
            return f"{who} turned away: {event.text}"
        case ServerNote() if event.kind in ("error", "warning"):
            prefix = f"{who}{handler} " if who else ""
            return f"{prefix}{event.kind}: {event.text}"
        case ServerNote() | ServerListening():
            prefix = f"{who}{handler} " if who else ""
            return f"{prefix}{event.text}"
