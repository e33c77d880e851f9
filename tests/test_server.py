"""The TCP echo server, against real sockets on 127.0.0.1, in every mode."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import time

import psutil
import pytest
from pty_session import PROCLAB, gone
from support import handlers, kill_if_running, listening, wait_until

from proclab.core.errors import SpawnRefused
from proclab.core.model import SERVER_TAG, ProcState, ServerEvent
from proclab.core.server.echo_client import run_load
from proclab.core.server.handler import _fork
from proclab.core.server.tcp import ServerConfig, ServerError, describe_event, preview
from proclab.tui.commands.app import startup_server

MODES = [("process", "fork"), ("process", "forkserver"), ("pool", "fork"), ("thread", "fork")]
IDS = ["process-fork", "process-forkserver", "pool", "thread"]


@pytest.fixture
def events(controller):
    seen: list[ServerEvent] = []
    controller.subscribe(lambda e: seen.append(e) if isinstance(e, ServerEvent) else None)
    return seen


def start(controller, mode="process", method="fork", **options) -> tuple[str, int]:
    config = ServerConfig(port=0, mode=mode, method=method, workers=2, **options)
    host, port = controller.server.start(config).rsplit(":", 1)
    return host, int(port)


def echo(address, chunks: list[bytes], expect: int | None = None, timeout: float = 10) -> bytes:
    sock = socket.create_connection(address, timeout=timeout)
    try:
        for chunk in chunks:
            sock.sendall(chunk)
            time.sleep(0.05)
        sock.shutdown(socket.SHUT_WR)  # half-close: the server still owes the echo
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data
    finally:
        sock.close()


@pytest.mark.parametrize("mode", ["process", "pool"])
def test_quitting_the_app_stops_the_server_as_closing_not_as_an_error(controller, events, mode):
    """The app ends its children when it quits: the server process among them ended
    first, and the log said "error: its server process 1637 ended (exited, exit 0)"."""
    address = start(controller, mode)
    assert echo(address, [b"hi"]) == b"HI"
    controller.shutdown_children(2.0)  # what the app does as it quits
    kinds = [(e.kind, getattr(e, "text", "")) for e in events]
    assert not [k for k in kinds if k[0] == "error"], kinds
    assert any(kind == "stopped" and "proclab is closing" in text for kind, text in kinds), kinds


@pytest.mark.parametrize(("mode", "method"), MODES, ids=IDS)
def test_any_bytes_come_back_upper_cased_exactly(controller, mode, method):
    address = start(controller, mode, method)
    blob = os.urandom(1024 * 1024)
    assert echo(address, [blob]) == blob.upper()
    # "é" is two bytes: split between two sends, it still comes back whole
    text = "café ÉTÉ: naïve straße".encode()
    cut = text.index("é".encode()) + 1
    assert echo(address, [text[:cut], text[cut:]]) == text.upper()


@pytest.mark.parametrize(("mode", "method"), MODES, ids=IDS)
def test_fifty_clients_twenty_messages(controller, mode, method):
    address = start(controller, mode, method, max_clients=64)
    result = asyncio.run(run_load(*address, clients=50, messages=20, size=256))
    assert result.errors == [] and result.busy == 0
    assert result.connections == 50 and result.messages == 1000
    controller.server.stop()
    handlers = [r for r in controller.rows() if r.tag and r.tag.startswith("tcp")]
    assert all(r.state.is_over for r in handlers), "a handler outlived its server"


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_connection_is_logged_accepted_when_it_was(controller, events, method):
    """Under forkserver the first handler's lines came 75 ms before its server's word on
    it, and the log said "accepted" when the handler began: 1 ms before "closed after
    0.07 s". Once told, the times agree with the duration, each handler logged once."""
    address = start(controller, "process", method)
    for count in (1, 2):
        began = time.time()
        assert echo(address, [b"hi"]) == b"HI"
        ended = lambda n=count: sum(e.kind == "disconnected" for e in events) == n  # noqa: E731
        assert wait_until(ended, 20)
    accepted = [e for e in events if e.kind == "accepted"]
    closed = [e for e in events if e.kind == "disconnected"]
    assert len(accepted) == len(closed) == 2, events
    for opened, left in zip(accepted, closed, strict=True):
        assert opened.pid == left.pid
        assert left.time - opened.time >= left.duration - 0.01, (opened, left)
    assert abs(accepted[-1].time - began) < 0.05


def test_a_client_that_closes_ends_its_handler_at_once(controller, events):
    address = start(controller, "process", "fork")
    sock = socket.create_connection(address)
    assert wait_until(lambda: any(e.kind == "accepted" for e in events), 10)
    handler = handlers(controller)[0]
    sock.close()
    closed_at = time.monotonic()
    assert controller.join([handler.id], timeout=1.0), (
        "the handler kept running after its client left"
    )
    assert time.monotonic() - closed_at < 1.0
    ended = controller.row(handler.id)
    assert ended.state is ProcState.EXITED
    assert ended.sample is not None and ended.sample.cpu_time < 0.2, "the handler burned CPU"
    # its last event comes through the server's thread, which may read it after the exit
    assert wait_until(lambda: any(e.kind == "disconnected" for e in events), 5)
    (gone,) = [e for e in events if e.kind == "disconnected"]
    assert gone.reason == "peer closed" and gone.pid == handler.pid


def test_a_closed_client_burns_no_cpu_while_its_handler_would_wait(controller, events):
    """The lesson's handler spun at 100 % on recv() == b''. Hold the server's side open
    (a client that half-closes and never reads) and measure the handler's CPU."""
    address = start(controller, "process", "fork", idle_timeout=3)
    sock = socket.create_connection(address)
    sock.shutdown(socket.SHUT_WR)
    assert wait_until(lambda: any(r.pid for r in handlers(controller)), 10)
    handler = handlers(controller)[0]
    assert controller.join([handler.id], timeout=2)
    assert controller.row(handler.id).sample.cpu_time < 0.2
    sock.close()


