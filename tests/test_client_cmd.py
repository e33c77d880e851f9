"""`proclab client`: sizes it cannot hold are one line, and --timeout bounds every exchange,
the writing included, because it reads the echo while it writes."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time

import pytest
from pty_session import PROCLAB

from proclab.core.controller import Controller
from proclab.core.server.echo_client import LoadResult, run_load
from proclab.core.server.tcp import ServerConfig


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--size", "99999999999"], "--size"),
        (["--size", "16777217"], "--size"),
        (["--clients", "100", "--size", "16000000"], "--clients x --size"),
        # 10 million tasks took 2.1 GB before the first connect
        (["--clients", "10000000", "--size", "1"], "--clients: at most 10,000 at once"),
        # 10**20 connections, or messages, ran until killed, with no figures
        (["--connections", "99999999999999999999"], "--connections: at most 1,000,000,000"),
        (["--messages", "99999999999999999999"], "--messages: at most 1,000,000,000"),
    ],
)
def test_a_load_that_cannot_fit_is_one_line(options: list[str], named: str) -> None:
    done = subprocess.run(
        [PROCLAB, "client", "--port", "9", *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"proclab client: {named}")


def test_a_load_of_a_billion_connections_to_no_server_ends_at_the_first_refusal() -> None:
    """It queued 10**9 connections (650 MB) before the first connect, then made each to
    be refused in turn: still running 30 s on."""
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = asyncio.run(run_load("127.0.0.1", port, 4, 1, 8, 10**9, 5.0))
    assert result.refused and result.connections == 0
    assert 1 <= result.error_count <= 4, result.errors  # one refusal a client at most
    assert result.not_made >= 10**9 - 4
    # nor a name that no resolver takes (a name that never resolved ran on past a minute)
    unnamed = asyncio.run(run_load("a..b", port, 4, 1, 8, 10**6, 5.0))
    assert unnamed.refused and 1 <= unnamed.error_count <= 4 and unnamed.not_made > 0


def test_timeout_bounds_an_exchange_whose_server_never_reads() -> None:
    """A peer that accepts and never reads: the client's writing stalls once the socket
    buffers are full. It must give up after --timeout, not wait for ever."""
    with socket.socket() as deaf:
        deaf.bind(("127.0.0.1", 0))
        deaf.listen()
        port = deaf.getsockname()[1]
        began = time.monotonic()
        done = subprocess.run(
            [
                PROCLAB,
                "client",
                "--port",
                str(port),
                "--clients",
                "1",
                "--size",
                "8000000",
                "--timeout",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - began
    assert done.returncode == 1, done
    assert "within 1 s" in done.stdout, done.stdout
    assert took < 15, f"{took:.1f} s for a 1 s timeout"


def test_a_message_larger_than_what_the_server_buffers_comes_back(controller: Controller) -> None:
    """proclab's handlers stop reading while they owe a client 1 MB: a client that wrote
    all 16 MB before reading would wait for ever (until the idle timeout)."""
    address = controller.server.start(ServerConfig(port=0, method="fork", idle_timeout=30))
    host, port = address.rsplit(":", 1)
    result = asyncio.run(
        run_load(host, int(port), clients=1, messages=1, size=16_000_000, timeout=20)
    )
    assert result.errors == [] and result.connections == 1


def test_latency_percentiles_are_nearest_rank() -> None:
    """The smallest latency that at least p % of them do not pass: of two, the median is
    the lower (it was the higher, above the mean); of 100, p99 is the 99th, not the
    largest."""
    two = LoadResult(latencies=[0.002, 0.009])
    assert two.latency_ms(50) == pytest.approx(2.0)
    hundred = LoadResult(latencies=[n / 1000 for n in range(100, 0, -1)])
    assert hundred.latency_ms(50) == pytest.approx(50.0)
    assert hundred.latency_ms(99) == pytest.approx(99.0)
    assert hundred.latency_ms(100) == pytest.approx(100.0)
    assert LoadResult().latency_ms(50) is None


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_one_client_after_another_is_never_busy_at_max_clients_of_one(
    controller: Controller, method: str
) -> None:
    """The client closed and connected again at once, before the server had closed its
    side: at --max-clients 1 it was turned away as busy (21-24 of 40 under spawn). It now
    waits for the server's close, as one client after another does."""
    config = ServerConfig(port=0, method=method, max_clients=1)
    host, port = controller.server.start(config).rsplit(":", 1)
    result = asyncio.run(run_load(host, int(port), clients=1, connections=15, messages=1))
    assert (result.busy, result.errors, result.connections) == (0, [], 15)


