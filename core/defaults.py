"""Defaults shared by the controller, the CLI and the app: each is written here only.
Imports nothing but typing, so that the `proclab` script stays cheap to import (spawn
children import it as their main module)."""

from typing import Final, Literal

StartMethod = Literal["fork", "forkserver", "spawn"]
METHODS: tuple[StartMethod, ...] = ("fork", "forkserver", "spawn")
# fork is unsafe in a threaded process and proclab always has threads; Python 3.14 made
# forkserver the default on Linux for the same reason.
DEFAULT_METHOD: StartMethod = "forkserver"
DEFAULT_MAX_PROCS = 256
# A child that starts more processes of its own than this has its process group killed.
DEFAULT_MAX_DESCENDANTS = 64
DEFAULT_GRACE_S = 2.0
DEFAULT_INTERVAL_S = 1.0
# The shortest sampling interval: the kernel counts CPU time in clock ticks (10 ms), and at
# `--refresh 1e-9` every CPU figure read 0 while proclab itself took most of a core. htop's
# shortest delay is the same.
MIN_INTERVAL_S = 0.1
# Lines of output kept for each process (the details pane's, a replay's).
OUTPUT_LINES_KEPT = 500

# The TCP echo server: the lesson's address, loopback only unless asked.
SERVER_HOST = "127.0.0.1"
SERVER_PORT = 8001
ServerMode = Literal["process", "pool", "thread"]
SERVER_MODES: tuple[ServerMode, ...] = ("process", "pool", "thread")
# The rest of ServerConfig's defaults (core/server/tcp.py), here so that the CLI reads them
# without importing the server.
SERVER_MODE: Final = "process"
SERVER_WORKERS = 4
SERVER_MAX_CLIENTS = 32
SERVER_IDLE_S = 60.0
SERVER_LIFETIME_S = 600.0
