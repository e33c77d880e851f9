"""Plain echo servers to measure proclab's server against, run as their own programs.

    python benchmarks/tcp_reference.py lesson --method fork --port 9001
    python benchmarks/tcp_reference.py prefork --workers 4 --port 9002
    python benchmarks/tcp_reference.py epoll --workers 4 --port 9003

lesson:  the lesson's server with its flaws fixed and nothing else: accept, start one
         Process per connection, close the parent's copy; the handler ends when recv()
         returns b""; finished children are reaped after each accept.
prefork: a plain pre-forked pool: N workers share the listening socket, each accepting and
         serving one connection at a time.
epoll:   the same pool, each worker serving every connection it accepts at once from one
         epoll loop, as proclab's pool workers do (so that a client that stops reading
         or sending cannot hold a worker, and clients past the workers are served rather
         than left waiting to be accepted). Not hardened: only the concurrency model.
"""

from __future__ import annotations

import argparse
import multiprocessing
import select
import signal
import socket
import sys
from collections.abc import Callable


def handle(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data.upper())


def lesson(port: int, method: str) -> None:
    ctx = multiprocessing.get_context(method)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(128)
    while True:
        conn, _ = server.accept()
        process = ctx.Process(target=handle, args=(conn,))
        process.start()
        conn.close()
        multiprocessing.active_children()  # reap those that have ended


def worker(listener: socket.socket) -> None:
    while True:
        conn, _ = listener.accept()
        handle(conn)


def epoll_worker(listener: socket.socket) -> None:
    listener.setblocking(False)
    epoll = select.epoll()
    epoll.register(listener.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
    conns: dict[int, socket.socket] = {}
    while True:
        for fd, _ in epoll.poll():
            if fd == listener.fileno():
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:  # another worker took it
                    continue
                conns[conn.fileno()] = conn
                epoll.register(conn.fileno(), select.EPOLLIN)
            elif data := conns[fd].recv(65536):
                conns[fd].sendall(data.upper())
            else:
                conns.pop(fd).close()


def prefork(port: int, workers: int, worker: Callable[[socket.socket], None] = worker) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    ctx = multiprocessing.get_context("fork")
    pool = [ctx.Process(target=worker, args=(listener,), daemon=True) for _ in range(workers)]
    for process in pool:
        process.start()
    for process in pool:
        process.join()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["lesson", "prefork", "epoll"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="fork")
    parser.add_argument("--workers", type=int, default=4)
    ns = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # workers inherit it: they exit too
    if ns.kind == "lesson":
        lesson(ns.port, ns.method)
    else:
        prefork(ns.port, ns.workers, epoll_worker if ns.kind == "epoll" else worker)
    return 0


if __name__ == "__main__":
    sys.exit(main())