def test_bytes_after_the_last_echo_are_an_error() -> None:
    """What a server sends past the echoes was not looked at: a server that echoed, then
    said more, passed."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve_one() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(conn.recv(64).upper() + b"and more\n")
                conn.recv(64)  # the client's end

        server = threading.Thread(target=serve_one)
        server.start()
        port = listener.getsockname()[1]
        result = asyncio.run(run_load("127.0.0.1", port, clients=1, messages=1, size=8))
        server.join(10)
    assert result.errors == ["9 bytes after the last echo"] and result.connections == 0


def test_a_server_that_never_closes_after_the_last_echo_is_said_to() -> None:
    """Waiting for the server's close, the client timed out with "TimeoutError: " and
    nothing after it."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        done = threading.Event()

        def echo_and_stay() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(conn.recv(64).upper())
                done.wait(10)  # never closes until the client has given up

        server = threading.Thread(target=echo_and_stay)
        server.start()
        port = listener.getsockname()[1]
        result = asyncio.run(
            run_load("127.0.0.1", port, clients=1, messages=1, size=8, timeout=0.5)
        )
        done.set()
        server.join(10)
    assert result.errors == ["TimeoutError: the server did not close within 0.5 s of the last echo"]


@pytest.mark.parametrize("size", [1, 3, 4])
def test_a_busy_line_is_read_whole_whatever_the_message_size(size: int) -> None:
    """At --size 3 a client turned away read "bus" and said "wrong echo", exit 1: it read
    as many bytes as it had sent. The server's own line, through its real refusal."""
    controller = Controller()
    controller.start()
    try:
        address = controller.server.start(ServerConfig(port=0, max_clients=1, method="fork"))
        port = int(address.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as holder:  # the one place
            holder.sendall(b"hi")
            assert holder.recv(16) == b"HI"
            result = asyncio.run(
                run_load("127.0.0.1", port, clients=1, connections=2, messages=1, size=size)
            )
    finally:
        controller.close()
    assert result.errors == [] and result.busy == 2 and result.connections == 0


def test_a_load_turned_away_whole_fails_and_a_slow_connect_is_not_a_missing_server() -> None:
    """Every client turned away as busy exited 0, nothing exchanged; a connect that ran
    out of --timeout said "is the server running?" of a server that was (a tester's)."""
    controller = Controller()
    controller.start()
    try:
        address = controller.server.start(ServerConfig(port=0, max_clients=1, method="fork"))
        port = address.rsplit(":", 1)[1]
        with socket.create_connection(("127.0.0.1", int(port))) as holder:  # the one place
            holder.sendall(b"hi")
            assert holder.recv(16) == b"HI"
            busy = subprocess.run(
                [PROCLAB, "client", "--port", port, "--clients", "1", "--connections", "2"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        slow = subprocess.run(
            [PROCLAB, "client", "--port", port, "--timeout", "1e-9"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        controller.close()
    assert busy.returncode == 1 and "2 turned away with 'busy'" in busy.stdout, busy
    assert slow.returncode == 2
    assert slow.stderr == (
        f"proclab client: cannot connect to 127.0.0.1:{port}: no answer within --timeout 1e-09 s\n"
    )


def test_an_empty_host_is_named_as_one() -> None:
    """ "cannot connect to :9: no address for " ended with nothing."""
    done = subprocess.run(
        [PROCLAB, "client", "--host", "", "--port", "9"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr == "proclab client: cannot connect to '':9: no address for ''\n"