def test_past_max_clients_extras_get_busy(controller, events):
    address = start(controller, "process", "fork", max_clients=3)
    held = [socket.create_connection(address) for _ in range(3)]
    assert wait_until(lambda: controller.server.status().handlers == 3, 10)
    extras = [socket.create_connection(address, timeout=5) for _ in range(5)]
    for sock in extras:
        assert sock.recv(100) == b"busy: the server is at its limit of 3 clients; try again later\n"
        assert sock.recv(100) == b"", "a busy client must be closed"
        sock.close()
    assert controller.server.status().handlers == 3
    # the server process tells of each (counted as rejected) through the server's
    # thread, a moment after the client has its line
    assert wait_until(lambda: sum(1 for e in events if e.kind == "busy") == 5, 5)
    busy = next(e for e in events if e.kind == "busy")
    assert describe_event(busy).endswith("turned away: busy (at the limit of 3 clients)")
    assert controller.server.status().rejected == 5
    for sock in held:
        sock.close()
    assert wait_until(lambda: controller.server.status().handlers == 0, 5)
    assert echo(address, [b"after the rush"]) == b"AFTER THE RUSH"


@pytest.mark.parametrize("mode", ["process", "pool", "thread"])
def test_a_client_that_sent_first_still_reads_that_it_was_turned_away(controller, mode):
    """The lesson's client sends its message at once: the server reads what it sent before
    it closes, else the close resets the connection and the client, meeting "connection
    reset", never reads its busy line (`proclab client` counted 3 errors, 0 busy)."""
    address = start(controller, mode, "fork", max_clients=1)
    held = socket.create_connection(address)
    held.sendall(b"hold")
    assert held.recv(100) == b"HOLD"  # its handler, worker or thread has it
    try:
        result = asyncio.run(run_load(*address, clients=4, messages=3, size=64, timeout=10))
    finally:
        held.close()
    assert (result.busy, result.errors) == (4, [])


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_clients_one_after_another_are_never_busy_at_max_clients_of_one(controller, events, method):
    """max clients counts clients: a handler whose client has gone, but which has not yet
    exited (or been reaped), must not turn the next client away as busy."""
    address = start(controller, "process", method, max_clients=1)
    for n in range(40):
        with socket.create_connection(address, timeout=5) as sock:
            got = b""
            with contextlib.suppress(OSError):  # a busy client is closed at once
                sock.sendall(b"client %d" % n)
                sock.shutdown(socket.SHUT_WR)
                while chunk := sock.recv(100):  # until the handler has closed it
                    got += chunk
        busy = [e.text for e in events if e.kind == "busy"]
        assert got == b"CLIENT %d" % n, f"client {n} of 40, one at a time: {got!r} {busy}"


@pytest.mark.parametrize("mode", ["process", "pool"])
def test_a_server_with_no_room_for_a_handler_is_refused_before_it_listens(mode):
    """The server process took proclab's last live process: no handler could ever start
    (the room is the one left at its start), and it listened only to tell each client so
    (`serve --max-procs 1`). A pool whose workers do not fit said so in two lines."""
    from proclab.core.controller import Controller
    from proclab.core.spec import build_spec

    controller = Controller(max_procs=3 if mode == "pool" else 2).start()
    try:
        (sleeper,) = controller.spawn(build_spec("proclab.core.tasks:sleep", "(30,)"))
        assert wait_until(lambda: controller.row(sleeper).pid is not None, 10)
        said: list[ServerEvent] = []
        controller.subscribe(lambda e: said.append(e) if isinstance(e, ServerEvent) else None)
        with pytest.raises(ServerError) as refused:
            start(controller, mode, "fork")
        if mode == "pool":
            assert str(refused.value) == (
                "could not start the pool: 2 pool workers and their server process besides"
                " the 1 process running would pass proclab's limit of 3 live processes;"
                " raise --max-procs"
            )
        else:
            assert str(refused.value) == (
                "could not start the server process: it and a handler besides the 1 process"
                " running would pass proclab's limit of 2 live processes; raise --max-procs"
            )
        assert not controller.server.running and said == []  # nothing said, nothing bound
        assert [r.id for r in controller.rows()] == [sleeper]
        controller.kill(sleeper)
    finally:
        controller.close()


@pytest.mark.parametrize(("mode", "method"), MODES, ids=IDS)
def test_a_limit_of_one_client_is_said_in_the_singular(controller, mode, method):
    address = start(controller, mode, method, max_clients=1)
    with socket.create_connection(address, timeout=5) as held:
        held.sendall(b"x")
        assert held.recv(1) == b"X"
        with socket.create_connection(address, timeout=5) as extra:
            assert (
                extra.recv(100)
                == b"busy: the server is at its limit of 1 client; try again later\n"
            )
    assert controller.server.status().max_clients == 1


def test_pool_never_serves_more_than_max_clients(controller):
    address = start(controller, "pool", "fork", max_clients=3)
    held = [socket.create_connection(address) for _ in range(3)]
    for sock in held:
        sock.sendall(b"x")
        assert sock.recv(1) == b"X"
    extra = socket.create_connection(address, timeout=5)
    assert extra.recv(100).startswith(b"busy")
    extra.close()
    for sock in held:
        sock.close()
    assert wait_until(lambda: controller.server.status().active == 0, 5)
    assert echo(address, [b"again"]) == b"AGAIN"


def test_a_thread_server_s_log_says_a_thread_of_proclab_accepted_the_client(controller, events):
    """It said "accepted by handler 9327": a pid read as a child's, and it was proclab's."""
    address = start(controller, "thread")
    assert echo(address, [b"hi"]) == b"HI"
    assert wait_until(lambda: any(e.kind == "accepted" for e in events), 5)
    (accepted,) = [describe_event(e) for e in events if e.kind == "accepted"]
    assert accepted.endswith(f" accepted by a thread in proclab ({os.getpid()})"), accepted


