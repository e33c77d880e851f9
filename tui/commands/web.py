"""`proclab web`: the app in a web browser, through textual-serve.

Each browser tab that opens the page gets a proclab of its own (textual-serve runs
`python -m proclab.tui.cli [APP OPTIONS]` with its web driver); closing the tab, or
stopping `proclab web` (Ctrl+C, SIGTERM), quits that proclab, which ends its children.

Anyone who can open the page can start any Python function as you. So, as Jupyter does:
- the page and its websocket need this run's secret token, printed at start in the URL to
  open (another local user, or a page that guesses the port, has no token);
- a request must name this server as its Host, and a browser's Origin must be this
  server: a page from anywhere else open in the same browser cannot drive it, even one
  whose own name was made to point at 127.0.0.1 (DNS rebinding);
- it listens on 127.0.0.1 unless told otherwise with --public.
Nothing refused starts an app. The page loads nothing from any other server (its font is
served here), so it works offline and tells no one it was opened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shlex
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from proclab.core.errors import ProclabError, clipped
from proclab.core.output import escape_controls
from proclab.core.server.hosts import (
    host_problem,
    ip_of,
    is_loopback,
    not_ours,
    own_addresses,
)
from proclab.tui.commands.options import fixed_port
from proclab.tui.commands.web_tabs import (
    DEFAULT_SIZE,
    LastWords,
    end_tab,
    quiet_logging,
    tab_message,
    tab_size,
)
from proclab.tui.commands.web_tabs import log as tab_log

WEB_HOST = "127.0.0.1"
WEB_PORT = 8000
APP_MODULE = "proclab.tui.cli"
DEFAULT_HTTP_PORT = 80
SESSION_END_S = 30.0  # each app's own shutdown is its --grace and a little more
WATCHING = ("watch", "attach")  # commands whose app a tab can show
NO_RECORD = "--record: every tab would write the same file; not in proclab web"
TEMPLATES = Path(__file__).parent.parent / "web"  # the page, without a public font service
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
HELP = "serve the app to a web browser (textual-serve)"
DESCRIPTION = (
    "Serve the app through textual-serve: every browser tab that opens the page"
    " gets its own proclab, which ends its children when the tab closes. Options after --"
    " are the app's (e.g. -- proclab.core.tasks:sleep --args '(5,)' --count 3), or a"
    " watch or attach command (-- watch examples/echo_server.py: each tab runs its own copy)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=WEB_HOST, help=f"address to listen on (default {WEB_HOST})"
    )
    parser.add_argument(
        "--port", type=fixed_port, default=WEB_PORT, help=f"port (default {WEB_PORT})"
    )
    parser.add_argument(
        "--public",
        action="store_true",
        help="allow a host other machines can reach (anyone who opens the page can run code as you)",
    )
    parser.add_argument(
        "--url",
        default=None,
        metavar="URL",
        help="the address browsers reach the server at, if not http://HOST:PORT"
        " (behind a proxy, or when HOST is 0.0.0.0)",
    )
    parser.add_argument(
        "app",
        nargs=argparse.REMAINDER,
        metavar="-- APP OPTIONS",
        help="options for the app in each tab, after --: e.g. -- --refresh 2;"
        " or -- watch SCRIPT.py / -- attach PID",
    )


def app_command(app_args: list[str]) -> str:
    """The shell command textual-serve runs for each browser tab (exec: the app is this
    server's own child, which it can signal, and which ends when it dies: WEB_PID)."""
    from proclab.tui.terminal import WEB_PID

    command = shlex.join([sys.executable, "-m", APP_MODULE, *app_args])
    return f"{WEB_PID}={os.getpid()} exec {command}"


def _sessions() -> list[psutil.Process]:
    """The apps textual-serve started, one per browser tab."""
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if APP_MODULE in child.cmdline():
                found.append(child)
    return found


def end_sessions(timeout: float) -> None:
    """SIGTERM every tab's app: each ends its children (SIGTERM, SIGKILL after its grace)
    and exits; SIGKILL for any still there after `timeout` (their children then die with
    them, through the watchdog every proclab child has)."""
    sessions = _sessions()
    for session in sessions:
        with contextlib.suppress(psutil.Error):
            session.terminate()
    alive = _until_ended(sessions, timeout)
    for session in alive:
        with contextlib.suppress(psutil.Error):
            session.kill()
    _until_ended(alive, 5)


def _until_ended(sessions: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to `timeout` for them to end; those still running. Their statuses are left
    for asyncio to read (textual-serve started them): reaped here (psutil.wait_procs), a
    tab's status was lost, and asyncio logged "Unknown child process pid 29942, will
    report returncode 255", which the tab's log line then repeated as its status."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [s for s in sessions if not _ended(s.pid)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _ended(pid: int) -> bool:
    """Whether a child of this process has ended, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None
    except ChildProcessError:
        return True  # reaped already


def check(ns: argparse.Namespace) -> list[str]:
    """The app's options, checked now rather than in every tab; raises ProclabError."""
    problem = host_problem(ns.host) or not_ours(ns.host)
    if problem is not None:
        raise ProclabError(problem)
    problem = url_problem(ns.url) if ns.url is not None else None
    if problem is not None:
        raise ProclabError(problem)
    if not is_loopback(ns.host) and not ns.public:
        raise ProclabError(
            f"host: {ns.host} is reachable from other machines, and anyone who opens the page"
            " can start any program as you. Use 127.0.0.1, or pass --public if you mean it"
        )
    app_args = list(ns.app)
    if app_args[:1] == ["--"]:
        app_args = app_args[1:]
    from proclab.tui.cli import COMMANDS, build_app_parser
    from proclab.tui.commands.app import startup_server, startup_spawn

    if app_args[:1] and app_args[0] in WATCHING:
        return check_watching(app_args)
    if app_args[:1] and app_args[0] in COMMANDS:
        raise ProclabError(
            f"{app_args[0]!r} is a command, not an option of the app"
            f" (the commands with an app here: {', '.join(WATCHING)})"
        )
    app_ns = build_app_parser().parse_args(app_args)  # a usage error exits with status 2
    if app_ns.record:
        raise ProclabError(NO_RECORD)
    startup_spawn(app_ns)
    startup_server(app_ns)
    return app_args


def url_problem(url: str) -> str | None:
    """Why --url is not an address to print with the token, or None: an http(s) URL with
    a host, no user, query or fragment, and nothing a terminal would obey. It was printed
    as given (an escape sequence cleared the screen); one without a host put '' among the
    hosts the server answers to; `#f` put the token in a fragment no browser sends."""
    shown = clipped(repr(url)[1:-1], 80)
    if not url.isprintable() or not url.isascii() or " " in url:
        return f"url: '{shown}' has characters a URL cannot hold"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (read for its check: past 65535 raises)
    except ValueError as exc:
        return f"url: '{shown}' is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (
            f"url: '{shown}' is not an http:// or https:// address with a host"
            " (e.g. http://my-machine:8000)"
        )
    if parts.username is not None or parts.query or parts.fragment:
        return f"url: '{shown}' has a user, a query or a fragment: the token is added to it"
    return None


def check_watching(app_args: list[str]) -> list[str]:
    """`watch ...` or `attach PID` in each tab, checked now: each tab runs its own copy of
    the program (watch) or watches the same running tree (attach); raises ProclabError."""
    from proclab.core.watch.attach import check_pid, parse_pid
    from proclab.core.watch.program import check_command
    from proclab.tui.cli import build_parser
    from proclab.tui.commands.watch import command_of

    command = app_args[0]
    ns = build_parser(command).parse_args(app_args)  # a usage error exits with status 2
    if ns.headless or ns.json:
        raise ProclabError(f"{command} --headless: each tab shows the app; not in proclab web")
    if ns.record:
        raise ProclabError(NO_RECORD)
    if command == "watch":
        check_command(command_of(ns.argv))
    else:
        check_pid(parse_pid(ns.pid))
    return app_args


@dataclass(frozen=True, slots=True)
class Served:
    """What Host (and Origin) this server answers to: its public URL's, and on a loopback
    address each name of the loopback (127.0.0.1, localhost, [::1]). Bound to every
    address (0.0.0.0, ::: `every`, their IP version), also each of this machine's own by
    number, read at each ask (a network change): it refused every Host but
    "0.0.0.0:PORT", which no browser elsewhere can open. An address is no other site's
    page, as a name made to point here (DNS rebinding) is."""

    names: frozenset[str]
    port: int
    every: int | None = None

    def answers(self, host: str) -> bool:
        if host.lower() in self.names:
            return True
        if self.every is None:
            return False
        try:
            parts = urlsplit(f"//{host}")
            address, port = parts.hostname, parts.port or DEFAULT_HTTP_PORT
        except ValueError:  # not host[:port]
            return False
        return port == self.port and address in own_addresses(self.every)

    def __str__(self) -> str:
        # Not each address of the machine (docker's, a VPN's) to whoever asks wrongly
        named = " or ".join(sorted(self.names))
        return f"{named} or this machine's own addresses" if self.every else named


def served_hosts(public_url: str, host: str, port: int) -> Served:
    names = {urlsplit(public_url).netloc.lower(), netloc(host, port).lower()}
    address = ip_of(host)
    if address is not None:  # what a browser makes of 10.1: 10.0.0.1
        names.add(netloc(str(address), port).lower())
    every = address.version if address is not None and address.is_unspecified else None
    if is_loopback(host) or every:
        names.update(f"{name}:{port}" for name in LOOPBACK_NAMES)
    if port == DEFAULT_HTTP_PORT:  # a browser leaves it out of Host and Origin: "localhost"
        names.update(name.removesuffix(f":{port}") for name in list(names))
    return Served(frozenset(names), port, every)


def netloc(host: str, port: int) -> str:
    """host:port as a URL says it: an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def refusal(request: Any, served: Served, token: str) -> str | None:
    """Why this request is refused, or None: a Host that is not this server, a browser
    page from another origin, a page or websocket without this run's token."""
    if not served.answers(request.host):
        return f"this server is {served}, not {_said(request.host)}"
    origin = request.headers.get("Origin")
    if origin is not None:
        try:
            theirs = urlsplit(origin).netloc
        except ValueError:  # "http://[::1": answered 500, "Invalid IPv6 URL", not refused
            theirs = ""
        if not served.answers(theirs):
            return f"a page from {_said(origin)} may not use this server"
    path = request.path
    if path.startswith(
        ("/static/", "/download/")
    ):  # textual-serve's files; a download's key is random
        return None
    given = (
        request.match_info.get("token") if path.startswith("/ws") else request.query.get("token")
    )
    if given is None or not secrets.compare_digest(given.encode(), token.encode()):
        return "open the address proclab web printed when it started: it holds the token"
    return None


def _said(header: str) -> str:
    """A header's value as a refusal quotes it: escaped, short, and text any response can
    carry (a Host of bytes that are not UTF-8 made the refusal itself fail, a 500)."""
    shown = clipped(escape_controls(header, tabs=True), 100)
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")


def _server_class() -> type:
    import aiohttp_jinja2
    from aiohttp import WSMsgType, web
    from textual_serve.app_service import AppService
    from textual_serve.server import Server

    class TabService(AppService):
        """One tab's proclab, ended with its tab however the tab went (web_tabs.py)."""

        _starting: asyncio.Future[None] | None = None

        async def start(self, width: int, height: int) -> None:
            # Whole, or not at all: a tab closed at once cancels its handler, and a
            # cancel between the process's start and its loop's left that proclab (and
            # its children) running until proclab web ended (stop had no loop to end).
            self._starting = asyncio.ensure_future(self._start(width, height))
            await asyncio.shield(self._starting)

        async def _start(self, width: int, height: int) -> None:
            process = await self._open_app_process(width, height)
            # textual-serve's loop copied the app's stderr raw onto the server's terminal,
            # escape sequences and all: it gets an empty one, and its last line is logged,
            # escaped, if the app fails (end_tab).
            self.last_words = LastWords(process.stderr)
            quiet = asyncio.StreamReader()
            quiet.feed_eof()
            process.stderr = quiet
            self._task = asyncio.create_task(self.run())

        async def stop(self) -> None:
            if self._starting is not None:  # a start under way ends first: its process too
                # asyncio.wait, not gather: this stop cancelled would cancel the start too
                await asyncio.wait({self._starting})
            task, self._task = self._task, None
            process = self._process
            if process is None:
                return
            await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
            # Its loop may wait for good on a tab that reads nothing: whatever the app
            # draws from now on goes nowhere.
            if task is not None:
                task.cancel()
                with contextlib.suppress(Exception):  # its own error, not this stop's
                    await task
            await end_tab(process, lambda: self.send_meta({"type": "quit"}), self.last_words)

    class ProclabServer(Server):
        """textual-serve's server, behind a token and the Host and Origin checks, on a
        page without a public font service, ending every tab's proclab when it stops."""

        def __init__(self, command: str, **kwargs: Any) -> None:
            super().__init__(command, templates_path=TEMPLATES, **kwargs)
            self.token = secrets.token_urlsafe(32)
            self.hosts = served_hosts(self.public_url, self.host, self.port)

        @property
        def url(self) -> str:
            return f"{self.public_url}/?token={self.token}"

        def initialize_logging(self) -> None:
            quiet_logging()

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            """textual-serve's, with a TabService, the tab's size checked, and one line
            for a tab that went wrong."""
            websocket = web.WebSocketResponse(heartbeat=15)
            size = tab_size(request.query.get("width"), request.query.get("height"))
            service: TabService | None = None
            # Outside the try: a request that is no websocket upgrade is answered 400.
            await websocket.prepare(request)
            try:
                service = TabService(
                    self.command,
                    write_bytes=websocket.send_bytes,
                    write_str=websocket.send_str,
                    close=websocket.close,  # type: ignore[arg-type]  # as textual-serve passes it
                    download_manager=self.download_manager,
                    debug=self.debug,
                )
                await service.start(*(size or DEFAULT_SIZE))
                await self._process_messages(websocket, service)
            except asyncio.CancelledError:  # proclab web is stopping
                await websocket.close()
            except Exception as error:  # a tab gone mid-write, say: one line
                tab_log.warning(f"a tab's connection failed: {type(error).__name__}: {error}")
            finally:
                if service is not None:
                    await service.stop()
            return websocket

        async def _process_messages(self, websocket: web.WebSocketResponse, service: Any) -> None:
            """What the tab's page says, passed on to its proclab; only what textual.js
            sends (web_tabs.tab_message), the rest ignored."""
            async for message in websocket:
                said = tab_message(message.data) if message.type == WSMsgType.TEXT else None
                if said is None:
                    continue
                kind, data = said
                if kind == "stdin":
                    await service.send_bytes(data)
                elif kind == "resize":
                    await service.set_terminal_size(*data)
                elif kind == "ping":
                    await websocket.send_json(["pong", data])
                elif kind == "blur":
                    await service.blur()
                else:
                    await service.focus()

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.append(self._guard)
            # The page's websocket: textual.js adds "?width=…" to the address it is given,
            # so the token goes in the path.
            app.router.add_get("/ws/{token}", self.handle_websocket)
            aiohttp_jinja2.get_env(app).globals["token"] = self.token
            return app

        @web.middleware
        async def _guard(
            self,
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            why = refusal(request, self.hosts, self.token)
            if why is not None:
                raise web.HTTPForbidden(text=f"proclab web: refused: {why}\n")
            return await handler(request)

        async def on_startup(self, app: object) -> None:
            # Not textual-serve's banner, which names the address without its token.
            print(f"proclab web: open {self.url}", flush=True)
            print("proclab web: Ctrl+C stops it and every tab's proclab", flush=True)
            # Ctrl+C and SIGTERM stop it already; a closed SSH session (SIGHUP) too.
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request_exit)

        async def on_shutdown(self, app: object) -> None:
            await asyncio.to_thread(end_sessions, SESSION_END_S)

    return ProclabServer


def run(ns: argparse.Namespace) -> int:
    if ns.host.startswith("[") and ns.host.endswith("]"):  # as a URL writes it: [::1]
        ns.host = ns.host[1:-1]
    if ns.host == "localhost":
        # The address, not the name: where /etc/hosts gives localhost 127.0.0.1 only, the
        # server listened there, while the browser, resolving the printed name itself,
        # went to [::1] first, and another user's server on [::1] got the token.
        ns.host = "127.0.0.1"
    try:
        app_args = check(ns)
    except ProclabError as exc:
        print(f"proclab web: {exc}", file=sys.stderr)
        return 2
    try:
        # Before the warning that it listens, and before the address and its token are
        # printed (aiohttp's start-up, where they are, comes before it binds): with the
        # port taken, the link printed led to whatever held it.
        family = socket.AF_INET6 if ":" in ns.host else socket.AF_INET
        socket.create_server((ns.host, ns.port), family=family).close()
    except OSError as exc:
        # Not os.strerror: a name that does not resolve is a gaierror, whose errno is -2;
        # create_server adds the address its message names already.
        why = (exc.strerror or str(exc)).split(" (while attempting", 1)[0]
        print(f"proclab web: cannot listen on {ns.host}:{ns.port}: {why}", file=sys.stderr)
        return 2
    if not is_loopback(ns.host):
        print(
            f"proclab web: WARNING: listening on {ns.host}: anyone who can reach port {ns.port}"
            " and has the address printed below can start any Python function as you"
            " (the token travels in clear text over http)",
            file=sys.stderr,
        )
        if ns.host in ("0.0.0.0", "::") and not ns.url:
            print(
                f"proclab web: the address printed below names {ns.host}, which another"
                " machine cannot open: put this machine's address (a number) in its place,"
                f" or --url http://THIS-MACHINE:{ns.port} prints one it can",
                file=sys.stderr,
            )
    server = _server_class()(
        app_command(app_args),
        host=ns.host,
        port=ns.port,
        title="proclab",
        # textual-serve writes http://HOST:PORT, which an IPv6 address needs in brackets
        # the token is added as /?token=: a URL ending in / printed //?token=
        public_url=(ns.url or "").rstrip("/")
        or (f"http://{netloc(ns.host, ns.port)}" if ":" in ns.host else None),
    )
    try:
        server.serve()
    except OSError as exc:  # the port is taken, the address is not this machine's
        print(f"proclab web: cannot listen on {ns.host}:{ns.port}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0
