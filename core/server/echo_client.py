"""A load generator for the echo server that checks every byte that comes back.

C clients at once, N connections in all, M messages of B random bytes on each; every
echo must be exactly the message upper-cased (`bytes.upper()`). Used by
`proclab client`, the tests and benchmarks/tcp.py.

Each exchange reads the echo while it writes the message: a server that stops reading
while it owes a client too much (proclab's handlers stop at 1 MB) would otherwise wait
for the client to read, while the client waits to finish writing. The timeout bounds the
whole exchange, the writing included.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import socket
import statistics
import time
from dataclasses import dataclass, field

from proclab.core.errors import ProclabError

# Each client holds its message, the expected echo and the echo read: about 3 x size.
MAX_SIZE = 16 * 1024 * 1024
MAX_IN_FLIGHT = 256 * 1024 * 1024  # clients x size
# Clients at once: each is a connection (an fd) and a task; 10 million took 2.1 GB before
# their first connect.
MAX_CLIENTS = 10_000
MAX_ERRORS_KEPT = 100
MAX_CONNECTIONS = 10**9  # past this, a typo: a load of 10**20 ran until it was killed
MAX_MESSAGES = 10**9
BUSY = b"busy"  # how the server's line turning a client away begins (handler.reject)


def check_load(clients: int, size: int, connections: int | None = None, messages: int = 1) -> None:
    """ProclabError, naming the option, for a load that cannot fit in memory or would
    not end."""
    if connections is not None and connections > MAX_CONNECTIONS:
        raise ProclabError(f"--connections: at most {MAX_CONNECTIONS:,}, got {connections:,}")
    if messages > MAX_MESSAGES:
        raise ProclabError(f"--messages: at most {MAX_MESSAGES:,} a connection, got {messages:,}")
    if clients > MAX_CLIENTS:
        raise ProclabError(f"--clients: at most {MAX_CLIENTS:,} at once, got {clients:,}")
    if size > MAX_SIZE:
        raise ProclabError(f"--size: at most {MAX_SIZE:,} bytes (16 MiB) a message, got {size:,}")
    if clients * size > MAX_IN_FLIGHT:
        raise ProclabError(
            f"--clients x --size: {clients:,} clients x {size:,} bytes is more than"
            f" {MAX_IN_FLIGHT // 2**20} MiB in flight; use fewer clients or smaller messages"
        )


@dataclass
class LoadResult:
    connections: int = 0  # completed (every message echoed right)
    messages: int = 0
    busy: int = 0  # turned away with a "busy" line
    # The first MAX_ERRORS_KEPT errors, and how many there were: one string a failure
    # grew without bound under --connections 10**9 against a peer that resets each.
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    not_made: int = 0  # connections never tried: the load stopped (refused)
    refused: bool = False  # a connect was refused: no server listens, the load stopped
    latencies: list[float] = field(default_factory=list)  # seconds per message round trip
    elapsed: float = 0.0

    def fail(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)

    @property
    def conn_per_s(self) -> float:
        return self.connections / self.elapsed if self.elapsed else 0.0

    @property
    def msg_per_s(self) -> float:
        return self.messages / self.elapsed if self.elapsed else 0.0

    def latency_ms(self, percentile: float) -> float | None:
        if not self.latencies:
            return None
        # Nearest rank: the smallest latency at least `percentile` % of them do not pass
        # (of two, the median is the lower; of 100, p99 is the 99th, not the largest).
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(percentile / 100 * len(ordered)))
        return ordered[rank - 1] * 1000

    def summary(self) -> dict[str, object]:
        return {
            "connections": self.connections,
            "messages": self.messages,
            "busy": self.busy,
            "errors": self.error_count,
            "not_made": self.not_made,
            "first_errors": self.errors[:5],
            "elapsed_s": round(self.elapsed, 3),
            "conn_per_s": round(self.conn_per_s, 1),
            "msg_per_s": round(self.msg_per_s, 1),
            "latency_p50_ms": _round(self.latency_ms(50)),
            "latency_p99_ms": _round(self.latency_ms(99)),
            "latency_mean_ms": _round(
                statistics.fmean(self.latencies) * 1000 if self.latencies else None
            ),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def _connection(
    host: str, port: int, messages: int, size: int, timeout: float, result: LoadResult
) -> None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        result.fail(f"connect: {type(exc).__name__}: {exc}")
        # None listening, a name that does not resolve, no route: each connect after it
        # would fail alike (a name that never resolved ran on past a minute)
        stop = isinstance(exc, ConnectionRefusedError | socket.gaierror) or exc.errno in (
            errno.EHOSTUNREACH,
            errno.ENETUNREACH,
        )
        result.refused = result.refused or stop
        return
    except UnicodeError:  # a name no resolver takes (an empty label, one of 64 characters)
        result.fail("connect: gaierror: not a host name")
        result.refused = True
        return
    try:
        for _ in range(messages):
            message = os.urandom(size)
            began = time.perf_counter()
            echo = await _exchange(reader, writer, message, timeout)
            if echo != message.upper():
                if len(echo) < len(BUSY) and BUSY.startswith(echo):
                    # A message shorter than the word: the server's line says the rest.
                    echo += await _rest_of_line(reader, timeout)
                if echo.startswith(BUSY):
                    result.busy += 1
                    return
                result.fail(
                    f"wrong echo: {len(echo)} bytes, first difference at byte {_first_difference(echo, message.upper())}"
                )
                return
            result.latencies.append(time.perf_counter() - began)
            result.messages += 1
        # Done: say so, and wait for the server's close. The next connection then finds
        # this one's place free (at --max-clients 1 one sooner was turned away as busy: 21
        # of 40 under spawn), and anything the server sent past the echoes is seen.
        writer.write_eof()
        try:
            rest = await asyncio.wait_for(reader.read(1 << 16), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the server did not close within {timeout:g} s of the last echo"
            ) from None
        if rest:
            result.fail(f"{len(rest):,} bytes after the last echo")
            return
        result.connections += 1
    except asyncio.IncompleteReadError as exc:
        if exc.partial.startswith(BUSY):
            result.busy += 1
        else:
            result.fail(f"connection closed after {len(exc.partial)} of {size} bytes")
    except (OSError, TimeoutError) as exc:
        result.fail(f"{type(exc).__name__}: {exc}")
    finally:
        if writer.transport.get_write_buffer_size():
            writer.transport.abort()  # close() would wait to send it to a peer that does not read
        else:
            writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes, timeout: float
) -> bytes:
    """Send `message` while reading as many bytes back, within `timeout` for both."""

    async def send() -> None:
        writer.write(message)
        await writer.drain()

    sending = asyncio.create_task(send())
    try:
        # The whole echo read means the whole message was sent (the server received it).
        return await asyncio.wait_for(reader.readexactly(len(message)), timeout)
    except TimeoutError:
        raise TimeoutError(
            f"no whole echo of {len(message):,} bytes within {timeout:g} s"
        ) from None
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await sending


async def _rest_of_line(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """What the server sends up to the end of its line (at most 64 KiB), or b""."""
    try:
        return await asyncio.wait_for(reader.readline(), timeout)
    except (TimeoutError, ValueError, OSError):  # ValueError: a line past the limit
        return b""


def _first_difference(a: bytes, b: bytes) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


async def run_load(
    host: str,
    port: int,
    clients: int = 8,
    messages: int = 10,
    size: int = 64,
    connections: int | None = None,
    timeout: float = 10.0,
) -> LoadResult:
    """`clients` at once, until `connections` (default: one per client) have been made."""
    total = connections or clients
    result = LoadResult()
    # The connections left to make: counted, not queued (a queue of --connections 10**9
    # filled 650 MB before the first connect). A connect refused ends the load: no server
    # listens, and each of the rest would be refused too.
    left = [total]

    async def client() -> None:
        while left[0] > 0 and not result.refused:
            left[0] -= 1
            await _connection(host, port, messages, size, timeout, result)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(min(clients, total))))
    result.elapsed = time.perf_counter() - began
    result.not_made = left[0] if result.refused else 0
    return result