def test_idle_timeout_and_lifetime(controller, events):
    address = start(controller, "thread", idle_timeout=0.5, lifetime=30)
    idle = socket.create_connection(address)
    assert idle.recv(10) == b""  # closed by the server after 0.5 s of silence
    idle.close()
    controller.server.stop()
    address = start(controller, "thread", idle_timeout=30, lifetime=1.0)
    chatty = socket.create_connection(address, timeout=5)
    began = time.monotonic()
    closed_after = None
    while time.monotonic() - began < 5:  # never idle: only the lifetime can end it
        try:
            chatty.sendall(b"a")
            if chatty.recv(10) == b"":
                closed_after = time.monotonic() - began
                break
        except OSError:
            closed_after = time.monotonic() - began
            break
        time.sleep(0.1)
    chatty.close()
    assert closed_after is not None and 0.9 < closed_after < 3, closed_after
    assert wait_until(lambda: sum(e.kind == "disconnected" for e in events) == 2, 5)
    reasons = [e.reason for e in events if e.kind == "disconnected"]
    assert "idle timeout" in reasons and "lifetime" in reasons


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_connection_s_time_counts_from_its_accept_not_its_handler_s_start(
    controller, events, method
):
    """A spawn handler takes 0.1-0.3 s to start, and counted from there: a client idle
    since connecting was cut off 1.07 s after it connected by a 1 s idle timeout, and the
    log said "closed after 1.00 s" of a connection that had lasted 1.07."""
    address = start(controller, "process", method, idle_timeout=1.0, lifetime=30)
    assert echo(address, [b"up"]) == b"UP"  # the server process accepts at once from here
    began = time.monotonic()
    idle = socket.create_connection(address, timeout=10)
    port = idle.getsockname()[1]
    assert idle.recv(10) == b""  # closed by the server after 1 s of silence
    lasted = time.monotonic() - began
    idle.close()
    # Not past 1.1 s but where the handler started later than that (a loaded machine):
    # then it closes at its start. The server's own clocks below tell the two apart.
    assert 0.95 < lasted < 3, lasted

    def mine(kind: str) -> list[ServerEvent]:
        return [e for e in events if e.kind == kind and e.client.endswith(f":{port}")]

    assert wait_until(lambda: mine("disconnected"), 5)
    (closed,), (accepted,) = mine("disconnected"), mine("accepted")
    assert closed.reason == "idle timeout" and abs(closed.duration - lasted) < 0.25
    # its handler's start is not added to it: counted from the accept
    assert closed.time - accepted.time == pytest.approx(closed.duration, abs=0.05)


@pytest.mark.parametrize(("mode", "method"), MODES[:3], ids=IDS[:3])
def test_a_handler_s_row_counts_its_life_from_its_start_not_from_proclab_hearing_of_it(
    controller, events, mode, method
):
    """A tester's: a handler's row began when proclab heard of it (7-79 ms after its
    accept, once after its connection had closed): a connection of 58 ms was shown 1 ms of
    runtime, and CPU/wall at 172 %. Its row counts from its server's start() call."""
    address = start(controller, mode, method)
    sock = socket.create_connection(address, timeout=10)
    sock.sendall(b"up")
    assert sock.recv(10) == b"UP"
    echoed_at = time.time()  # its handler (or pool worker) was running by then
    time.sleep(0.3)
    sock.close()
    assert wait_until(lambda: [e for e in events if e.kind == "disconnected"], 10)
    (closed,) = [e for e in events if e.kind == "disconnected"]
    rows = {r.pid: r for r in controller.rows()}
    row = rows[closed.pid]
    assert row.started_at is not None and row.started_at <= echoed_at, (row, echoed_at)
    if mode == "process":
        assert wait_until(lambda: controller.row(row.id).ended_at is not None, 10)
        ended = controller.row(row.id)
        assert ended.ended_at - ended.started_at >= closed.duration - 0.005
        sample = ended.sample
        if sample is not None:
            assert sample.cpu_user + sample.cpu_system <= ended.ended_at - ended.started_at


def test_port_in_use_is_a_clear_error_and_restart_works_at_once(controller):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    with pytest.raises(ServerError, match=f"port {port} on 127.0.0.1 is already in use"):
        controller.server.start(ServerConfig(port=port))
    assert not controller.server.running
    blocker.close()
    for mode in ("process", "pool", "thread"):
        controller.server.start(ServerConfig(port=port, mode=mode, method="fork", workers=2))
        assert echo(("127.0.0.1", port), [b"ok"]) == b"OK"
        controller.server.stop()  # and at once again, on the same port


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("999.1.1.1", "host: 999.1.1.1 is not an IP address"),
        ("fe80::zz", "host: fe80::zz is not an IP address"),
        ("203.0.113.9", "host: 203.0.113.9 is not an address of this machine"),
        ("0.0.0.0", "host: 0.0.0.0 is reachable from other machines"),
        ("bogus.invalid", "host: bogus.invalid may be reachable from other machines"),
    ],
)
def test_a_host_is_told_invalid_before_it_is_told_exposed(host, words):
    """A host that is no address is not blamed for being reachable, nor is an address of
    another machine (told "reachable", then, with --public, "not an address of this
    machine"); a name, not looked up, only may be."""
    with pytest.raises(ServerError) as raised:
        ServerConfig(host=host, port=0).check()
    assert str(raised.value).startswith(words)


def test_an_address_of_this_machine_beyond_loopback_is_told_reachable():
    own = [
        a.address
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]
    if not own:
        pytest.skip("this machine has no address but its loopback")
    with pytest.raises(ServerError, match=f"host: {own[0]} is reachable from other machines"):
        ServerConfig(host=own[0], port=0).check()
    # and spelled as IPv6 sees it (a reviewer's: "not an address of this machine")
    mapped = f"::ffff:{own[0]}"
    with pytest.raises(ServerError, match=f"host: {mapped} is reachable from other machines"):
        ServerConfig(host=mapped, port=0).check()
    ServerConfig(host="::ffff:127.0.0.1", port=0).check()  # loopback: nothing to ask


def test_a_link_local_address_of_this_machine_with_its_zone_is_its_own():
    linked = [
        (name, a.address.split("%")[0])
        for name, addresses in psutil.net_if_addrs().items()
        for a in addresses
        if a.family == socket.AF_INET6 and a.address.lower().startswith("fe80:")
    ]
    if not linked:
        pytest.skip("no link-local IPv6 address here")
    name, address = linked[0]
    host = f"{address}%{name}"
    with pytest.raises(ServerError, match="reachable from other machines"):
        ServerConfig(host=host, port=0).check()


