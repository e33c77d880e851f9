"""Hostile TCP clients: the server survives each, leaks no handler, and serves the next
client normally."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from support import wait_until

from proclab.core.model import ServerEvent
from proclab.core.server.handler import OUT_LIMIT, READ_CHUNK
from proclab.core.server.tcp import ServerConfig


@pytest.fixture
def events(controller):
    seen: list[ServerEvent] = []
    controller.subscribe(lambda e: seen.append(e) if isinstance(e, ServerEvent) else None)
    return seen


def start(controller, mode: str = "process", **options) -> tuple[str, int]:
    config = ServerConfig(port=0, mode=mode, method="fork", workers=2, **options)
    host, port = controller.server.start(config).rsplit(":", 1)
    return host, int(port)


def still_serves(address) -> None:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"still here")
        data = b""
        while len(data) < 10:
            data += sock.recv(100)
    assert data == b"STILL HERE"


def no_handler_left(controller) -> bool:
    return controller.server.status().active == 0 and not any(
        r.tag and r.tag.startswith("tcp 1") and r.state.is_live for r in controller.rows()
    )


@pytest.mark.parametrize("mode", ["process", "pool", "thread"])
def test_slowloris_is_cut_off_by_the_lifetime(controller, events, mode):
    address = start(controller, mode, lifetime=1.5, idle_timeout=30)
    slow = socket.create_connection(address, timeout=5)
    began = time.monotonic()
    closed = False
    while time.monotonic() - began < 6:
        try:
            slow.sendall(b"x")  # a byte at a time: never idle
            time.sleep(0.1)
        except OSError:
            closed = True
            break
        still_serves(address) if time.monotonic() - began < 0.5 else None
    slow.close()
    assert closed or wait_until(
        lambda: any(e.kind == "disconnected" and e.reason == "lifetime" for e in events), 3
    )
    assert wait_until(
        lambda: any(e.kind == "disconnected" and e.reason == "lifetime" for e in events), 5
    )
    assert wait_until(lambda: no_handler_left(controller), 5)
    still_serves(address)


@pytest.mark.parametrize("mode", ["process", "pool", "thread"])
def test_a_thousand_connections_past_max_clients(controller, events, mode):
    address = start(controller, mode, max_clients=4)
    held = [socket.create_connection(address) for _ in range(4)]
    for sock in held:
        sock.sendall(b"a")
        assert sock.recv(1) == b"A"
    burst = []
    for _ in range(1000):
        sock = socket.socket()
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.connect(address)
        burst.append(sock)
    told_busy = 0
    deadline = time.monotonic() + 30
    for sock in burst:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            answer = sock.recv(100)
            assert answer == b"" or answer.startswith(b"busy"), answer  # never served
            told_busy += answer.startswith(b"busy")
        except OSError:
            pass  # refused or reset past a full backlog: turned away by the kernel
        finally:
            sock.close()
    assert told_busy >= 500, f"only {told_busy} of 1000 were told busy"
    status = controller.server.status()
    assert status.active <= 4
    if mode == "process":
        assert status.handlers <= 4
    for sock in held:
        sock.close()
    assert wait_until(lambda: no_handler_left(controller), 10)
    still_serves(address)


@pytest.mark.parametrize("mode", ["process", "pool", "thread"])
def test_reset_in_mid_message(controller, events, mode):
    address = start(controller, mode)
    sock = socket.create_connection(address)
    sock.sendall(b"half a mess")
    time.sleep(0.2)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST, not FIN
    assert wait_until(lambda: any(e.kind == "disconnected" for e in events), 5)
    assert wait_until(lambda: no_handler_left(controller), 5)
    still_serves(address)


@pytest.mark.parametrize("mode", ["process", "pool", "thread"])
def test_a_client_that_never_reads(controller, events, mode):
    """It sends and sends and never reads: the server stops reading it past its limit
    instead of buffering without bound, and the idle timeout ends it."""
    address = start(controller, mode, idle_timeout=1.0)
    greedy = socket.socket()
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    greedy.connect(address)
    greedy.setblocking(False)
    sent = 0
    began = time.monotonic()
    while time.monotonic() - began < 5:
        try:
            sent += greedy.send(b"z" * 65536)
        except BlockingIOError:
            time.sleep(0.05)  # both directions are full now
        except OSError:
            break
    assert sent < 64 * 1024 * 1024, "the server kept buffering"

    def ended() -> list:
        return [e for e in events if e.kind == "disconnected"]

    assert wait_until(
        lambda: any(e.reason.startswith(("idle timeout", "reset")) for e in ended()), 10
    )
    # It read no more than it may owe, plus what the kernel holds on the way back: the
    # rest of what was sent stayed in the socket buffers, unread.
    (gone,) = ended()
    assert gone.bytes_in <= OUT_LIMIT + READ_CHUNK + _send_buffer_max() + 1024 * 1024, (
        gone.bytes_in,
        sent,
    )
    # What it sent back and the client never took (its small receive buffer full) was
    # dropped with the reset its unread input made: not counted as sent out ("out
    # 4,128,768 B" of a client that had 32,768).
    assert gone.bytes_out <= 512 * 1024, gone
    greedy.close()
    assert wait_until(lambda: no_handler_left(controller), 5)
    still_serves(address)


def _send_buffer_max() -> int:
    """The most a TCP socket's send buffer grows to here (Linux's tcp_wmem)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024


