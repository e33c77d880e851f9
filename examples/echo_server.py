"""The lesson's concurrent server: one process per client, each echoing what it reads.

    python examples/echo_server.py [PORT] [fork|forkserver|spawn]

The parent accepts, starts a Process for the connection and closes its own copy of it, so
the client is served by the handler alone; a handler ends when its client closes.
"""

import multiprocessing
import socket
import sys


def handle(conn: socket.socket, address: tuple[str, int]) -> None:
    print(f"serving {address[0]}:{address[1]}", flush=True)
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data.upper())
    print(f"{address[0]}:{address[1]} closed", flush=True)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
    if len(sys.argv) > 2:
        multiprocessing.set_start_method(sys.argv[2])
    with socket.create_server(("127.0.0.1", port)) as server:
        print(f"listening on 127.0.0.1:{port}", flush=True)
        while True:
            conn, address = server.accept()
            handler = multiprocessing.Process(target=handle, args=(conn, address), daemon=True)
            handler.start()
            conn.close()  # the handler has its own copy