def test_binding_beyond_loopback_needs_asking(controller, events):
    with pytest.raises(ServerError, match="proclab serve --public"):
        controller.server.start(ServerConfig(host="0.0.0.0", port=0))
    controller.server.start(ServerConfig(host="0.0.0.0", port=0, public=True, mode="thread"))
    assert any(e.kind == "warning" and "reachable from other machines" in e.text for e in events)


def test_a_loopback_address_spelled_otherwise_is_not_told_reachable(controller, events):
    """--host 0x7f000001 --public binds 127.0.0.1, and was told "reachable from other
    machines": the address bound is what counts, not the host as typed."""
    controller.server.start(ServerConfig(host="0x7f000001", port=0, public=True, mode="thread"))
    assert controller.server.status().address.startswith("127.0.0.1:")
    assert not any("reachable from other machines" in getattr(e, "text", "") for e in events)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"mode": "fibers"}, "mode"),
        ({"port": 70000}, "port"),
        ({"workers": 0}, "workers"),
        ({"max_clients": 0}, "max clients"),
        ({"idle_timeout": 0}, "idle timeout"),
        ({"host": "203.0.113.9", "public": True}, "not an address of this machine"),
    ],
)
def test_bad_settings_start_nothing(controller, options, words):
    with pytest.raises(ServerError, match=words):
        controller.server.start(ServerConfig(**options))
    assert not controller.server.running and controller.rows() == ()


@pytest.mark.parametrize("mode", ["process", "pool"])
def test_events_tell_the_story_in_order(controller, events, mode):
    """A connection's events reach the log in the order they happened, whether its
    worker told them all (pool) or proclab made one as it first heard of the handler
    (process mode's "accepted")."""
    address = start(controller, mode, "fork")
    assert echo(address, [b"hi"]) == b"HI"
    assert wait_until(lambda: any(e.kind == "disconnected" for e in events), 5)
    kinds = [e.kind for e in events]
    assert kinds[:1] == ["listening"]
    story = [k for k in kinds if k in ("accepted", "data_in", "data_out", "disconnected")]
    assert story == ["accepted", "data_in", "data_out", "disconnected"]
    data_in = next(e for e in events if e.kind == "data_in")
    assert data_in.nbytes == 2 and data_in.preview == "hi"
    if mode == "pool":
        return  # a worker's row is named for its number, not for a client
    handler = handlers(controller)[0]
    assert handler.tag == f"tcp {data_in.client}"
    assert all(
        e.pid == handler.pid for e in events if e.kind in ("accepted", "data_in", "disconnected")
    )


@pytest.mark.parametrize("mode", ["process", "pool", "thread"])
def test_a_chunk_s_preview_is_its_first_bytes_made_safe(controller, events, mode):
    """What the log shows of a chunk in and out: its first 32 bytes, those that are not
    UTF-8 as \\xNN, controls written out, and "…" when the chunk was longer."""
    address = start(controller, mode, "fork")
    chunk = b"\xff\x1b[2J" + b"a" * 40
    assert echo(address, [chunk]) == chunk.upper()
    assert wait_until(lambda: any(e.kind == "disconnected" for e in events), 5)
    shown = {e.kind: e.preview for e in events if e.kind in ("data_in", "data_out")}
    assert shown == {
        "data_in": "\\xff\\x1b[2J" + "a" * 27 + "…",
        "data_out": "\\xff\\x1b[2J" + "A" * 27 + "…",
    }


def test_a_preview_is_made_only_of_what_a_handler_can_send():
    """A handler sends a chunk's first bytes in hex (handler.Reporter.chunk); anything
    else in its place is refused (ValueError: the line is left out, as any bad line)."""
    assert preview("6869", 2) == "hi"
    assert preview("6869", 3) == "hi…"
    assert preview("0a09", 2) == "\\n\\t"
    assert preview("61" * 40, 40) == "a" * 32 + "…"  # never more than 32 bytes shown
    for bad in ("zz", "686", 5, None, ["68"]):
        with pytest.raises(ValueError):
            preview(bad, 2)