@pytest.mark.parametrize("mode", ["process", "pool", "thread"])
def test_half_closed_client_gets_everything_back(controller, mode):
    """The client sends everything, then shuts down its side and only then reads: the
    handler sees the end of the input while it still owes part of the answer (more than
    its socket's send buffer and the client's receive buffer hold), and must send it all."""
    address = start(controller, mode)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(20)
    sock.connect(address)
    size = _send_buffer_max() + 256 * 1024 + OUT_LIMIT // 2  # under OUT_LIMIT left owed
    payload = b"ping " * (size // 5)

    def send() -> None:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(1.0)  # the handler reads to the end meanwhile
    received = bytearray()
    while chunk := sock.recv(65536):
        received += chunk
    sender.join()
    sock.close()
    assert len(received) == len(payload) and received == payload.upper()
    assert wait_until(lambda: no_handler_left(controller), 5)
    still_serves(address)


def test_a_server_started_from_a_deleted_folder_says_so(controller, tmp_path, monkeypatch):
    """Its handlers would run in proclab's folder: gone, the start is refused in one line,
    and nothing listens."""
    from proclab.core.server.tcp import ServerError

    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(ServerError, match="folder is gone"):
        controller.server.start(ServerConfig(port=0, mode="process"))
    assert not controller.server.status().running


@pytest.mark.parametrize("mode", ["process", "pool"])
def test_a_connection_whose_handler_is_killed_is_not_counted_served(controller, events, mode):
    """Its handler (a pool's: its worker) SIGKILLed mid-connection, the client was never
    served whole: the served count took it in all the same."""
    import os
    import signal

    from proclab.core.model import ClientAccepted

    address = start(controller, mode)
    with socket.create_connection(address, timeout=10) as client:
        here = f"127.0.0.1:{client.getsockname()[1]}"
        accepted = lambda: [e for e in events if isinstance(e, ClientAccepted) and e.client == here]  # noqa: E731
        assert wait_until(accepted, 10)
        os.kill(accepted()[0].pid, signal.SIGKILL)
        assert wait_until(lambda: controller.server.status().active == 0, 10)
    still_serves(address)
    controller.server.stop()
    (stopped,) = [e for e in events if e.kind == "stopped"]
    # still_serves's client served, the killed handler's cut short
    assert "served 1, rejected 0, 1 cut short" in stopped.text, stopped.text