def test_a_long_running_server_keeps_nothing_per_connection_it_has_ended(controller):
    """What the server remembers of a handler (that its pid told its disconnect) goes with
    it: a server that runs for millions of connections must not grow with them, and a
    pid the kernel hands out again must not be taken for the old handler."""
    address = start(controller, "process", "fork")
    for n in range(5):
        assert echo(address, [b"x%d" % n]) == b"X%d" % n
    assert wait_until(lambda: controller.server.status().served == 5, 10)
    assert controller.server._disconnected == set()


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_proclab_serve_with_netcat_end_to_end(method):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [PROCLAB, "serve", "--port", str(port), "--method", method],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: listening(port), 20)
        nc = subprocess.run(
            ["nc", "-q", "1", "127.0.0.1", str(port)],
            input=b"hello from netcat\n",
            capture_output=True,
            timeout=20,
        )
        assert nc.stdout == b"HELLO FROM NETCAT\n"
        held = socket.create_connection(("127.0.0.1", port))  # an open connection at SIGTERM
        assert wait_until(lambda: len(_descendants(server.pid)) >= 1, 10)
        family = _descendants(server.pid)
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=20)
        held.close()
    finally:
        kill_if_running(server)
    assert server.returncode == 0, err
    assert "listening on 127.0.0.1" in out
    assert "<- 18 B  hello from netcat\\n" in out
    assert "closed" in out and "stopped" in out
    # Nothing left over to name: the server process's fork server ends with it.
    assert "left their process group or outlived their parent" not in out + err
    # multiprocessing's own helpers notice their parent's end a moment later
    assert gone(family, timeout=5) == []


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_proclab_serve_ends_with_an_error_when_its_server_process_dies() -> None:
    """It logged the server process's death and "stopped", then stayed running, the port
    closed, and a Ctrl+C later exited 0."""
    port = _free_port()
    server = subprocess.Popen(
        [PROCLAB, "serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert wait_until(lambda: listening(port), 20)

        def process_server() -> list[psutil.Process]:
            found = []
            for p in _descendants(server.pid):
                with contextlib.suppress(psutil.Error):
                    if p.cmdline()[:1] == ["tcp server"] or "tcp server" in p.name():
                        found.append(p)
            return found

        assert wait_until(process_server, 10)
        process_server()[0].kill()
        out, _err = server.communicate(timeout=20)
    finally:
        kill_if_running(server)
    assert server.returncode == 1
    assert b"error: its server process" in out and b"stopped" in out


def test_proclab_serve_loses_no_line_when_stopped_while_its_reader_has_stalled() -> None:
    """Ctrl+C while nobody read the log (a paused terminal, a pipe not read yet): the
    write waiting on the full pipe was interrupted, and the buffered writer lost the rest
    of it without a word (14 of 20 connections' "accepted" lines were left)."""
    port = _free_port()
    server = subprocess.Popen(
        [PROCLAB, "serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert wait_until(lambda: listening(port), 20)
        done = asyncio.run(
            run_load("127.0.0.1", port, clients=10, connections=20, messages=3, size=300_000)
        )
        assert done.connections == 20, done
        time.sleep(0.5)  # the log is behind, its write waits on the full pipe
        server.send_signal(signal.SIGINT)
        time.sleep(1.0)
        out, _ = server.communicate(timeout=30)
    finally:
        kill_if_running(server)
    lines = out.decode(errors="replace").splitlines()
    served = int(re.search(r"served (\d+)", lines[-1])[1])  # type: ignore[index]
    assert served >= 20  # and the probe that saw it listen
    assert sum(" accepted by handler " in line for line in lines) == served, out[-2000:]
    assert sum(re.search(r" closed: .*, after ", line) is not None for line in lines) == served


def test_serve_writes_many_log_lines_in_one_write(monkeypatch):
    """`proclab serve`'s log under load: lines gather and go out in one write (and one
    flush) per FLUSH_EVERY_S, not one each; in order, none lost."""
    import io

    from proclab.tui.commands.serve import Console

    class Counting(io.StringIO):
        writes = 0

        def write(self, text: str) -> int:
            self.writes += 1
            return super().write(text)

    out = Counting()
    monkeypatch.setattr("sys.stdout", out)
    console = Console()
    for n in range(500):
        console.add(f"line {n}")
    console.flush()
    console.flush()  # nothing new: nothing written
    assert out.writes == 1
    assert out.getvalue().splitlines() == [f"line {n}" for n in range(500)]


def test_a_connection_wakes_one_of_the_pool_s_workers_not_all() -> None:
    """Workers wait on the one listening socket they share; a connection wakes one of
    them (as a blocking accept() does), not every worker to find nothing to accept."""
    import select
    import threading

    from proclab.core.server.handler import register_exclusive

    release_r, release_w = os.pipe()  # wakes those the connection did not, at the end
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        selectors_ = [select.epoll() for _ in range(4)]
        for selector in selectors_:
            register_exclusive(selector, listener.fileno())
            selector.register(release_r, select.EPOLLIN)
        woken: list[int] = []

        def wait(n: int) -> None:
            ready = selectors_[n].poll(60.0)
            if any(fd == listener.fileno() for fd, _ in ready):
                woken.append(n)

        def waiting(thread: threading.Thread) -> bool:
            # in epoll_wait, by the names kernels give its wait
            with open(f"/proc/self/task/{thread.native_id}/wchan") as f:
                return f.read() in ("do_epoll_wait", "ep_poll")

        waiters = [threading.Thread(target=wait, args=(n,)) for n in range(4)]
        for waiter in waiters:
            waiter.start()
        try:
            # every worker waiting (one still on its way in would find the connection there)
            assert wait_until(lambda: all(waiting(w) for w in waiters), 10)
            with socket.create_connection(listener.getsockname()):
                assert wait_until(lambda: woken, 10)
                time.sleep(0.2)  # time for a wrongly woken other to say so
        finally:
            os.write(release_w, b"x")
            for waiter in waiters:
                waiter.join()
            for selector in selectors_:
                selector.close()
            os.close(release_r)
            os.close(release_w)
    assert len(woken) == 1, woken


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_the_lessons_tree_server_process_then_its_handlers(controller, events, method):
    """Process mode runs the lesson's loop in a server process of its own, which starts
    the handlers: proclab -> tcp server -> handler, as `python server.py` would. A handler
    is a row proclab samples and can signal; its exit code and CPU figures are what its
    server (or, under forkserver, the handler itself) told."""
    address = start(controller, "process", method)
    (server,) = [r for r in controller.rows() if r.tag == "tcp server"]
    assert controller.row(server.id).spec.method == "spawn"  # a small interpreter
    held = socket.create_connection(address, timeout=10)
    held.sendall(b"x")
    assert held.recv(1) == b"X"
    # its row comes with the server process's word, a moment after the echo
    assert wait_until(lambda: handlers(controller), 5)
    (handler,) = handlers(controller)
    assert handler.parent == server.id and handler.pid is not None
    server_pid = controller.row(server.id).pid
    assert server_pid in {p.pid for p in psutil.Process(handler.pid).parents()}
    assert psutil.Process(handler.pid).parent().pid != os.getpid()
    # As the lesson's handlers stay in their script's session, a handler stays in its
    # server's (one scheduling group), leading a process group of its own.
    assert os.getsid(handler.pid) == os.getsid(server_pid) == server_pid
    assert os.getpgid(handler.pid) == handler.pid
    controller.terminate(handler.id)  # proclab signals it, as one of its own
    assert controller.join([handler.id], timeout=10)
    ended = controller.row(handler.id)
    assert ended.state is ProcState.EXITED and ended.exitcode == 0  # it ended its client
    assert ended.sample is not None and ended.sample.cpu_time > 0
    assert wait_until(lambda: any(e.kind == "disconnected" for e in events), 5)
    (gone,) = [e for e in events if e.kind == "disconnected"]
    assert gone.reason == "ended by SIGTERM" and gone.pid == handler.pid
    held.close()


def test_restarting_a_handler_or_the_server_says_why_it_cannot(controller, events):
    """`R` on the row of a handler whose client was still connected said it "handled a
    TCP connection that is gone", and said so of the server process too."""
    address = start(controller, "process", "fork")
    (server,) = [r for r in controller.rows() if r.tag == SERVER_TAG]
    with socket.create_connection(address, timeout=10) as held:
        held.sendall(b"x")
        assert held.recv(1) == b"X"
        assert wait_until(lambda: handlers(controller), 5)
        (handler,) = handlers(controller)
        with pytest.raises(SpawnRefused) as refused:
            controller.restart(handler.id)
        assert "started by the TCP server, for its clients" in str(refused.value)
        assert "gone" not in str(refused.value)
        with pytest.raises(SpawnRefused, match="the TCP server's own process"):
            controller.restart(server.id)
    assert controller.row(server.id).state.is_live  # neither was touched


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_pool_is_its_server_process_and_the_workers_it_started(controller, events, method):
    """As a plain pre-forked pool's script is, the pool's server process is the workers'
    parent, in whose session they stay (one program to the kernel's scheduler), each
    leading its group. A worker is a row proclab samples and signals; one that ends
    while the server runs is said to have."""
    address = start(controller, "pool", method)
    (server,) = [r for r in controller.rows() if r.tag == "tcp server"]
    assert echo(address, [b"pool"]) == b"POOL"
    server_pid = controller.row(server.id).pid
    assert wait_until(lambda: len(workers(controller)) == 2, 10)
    rows = workers(controller)
    assert sorted(r.name for r in rows) == ["tcp pool worker 1", "tcp pool worker 2"]
    for row in rows:
        assert row.parent == server.id and row.pid is not None
        assert psutil.Process(row.pid).parent().pid in (server_pid, *_fork_servers(server_pid))
        assert os.getsid(row.pid) == server_pid
        assert wait_until(lambda row=row: os.getpgid(row.pid) == row.pid, 5)
    controller.terminate(rows[0].id)
    assert controller.join([rows[0].id], timeout=10)
    ended = controller.row(rows[0].id)
    assert ended.state is ProcState.EXITED and ended.exitcode == 0
    assert wait_until(lambda: any(e.kind == "error" and "pool worker" in e.text for e in events), 5)
    assert echo(address, [b"still"]) == b"STILL"  # the other worker serves on
    assert wait_until(lambda: controller.server.status().served == 2, 5)
    controller.server.stop()
    assert controller.row(rows[1].id).state.is_over


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_a_pool_worker_killed_with_a_connection_open_gives_its_place_back(
    controller, events, method
):
    """A worker killed with a connection open never closed it: its place among
    --max-clients stayed taken, and every later client was turned away as busy (with
    nobody connected); the log never closed the connection, and the counts missed it. It
    is counted cut short, not served."""
    address = start(controller, "pool", method, max_clients=1)
    held = socket.create_connection(address, timeout=10)
    held.sendall(b"x")
    assert held.recv(1) == b"X"
    assert wait_until(lambda: [e for e in events if e.kind == "accepted"], 5)
    (accepted,) = [e for e in events if e.kind == "accepted"]
    # its row comes from its server's word, which may be read after the connection's
    assert wait_until(lambda: [r for r in workers(controller) if r.pid == accepted.pid], 10)
    (worker,) = [r for r in workers(controller) if r.pid == accepted.pid]
    controller.kill(worker.id)
    assert controller.join([worker.id], timeout=10)
    assert held.recv(1) == b""  # the client sees its connection closed
    held.close()

    def closed_with_it() -> list[ServerEvent]:
        return [e for e in events if e.kind == "disconnected" and e.pid == worker.pid]

    assert wait_until(closed_with_it, 5)
    assert closed_with_it()[0].reason == (
        "its pool worker ended (killed, exit -9 SIGKILL) with it open"
    )
    assert wait_until(lambda: controller.server.status().active == 0, 5)
    assert echo(address, [b"again"]) == b"AGAIN"  # not "busy": the other worker serves
    assert wait_until(lambda: controller.server.status().served == 1, 5)  # "again"
    said = [e.text for e in events if e.kind == "error"]
    assert (
        f"pool worker {worker.pid} ended (killed, exit -9 SIGKILL): 1 connection it held closed with it"
        in said
    )
    controller.server.stop()
    (stopped,) = [e for e in events if e.kind == "stopped"]
    assert "served 1, rejected 0, 1 cut short" in stopped.text, stopped.text


def test_a_pool_whose_last_worker_is_killed_says_so_and_stops(controller, events):
    """Its server process ended with nothing said but 'its server process ended (exited,
    exit 0)'; and a stop whose workers ended before the server process heard it must not
    say so."""
    from proclab.core.server.handler import POOL_EMPTY

    config = ServerConfig(port=0, mode="pool", method="fork", workers=1)
    controller.server.start(config)
    assert wait_until(lambda: len(workers(controller)) == 1, 10)
    (worker,) = workers(controller)
    controller.kill(worker.id)
    assert wait_until(lambda: any(e.kind == "stopped" for e in events), 20)  # stop() is done
    said = [e.text for e in events if e.kind == "error"]
    assert POOL_EMPTY in said, said
    events.clear()
    controller.server.start(config)  # and a plain stop says nothing of it
    assert wait_until(lambda: len([w for w in workers(controller) if w.state.is_live]) == 1, 10)
    controller.server.stop()
    assert [e.text for e in events if e.kind == "error"] == []


def test_stop_survives_a_worker_told_of_while_it_ends_the_others(controller, monkeypatch):
    """The loop's thread reads events (a worker's row made) until stop() has ended every
    handler; stop() must not trip over the set it is reading growing under it."""
    start(controller, "pool", "fork")
    assert wait_until(lambda: len(workers(controller)) == 2, 10)
    server = controller.server
    live = server._controller_row_live

    def row_live_while_a_worker_is_added(rec_id: int) -> bool:
        server._handlers.add(max(server._handlers) + 1)  # as _from_pool_server does
        return live(rec_id)

    monkeypatch.setattr(server, "_controller_row_live", row_live_while_a_worker_is_added)
    server.stop()
    assert not server.running
    assert all(r.state.is_over for r in workers(controller))


def _returns() -> None:
    pass


def _exits_3() -> None:
    raise SystemExit(3)


def _exits_with_words() -> None:
    raise SystemExit("a handler's last words")


def _raises() -> None:
    raise RuntimeError("boom in a handler")


@pytest.mark.parametrize(
    ("target", "code"), [(_returns, 0), (_exits_3, 3), (_exits_with_words, 1), (_raises, 1)]
)
def test_a_handler_the_server_forks_itself_ends_as_a_multiprocessing_child(target, code, capfd):
    """A fork handler is started with os.fork, not multiprocessing.Process (cheaper by
    half): its exit code, and the traceback of what it raised, are what multiprocessing's
    fork child would give."""
    forked = _fork(target, ())
    _, status = os.waitpid(forked.pid, 0)
    process = multiprocessing.get_context("fork").Process(target=target)
    process.start()
    process.join()
    assert os.waitstatus_to_exitcode(status) == process.exitcode == code
    err = capfd.readouterr().err
    assert err.count("RuntimeError: boom in a handler") == (2 if target is _raises else 0)
    assert err.count("a handler's last words") == (2 if target is _exits_with_words else 0)


def test_a_forked_handler_whose_end_cannot_be_watched_is_not_left_serving(monkeypatch):
    """Forked, a handler has no sentinel: if its pidfd cannot be had (out of fds), it
    is killed and reaped at once, and the start fails (its client is told "busy"),
    rather than left serving unwatched and never reaped."""
    import select
    import time as time_

    from proclab.core.server.handler import Reporter, _start_child

    def no_pidfd(pid: int) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    live: dict = {}
    epoll = select.epoll()
    read, write = os.pipe()
    before = {child.pid for child in psutil.Process().children()}  # a fork server, say
    try:
        with pytest.raises(OSError, match="Too many open files"):
            child = (time_.sleep, (30,), "tcp a client")
            _start_child(None, child, "fork", live, epoll, Reporter(write), "a client", True)
        assert live == {}
        # killed and reaped: no zombie either
        assert {child.pid for child in psutil.Process().children()} <= before
    finally:
        epoll.close()
        os.close(read)
        os.close(write)


def test_a_client_past_the_room_is_told_the_room_s_reason_after_a_failed_start():
    """Each client turned away is told its own reason: one whose handler could not start
    must not change what a later one, past the room proclab's limit leaves, is told."""
    import select

    from proclab.core.server.handler import OpenConnections, Reporter, _start_handlers

    keep = os.pipe()  # the started handler's "sentinel": never readable

    class FakeProcess:
        started = 0

        def __init__(self, **_: object) -> None:
            self.pid, self.sentinel = os.getpid(), keep[0]

        def start(self) -> None:
            FakeProcess.started += 1
            if FakeProcess.started == 1:
                raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    class Context:
        Process = FakeProcess

    listener = socket.create_server(("127.0.0.1", 0))
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    listener.setblocking(False)
    epoll, (read, write) = select.epoll(), os.pipe()
    live: dict = {}
    limits = (30.0, 300.0, "errors", "forkserver", None)  # forkserver: no pidfd asked
    try:
        caps = (10, "proclab's limit of live processes is reached", OpenConnections(1))
        _start_handlers(listener, live, epoll, Context(), Reporter(write), caps, limits)
        caps[2].close()
        told = [client.recv(200) for client in clients]
        assert told[0].startswith(b"busy: could not start a handler: BlockingIOError")
        assert told[1] == b""  # served: its handler (none here) holds the connection
        assert told[2] == b"busy: proclab's limit of live processes is reached; try again later\n"
    finally:
        for fd in (*keep, read, write):
            os.close(fd)
        for sock in (*clients, listener):
            sock.close()
        epoll.close()


def test_a_wake_of_the_accept_loop_starts_a_few_handlers_then_reaps_again():
    """Under a stream of clients the backlog refills as fast as handlers start: a wake
    that accepted every client waiting reaped nothing meanwhile, and ended handlers piled
    up as zombies until proclab's limit of processes turned clients away."""
    import select

    from proclab.core.server.handler import (
        ACCEPTS_PER_WAKE,
        OpenConnections,
        Reporter,
        _start_handlers,
    )

    keep = os.pipe()
    sentinels: list[int] = []  # one each: the loop watches each handler's

    class FakeProcess:
        def __init__(self, **_: object) -> None:
            self.pid, self.sentinel = os.getpid(), os.dup(keep[0])
            sentinels.append(self.sentinel)

        def start(self) -> None:
            pass

    class Context:
        Process = FakeProcess

    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    waiting = ACCEPTS_PER_WAKE + 5
    clients = [socket.create_connection(listener.getsockname()) for _ in range(waiting)]
    listener.setblocking(False)
    epoll, (read, write) = select.epoll(), os.pipe()
    live: dict = {}
    limits = (30.0, 300.0, "errors", "forkserver", None)
    caps = (100, "no room", OpenConnections(100))
    try:
        _start_handlers(listener, live, epoll, Context(), Reporter(write), caps, limits)
        assert caps[2].held() == ACCEPTS_PER_WAKE  # the rest wait: the loop reaps first
        _start_handlers(listener, live, epoll, Context(), Reporter(write), caps, limits)
        assert caps[2].held() == waiting
    finally:
        for fd in (*keep, *sentinels, read, write):
            os.close(fd)
        for sock in (*clients, listener):
            sock.close()
        epoll.close()
        caps[2].close()


def workers(controller) -> list:
    return [r for r in controller.rows() if r.tag and r.tag.startswith("tcp pool worker")]


def _fork_servers(pid: int) -> list[int]:
    return [child.pid for child in psutil.Process(pid).children()]


def test_a_killed_server_process_stops_the_server_and_says_so(controller, events):
    """Killed, the server process takes its handlers with it (their parent-death
    signal): the server stops, says why, and the handlers' rows say their end is not
    known rather than making one up."""
    address = start(controller, "process", "fork")
    held = socket.create_connection(address, timeout=10)
    held.sendall(b"x")
    assert held.recv(1) == b"X"
    (server,) = [r for r in controller.rows() if r.tag == "tcp server"]
    assert wait_until(lambda: handlers(controller), 5)  # told a moment after the echo
    (handler,) = handlers(controller)
    controller.kill(server.id)
    assert wait_until(lambda: controller.row(handler.id).state.is_over, 10)
    assert not controller.server.running
    assert controller.row(handler.id).state is ProcState.ENDED
    assert "told how" in controller.row(handler.id).exit_note
    assert any(e.kind == "error" and "server process" in e.text for e in events)
    # Its parent-death SIGKILL came as the server process died; dying (unmapping its
    # memory) may take a moment on a busy machine.
    assert wait_until(lambda: dead(handler.pid), 10)
    held.close()


def dead(pid: int) -> bool:
    """Ended: gone, or a zombie left for its new parent to reap."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_connection_that_came_with_a_timeout_never_stalls_the_loop() -> None:
    """The loop never makes a connection non-blocking (an ioctl each): it asks each recv
    and send not to wait. A socket with a timeout would wait it out on a full send
    buffer instead (a client that does not read), holding up every other connection of
    its worker."""
    import threading

    from proclab.core.server.handler import Reporter, serve

    ours, client = socket.socketpair()
    ours.settimeout(5.0)

    def flood() -> None:  # sends and never reads; its send fails once the loop ends it
        with contextlib.suppress(OSError):
            client.sendall(b"x" * (4 << 20))

    sender = threading.Thread(target=flood)
    sender.start()
    r, w = os.pipe()
    os.set_blocking(w, False)
    began = time.monotonic()
    serve(Reporter(w, level="errors"), 0.5, 60.0, first=(ours, "pair"))  # idle timeout
    assert time.monotonic() - began < 3.0  # the idle timeout, not the socket's 5 s
    client.close()
    sender.join(10)
    for fd in (r, w):
        os.close(fd)


@pytest.mark.parametrize(
    ("serve", "host", "port"),
    [
        ("8001", "127.0.0.1", 8001),
        ("[::1]:8002", "::1", 8002),
        ("localhost:8003", "localhost", 8003),
    ],
)
def test_the_app_s_serve_option_reads_an_address_as_the_server_writes_it(serve, host, port):
    """`listening on [::1]:8001` is how the log says an IPv6 address: --serve takes it."""
    config = startup_server(argparse.Namespace(serve=serve, method="fork"))
    assert config is not None and (config.host, config.port) == (host, port)


LOG_ERRORS_2000 = ("--log", "errors", "--max-clients", "2000")


@pytest.mark.parametrize(("mode", "fds"), [("thread", 128), ("pool", 40)])
def test_a_server_out_of_file_descriptors_rests_and_serves_again(
    tmp_path, mode: str, fds: int
) -> None:
    """Past its file descriptor limit, a listener ready at once with a client waiting in
    the backlog spun its loop: the thread server logged 187,360 "out of file descriptors"
    lines in 3 s, pool workers 11,157 "accept failed" in a moment. It rests, says so at
    most once a second (a pool: each worker), and serves the next client once
    connections have freed descriptors; the connections its handlers could not serve
    are not counted served."""
    import resource

    port = _free_port()
    log = tmp_path / "log.txt"

    def few_fds() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (fds, fds))

    with log.open("wb") as out:
        server = subprocess.Popen(
            # More clients than descriptors, as asked for (its default fits the limit)
            [PROCLAB, "serve", "--port", str(port), "--mode", mode, *LOG_ERRORS_2000],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=few_fds,
        )
    held: list[socket.socket] = []
    try:
        assert wait_until(lambda: listening(port), 20)
        began = time.monotonic()
        for _ in range(300):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        time.sleep(2)
        for sock in held:
            sock.close()
        held.clear()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"back")
            data = b""
            while len(data) < 4:
                data += sock.recv(100)
        assert data == b"BACK"
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=20) == 0
    finally:
        for sock in held:
            sock.close()
        kill_if_running(server)
    lasted = time.monotonic() - began
    text = log.read_text()
    said = text.count("out of file descriptors") + text.count("accept failed")
    assert 1 <= said <= (2 + lasted) * (4 if mode == "pool" else 1), said
    # Each client (300 held, "back", and listening()'s probe) is served, turned away, or
    # (a handler thread out of descriptors) cut short: counted once.
    stopped = log.read_text().splitlines()[-1]
    found = re.search(r"served (\d+), rejected (\d+)(?:, (\d+) cut short)?", stopped)
    assert found is not None, stopped
    assert sum(int(n or 0) for n in found.groups()) == 302, stopped


def test_a_forkserver_handler_whose_end_its_fork_server_never_told_has_no_made_up_code() -> None:
    """multiprocessing gives 255 when the fork server's word cannot be read (a server out
    of file descriptors): 118 handlers were shown "failed, exit 255", a code none of them
    exited with. The word read, it is the code; never come, it is not known."""
    from multiprocessing import forkserver
    from types import SimpleNamespace

    from proclab.core.server import handler

    def child(word: int | None) -> SimpleNamespace:
        """A forkserver child that has ended, its fork server's word in its sentinel."""
        read, write = os.pipe()
        if word is not None:
            forkserver.write_signed(write, word)
        os.close(write)
        popen = SimpleNamespace(returncode=None, sentinel=read)
        return SimpleNamespace(_popen=popen, exitcode=None, fd=read)

    told, untold = child(-15), child(None)
    try:
        assert handler._told_by_fork_server(told) == -15
        assert handler._told_by_fork_server(untold) is handler._UNTOLD
        assert untold._popen.returncode == 255  # multiprocessing is done with it
    finally:
        os.close(told.fd)
        os.close(untold.fd)
