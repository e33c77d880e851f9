"""`proclab web` in a real browser: headless Chromium (Debian's `chromium` package) opens
the page, the terminal renders the app's panes, a key press in the page spawns a child,
and nothing is left running afterwards.

Chromium is driven through the Chrome DevTools Protocol over a websocket (aiohttp's client,
already installed with textual-serve): no browser driver to download. The page draws the
terminal on a canvas (xterm.js), so its text is read from xterm.js's own buffer: the page
keeps its terminal object in a closure, found with the protocol's Runtime.queryObjects.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import itertools
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from conftest import reap_orphans
from pty_session import PROCLAB, gone
from support import TASKS, free_port, kill_if_running, listening

from proclab.core.server.hosts import is_loopback
from proclab.tui.commands import web as web_cmd

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
    "--window-size=1400,1000",
)
# textual-serve's terminal object: its class has connect/sendSize/fit methods, and it holds
# the xterm.js Terminal as `.terminal`. Searched among every object on the page's heap (the
# heap's order varies, so the test asks for the instance itself, not its class first).
KEEP_TERMINAL = """function () {
    // Reading a property of some heap objects throws: skip those.
    const found = this.find(o => {
        try {
            return typeof o.connect === 'function' && typeof o.sendSize === 'function'
                && typeof o.fit === 'function' && Boolean(o.terminal && o.terminal.buffer);
        } catch (error) { return false; }
    });
    if (found) { window.__proclabTerminal = found.terminal; }
    return Boolean(found);
}"""
SCREEN_TEXT = """(() => {
    const term = window.__proclabTerminal;
    if (!term) { return null; }
    const buffer = term.buffer.active;
    const lines = [];
    for (let y = 0; y < term.rows; y++) {
        const line = buffer.getLine(buffer.viewportY + y);
        lines.push(line ? line.translateToString(true) : '');
    }
    return lines.join('\\n');
})()"""
KEYS = {
    "n": {"key": "n", "code": "KeyN", "windowsVirtualKeyCode": 78, "text": "n"},
    "enter": {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"},
}


def end_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process's group, then SIGKILL what is left of it and of its
    descendants (some may have left the group), and reap the process."""
    try:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
    except psutil.NoSuchProcess:
        family = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.kill()
    process.wait(5)
    psutil.wait_procs(family, timeout=5)
    reap_orphans()


class WebServer:
    """`proclab web` running: its process, the address it printed (with its token), and
    what it has printed (read on a thread, so the pipe never fills)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port
        self.printed: list[str] = []
        self.url = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def all_printed(self) -> str:
        """Everything it printed, once it has ended (proclab_web ends it on leaving)."""
        assert self.process.poll() is not None, "proclab web still runs"
        self.reader.join(10)
        return "".join(self.printed)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace")
            self.printed.append(line)
            found = re.search(r"(http://\S+\?token=\S+)", line)
            if found:
                self.url = found.group(1)

    @property
    def token(self) -> str:
        return self.url.rsplit("token=", 1)[1]

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextlib.asynccontextmanager
    async def tab(self, width: int, height: int) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """A tab's websocket, opened as its page opens it: from its origin, at its size."""
        url = f"ws://127.0.0.1:{self.port}/ws/{self.token}?width={width}&height={height}"
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, headers={"Origin": self.origin}) as ws,
        ):
            yield ws


@contextlib.contextmanager
def proclab_web(
    port: int, *app_args: str, host: str = "127.0.0.1", url: str | None = None
) -> Iterator[WebServer]:
    """`proclab web`; `app_args`: what follows its `--` (each tab's app)."""
    server = WebServer(
        subprocess.Popen(
            [PROCLAB, "web", "--host", host, "--port", str(port)]
            + ([] if is_loopback(host) else ["--public"])
            + (["--url", url] if url else [])
            + (["--", *app_args] if app_args else []),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
        port,
    )
    try:
        deadline = time.monotonic() + 30
        while not (listening(port, host.strip("[]")) and server.url):
            assert server.process.poll() is None, f"proclab web exited: {server.printed}"
            assert time.monotonic() < deadline, f"proclab web never listened: {server.printed}"
            time.sleep(0.1)
        yield server
    finally:
        end_group(server.process)


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's chromium package"
            " (apt-get install -y chromium)"
        )
    browser = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and active.read_text().strip()):
            assert browser.poll() is None, (
                f"chromium exited: {browser.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
            )
            assert time.monotonic() < deadline, "chromium never opened its DevTools port"
            time.sleep(0.1)
        yield browser, int(active.read_text().split()[0])
    finally:
        end_group(browser)


class ProtocolError(Exception):
    """A DevTools command failed (e.g. the page navigated while it ran)."""


class DevTools:
    """Just enough of the Chrome DevTools Protocol: commands on one page's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self.last_error = ""
        self.requested: list[str] = []  # every address the page asked for (Network.enable)

    @classmethod
    @contextlib.asynccontextmanager
    async def page(cls, port: int) -> AsyncIterator[DevTools]:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as answer:
                    targets = await answer.json()
                pages = [t for t in targets if t["type"] == "page"]
                if pages:
                    break
                assert time.monotonic() < deadline, f"chromium has no page: {targets}"
                await asyncio.sleep(0.2)
            async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield cls(ws)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        await self.ws.send_str(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = await asyncio.wait_for(self.ws.receive(), 30)
            assert message.type == aiohttp.WSMsgType.TEXT, f"DevTools closed: {message}"
            reply = json.loads(message.data)
            if reply.get("method") == "Network.requestWillBeSent":
                self.requested.append(reply["params"]["request"]["url"])
            elif reply.get("method") == "Network.webSocketCreated":
                self.requested.append(reply["params"]["url"])
            if reply.get("id") == number:
                if "error" in reply:
                    raise ProtocolError(f"{method}: {reply['error']}")
                return reply["result"]  # type: ignore[no-any-return]

    async def evaluate(self, expression: str) -> Any:
        try:
            result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        except ProtocolError:
            return None  # between two documents
        return result["result"].get("value")

    async def open(self, url: str, timeout: float = 30.0) -> None:
        """Load `url` and wait until the page's terminal got its first bytes."""
        await self.send("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not await self.evaluate(
            "document.readyState === 'complete' && document.body.classList.contains('-first-byte')"
        ):
            assert time.monotonic() < deadline, f"{url} never showed a terminal"
            await asyncio.sleep(0.1)

    async def find_terminal(self) -> bool:
        """Keep the page's xterm.js Terminal as window.__proclabTerminal."""
        try:
            return await self._find_terminal()
        except ProtocolError as exc:
            self.last_error = str(exc)
            return False  # the page changed under the search: try again

    async def _find_terminal(self) -> bool:
        base = await self.send("Runtime.evaluate", expression="Object.prototype")
        objects = await self.send(
            "Runtime.queryObjects", prototypeObjectId=base["result"]["objectId"]
        )
        kept = await self.send(
            "Runtime.callFunctionOn",
            objectId=objects["objects"]["objectId"],
            functionDeclaration=KEEP_TERMINAL,
            returnByValue=True,
        )
        return bool(kept["result"].get("value"))

    async def screen(self) -> str:
        return (await self.evaluate(SCREEN_TEXT)) or ""

    async def wait_for_screen(self, pattern: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            if not await self.evaluate("Boolean(window.__proclabTerminal)"):
                await self.find_terminal()
            text = await self.screen()
            if re.search(pattern, text):
                return text
            await asyncio.sleep(0.2)
        found = await self.evaluate("Boolean(window.__proclabTerminal)")
        raise AssertionError(
            f"{pattern!r} never showed in the browser (terminal found: {found};"
            f" {self.last_error or 'no DevTools error'}); the screen:\n{text}"
        )

    async def press(self, key: str) -> None:
        await self.evaluate("window.__proclabTerminal.focus()")
        spec = KEYS[key]
        await self.send("Input.dispatchKeyEvent", type="keyDown", **spec)
        await self.send(
            "Input.dispatchKeyEvent", type="keyUp", **{k: v for k, v in spec.items() if k != "text"}
        )


def app_processes(server: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The proclab apps textual-serve started, one per browser tab."""
    found = []
    for process in psutil.Process(server.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "proclab.tui.cli" in process.cmdline():
                found.append(process)
    return found


async def test_browser_renders_the_app_and_a_key_spawns_a_child(tmp_path: Path) -> None:
    port = free_port()
    with (
        proclab_web(port) as web,
        chromium(tmp_path / "profile") as (_browser, devtools_port),
    ):
        server = web.process
        async with DevTools.page(devtools_port) as page:
            await page.send("Network.enable")
            await page.open(web.url)
            # The panes: at this window size every pane is on screen, with its title.
            screen = await page.wait_for_screen(r"0 live")
            for title in ("1 Processes", "2 Output", "3 CPU", "4 Server"):
                await page.wait_for_screen(re.escape(title))
            assert "proclab" in screen
            apps = app_processes(server)
            assert len(apps) == 1, f"one proclab per tab, found {apps}"
            before = {p.pid for p in apps[0].children(recursive=True)}
            # n opens the spawn form (greet, the lesson's first call), Enter starts it.
            await page.press("n")
            await page.wait_for_screen(r"Start processes")
            await page.press("enter")
            # "1 live" shows while the row may still be starting, without its pid
            screen = await page.wait_for_screen(r"ForkServerPro(?:cess|…)-1\s+\d+")
            new = {p.pid for p in apps[0].children(recursive=True)} - before
            assert new, f"no child process of the app appeared:\n{screen}"
            # the name as the table shows it: whole, or shortened to fit ("ForkServerPro…-1")
            shown = re.search(r"ForkServerPro(?:cess|…)-1\s+(\d+)", screen)
            assert shown and int(shown.group(1)) in new, (
                f"the table's pid is not the new child's ({new}):\n{screen}"
            )
            # The page asked for nothing from anywhere but this server (no public fonts).
            elsewhere = [
                u
                for u in page.requested
                if not u.startswith((f"http://127.0.0.1:{port}/", f"ws://127.0.0.1:{port}/"))
                and not u.startswith("data:")
            ]
            assert page.requested and not elsewhere, f"the page reached out: {elsewhere}"
            # Stopping `proclab web` (SIGTERM to it alone, as `kill` does) ends the tab's
            # proclab, which ends its children, while the page is still open.
            family = [apps[0], *apps[0].children(recursive=True)]
            server.terminate()
            assert server.wait(40) == 0, "".join(web.printed)[-2000:]
            assert gone(family, timeout=5) == [], "proclab web left processes running"
    # The browser is ended above; the autouse fixture checks that no descendant is left.


async def refused_websocket(session: aiohttp.ClientSession, url: str, **headers: str) -> int:
    """The HTTP status a websocket handshake was refused with (fails if it was accepted)."""
    try:
        async with session.ws_connect(url, headers=headers):
            pass
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    raise AssertionError(f"{url} {headers} was accepted")


async def test_only_the_served_origin_with_the_token_starts_an_app() -> None:
    port = free_port()
    with proclab_web(port) as web:
        base = f"http://127.0.0.1:{port}"
        socket_url = f"ws://127.0.0.1:{port}/ws/{web.token}"
        async with aiohttp.ClientSession() as session:
            # The page: only with the token, and only under this server's own name.
            for path, headers in (
                ("/", {}),
                ("/?token=wrong", {}),
                (f"/?token={web.token}", {"Host": f"evil.example:{port}"}),  # DNS rebinding
                (f"/?token={web.token}", {"Origin": "http://evil.example"}),
                (f"/?token={web.token}", {"Origin": "http://[::1"}),  # answered 500
            ):
                async with session.get(base + path, headers=headers) as answer:
                    assert answer.status == 403, (path, headers)
                    assert "proclab web: refused" in await answer.text()
            # A Host of bytes that are not UTF-8: the refusal itself failed, a 500.
            with socket.create_connection(("127.0.0.1", port)) as raw:
                raw.sendall(b"GET /?token=" + web.token.encode() + b" HTTP/1.1\r\n")
                raw.sendall(b"Host: \xff:" + str(port).encode() + b"\r\n\r\n")
                assert raw.recv(4096).startswith(b"HTTP/1.1 403 ")
            async with session.get(f"{base}/?token={web.token}") as answer:
                assert answer.status == 200
                page = await answer.text()
            # Everything the page loads is on this server: no public font service.
            loaded = re.findall(r'(?:href|src)="([^"]+)"|url\("([^"]+)"\)', page)
            addresses = [a or b for a, b in loaded]
            assert addresses and all(a.startswith(base + "/") for a in addresses), addresses
            assert "googleapis" not in page
            # The websocket: a page from elsewhere, no token, a wrong one: refused, and
            # no app was started for any of them.
            origin = {"Origin": web.origin}
            assert await refused_websocket(session, socket_url, Origin="http://evil.example") == 403
            assert await refused_websocket(session, socket_url, Origin="null") == 403
            assert await refused_websocket(session, f"{base}/ws", **origin) == 403
            assert await refused_websocket(session, f"{base}/ws/wrong", **origin) == 403
            assert (
                await refused_websocket(
                    session,
                    socket_url,
                    Host=f"evil.example:{port}",
                    Origin=f"http://evil.example:{port}",
                )
                == 403
            )
            await asyncio.sleep(1)
            assert app_processes(web.process) == [], "a refused websocket started an app"
            # Both right: served, one app, which draws.
            async with session.ws_connect(socket_url + "?width=80&height=24", headers=origin) as ws:
                drawn = b""
                deadline = time.monotonic() + 60
                while b"live" not in drawn:
                    assert time.monotonic() < deadline, f"the app drew nothing: {drawn[-500:]!r}"
                    message = await ws.receive(timeout=60)
                    if message.type == aiohttp.WSMsgType.BINARY:
                        drawn += message.data
                assert len(app_processes(web.process)) == 1


async def drawn_until(ws: aiohttp.ClientWebSocketResponse, text: bytes) -> bytes:
    """What the tab's app drew, until `text` is among it."""
    drawn = b""
    deadline = time.monotonic() + 60
    while text not in drawn:
        assert time.monotonic() < deadline, f"never drew {text!r}: {drawn[-500:]!r}"
        message = await ws.receive(timeout=60)
        if message.type == aiohttp.WSMsgType.BINARY:
            drawn += message.data
    return drawn


def below(process: psutil.Process, ancestor: psutil.Process) -> bool:
    try:
        return ancestor in process.parents()
    except psutil.Error:  # gone meanwhile
        return False


def running(script: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if any(script in word for word in process.cmdline()):
                found.append(process)
    return found


async def test_a_tab_watches_its_own_run_of_a_program_and_closing_it_ends_the_run() -> None:
    port = free_port()
    script = str(EXAMPLES / "ten_sleepers.py")
    with proclab_web(port, "watch", script, "fork", "60") as web:
        async with web.tab(160, 48) as ws:
            # The tab shows the program's tree: its children, named by their Process.name.
            await drawn_until(ws, b"Process-10")
            (tab,) = app_processes(web.process)
            # Below the tab: another test may run the same example meanwhile.
            tree = [p for p in running(script) if p.pid != tab.pid and below(p, tab)]
            assert len(tree) == 11, [p.cmdline() for p in tree]  # the script and its ten
        # The tab closed: its app ended the run it watched.
        assert gone(tree, timeout=40) == [], "closing the tab left the watched program running"


async def test_a_tab_whose_process_ended_since_says_so_in_the_tab() -> None:
    """`web -- attach PID` checks PID once, at its start; a tab opened after PID ended
    stayed blank, and the one line saying why went to proclab web's terminal only."""
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        with proclab_web(free_port(), "attach", str(sleeper.pid)) as web:
            sleeper.kill()
            sleeper.wait(10)
            async with web.tab(100, 30) as ws:
                await drawn_until(ws, f"no process {sleeper.pid}".encode())
                tab = app_processes(web.process)
                await ws.send_json(["stdin", "q"])
                # q ends the session: the tab's app exits
                await asyncio.wait_for(_closed(ws), timeout=30)
            assert len(tab) == 1 and gone(tab, timeout=30) == []
        # What the tab's proclab wrote on its stderr came raw onto the server's terminal.
        printed = web.all_printed()
        assert all(line.startswith("proclab web: ") for line in web.printed), printed
    finally:
        kill_if_running(sleeper)


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> None:
    while not ws.closed:
        await ws.receive()


async def test_a_tab_s_proclab_ends_its_children_when_proclab_web_is_killed() -> None:
    """SIGKILL of proclab web closed each tab's pipes, and Textual's web driver stopped
    reading them, but the app ran on with its children (8 minutes later, still there)."""
    port = free_port()
    args = (f"{TASKS}:sleep", "--args", "(120,)", "--count", "2", "--method", "fork")
    with proclab_web(port, *args) as web:
        async with web.tab(120, 32) as ws:
            await drawn_until(ws, b"2 live")
            (tab,) = app_processes(web.process)
            family = [tab, *tab.children(recursive=True)]
            assert len([p for p in family[1:] if "tasks:sleep" in " ".join(p.cmdline())]) == 2
            web.process.kill()
            web.process.wait(10)
        # SIGTERM for the tab's app, which ends its children as for any SIGTERM
        assert gone(family, timeout=30) == [], "killing proclab web left a tab's app running"


@pytest.mark.parametrize("delays", [(0.0, 0.0, 0.01, 0.02), (0.05, 0.1, 0.2, 0.3)])
async def test_a_tab_closed_as_it_opens_ends_its_proclab_and_children(
    delays: tuple[float, ...],
) -> None:
    """A tester's: a tab closed within 20 ms of opening left its proclab and children
    running until proclab web stopped (its handler was cancelled between the app's start
    and its loop's, and the stop found no loop to end); one closed 0.05-0.3 s after it
    opened crashed its proclab ("NoMatches: No nodes match '#filter'", in the log)."""
    port = free_port()
    args = (f"{TASKS}:sleep", "--args", "(120,)", "--count", "2", "--method", "fork")
    with proclab_web(port, *args) as web:
        for delay in delays:
            async with web.tab(80, 24) as ws:
                await ws.send_str('["resize", {"width": 80, "height": 24}]')
                await asyncio.sleep(delay)
        deadline = time.monotonic() + 30
        while app_processes(web.process) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert app_processes(web.process) == [], "a closed tab's proclab runs on"
    assert "NoMatches" not in web.all_printed(), web.all_printed()


def test_ending_the_tabs_leaves_each_tab_s_status_to_its_owner() -> None:
    """SIGTERM of proclab web printed "Unknown child process pid 29942, will report
    returncode 255" and "a tab's proclab ended with status 255" (2 of 3 runs, a tab open
    12 s): ending the tabs reaped them (psutil.wait_procs), so asyncio, which started them
    for textual-serve, found no status and made one up."""
    # Tabs' apps as _sessions finds them (their command lines name the app's module): one
    # that ends on SIGTERM, one that ignores it and is killed.
    ready = "print(flush=True); import time; time.sleep(60)"
    scripts = (ready, "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + ready)
    tabs = [
        subprocess.Popen([sys.executable, "-c", script, web_cmd.APP_MODULE], stdout=subprocess.PIPE)
        for script in scripts
    ]
    try:
        for tab in tabs:
            assert tab.stdout is not None and tab.stdout.readline() == b"\n"  # ready
        web_cmd.end_sessions(timeout=0.5)
        # The statuses are still there for their owner to read: neither was reaped.
        for tab, status in zip(tabs, (-signal.SIGTERM, -signal.SIGKILL), strict=True):
            try:
                found = os.waitid(os.P_PID, tab.pid, os.WEXITED | os.WNOHANG)
            except ChildProcessError:
                pytest.fail(
                    f"end_sessions reaped {tab.pid}: its owner would never see how it ended"
                )
            assert found is not None, f"{tab.pid} still runs"
            code = found.si_status if found.si_code == os.CLD_EXITED else -found.si_status
            assert code == status
    finally:
        for tab in tabs:
            kill_if_running(tab)


def _raw_request(port: int, head: bytes) -> bytes:
    """One HTTP request as bytes, whatever they are; the server's answer (b"" if it reset
    the connection, as it may with a request it stopped reading)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        try:
            client.sendall(head)
            return client.recv(4096)
        except ConnectionResetError:
            return b""


async def test_bad_requests_and_tab_messages_are_one_line_and_leave_the_tab_running() -> None:
    """A request aiohttp cannot parse printed a traceback with its locals on proclab web's
    terminal, and every request line was printed with the token in it. A tab's page that
    sent a resize to -5 columns ended its proclab; `[]` or `notjson` printed tracebacks."""
    port = free_port()
    with proclab_web(port, f"{TASKS}:sleep", "--args", "(60,)") as web:
        host = f"Host: 127.0.0.1:{port}\r\n".encode()
        hostile = (
            b"GET / HTTP/1.1\r\n\r\n",  # no Host
            b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: A\x1b]0;PWNED\x07\r\n\r\n",
            # a websocket's address, with the token, but no upgrade: no answer at all
            f"GET /ws/{web.token} HTTP/1.1\r\n".encode() + host + b"\r\n",
            # a size of 5,000 digits: int() raises past 4,300
            f"GET /ws/{web.token}?width={'9' * 5000} HTTP/1.1\r\n".encode() + host + b"\r\n",
        )
        for head in hostile:
            assert _raw_request(port, head).split(b" ")[1:2] == [b"400"], head[:60]
        big = _raw_request(port, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        assert big == b"" or big.split(b" ")[1] == b"400", big
        async with web.tab(100, 30) as ws:
            await drawn_until(ws, b"1 live")
            (tab,) = app_processes(web.process)
            for message in ("notjson", "[]", '["stdin", 5]', '["resize", 5]'):
                await ws.send_str(message)
            await ws.send_json(["resize", {"width": -5, "height": -5}])
            await ws.send_json(["resize", {"width": 100, "height": 30}])
            await ws.send_json(["stdin", "n"])  # the spawn form: the tab still answers keys
            await drawn_until(ws, b"Start processes")
            assert app_processes(web.process) == [tab]
    printed = web.all_printed()
    assert "Traceback" not in printed and "\x1b" not in printed, printed
    assert printed.count(web.token) == 1, "the token was printed again"
    assert all(line.startswith("proclab web: ") for line in web.printed), printed


def _writing_to_a_full_pipe(process: psutil.Process) -> bool:
    """One of the process's threads waits to write to a pipe nobody reads."""
    for thread in process.threads():
        with contextlib.suppress(OSError):
            if "pipe_write" in Path(f"/proc/{process.pid}/task/{thread.id}/wchan").read_text():
                return True
    return False


async def test_a_tab_that_stops_reading_ends_with_its_children_once_it_is_gone() -> None:
    """A tab that stops reading (a dropped network, a suspended laptop): textual-serve's
    loop waited on it for good, the tab's app blocked on its full pipe, and once the tab
    was gone neither the app nor its children ever ended."""
    port = free_port()
    args = (f"{TASKS}:tick", "--args", "(20,)", "--count", "2", "--method", "fork")
    with proclab_web(port, *args) as web:
        tab_socket = socket.socket()
        tab_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            tab_socket.connect(("127.0.0.1", port))
            key = base64.b64encode(os.urandom(16)).decode()
            tab_socket.sendall(
                f"GET /ws/{web.token}?width=200&height=60 HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nOrigin: {web.origin}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            deadline = time.monotonic() + 60
            while not (tabs := app_processes(web.process)):
                assert time.monotonic() < deadline, "no tab's app started"
                time.sleep(0.1)
            (tab,) = tabs
            # Its children print every 20 ms: the app draws, and nothing reads what it draws.
            while not _writing_to_a_full_pipe(tab):
                assert time.monotonic() < deadline, "the tab's app never filled its pipe"
                time.sleep(0.2)
            family = [tab, *tab.children(recursive=True)]
            assert len([p for p in family[1:] if "tasks:tick" in " ".join(p.cmdline())]) == 2
        finally:
            tab_socket.close()
        # Its proclab quits once what it draws is read (and dropped): 30 s at most, then
        # SIGTERM, and SIGKILL 5 s later.
        assert gone(family, timeout=60) == [], "a tab gone while stalled left its app running"


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_on_ipv6_loopback_the_printed_address_opens_the_page(host: str) -> None:
    """`--host ::1` printed http://::1:PORT/..., which no browser opens, and the page named
    its script and websocket so too; `--host [::1]` was refused as not loopback."""
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    port = free_port()
    with proclab_web(port, host=host) as web:
        assert web.url.startswith(f"http://[::1]:{port}/?token="), web.url
        with urllib.request.urlopen(web.url, timeout=10) as page:
            body = page.read().decode()
        assert f"ws://[::1]:{port}/ws/{web.token}" in body
        assert f"http://[::1]:{port}/static/" in body and "://::1:" not in body


def test_localhost_is_served_and_printed_as_its_address() -> None:
    """`--host localhost` printed http://localhost:PORT/?token=... while listening on
    127.0.0.1 only (as /etc/hosts maps it here): a browser resolving the name itself goes
    to [::1] first, where another local user's server was handed the token."""
    port = free_port()
    with proclab_web(port, host="localhost") as web:
        assert web.url.startswith(f"http://127.0.0.1:{port}/?token="), web.url
        with urllib.request.urlopen(web.url, timeout=10) as page:
            assert page.status == 200


def test_a_loopback_address_written_as_ipv6_is_loopback() -> None:
    """`--host ::ffff:127.0.0.1` was refused as "reachable from other machines"."""
    assert is_loopback("::ffff:127.0.0.1") and not is_loopback("::ffff:10.0.0.1")
    # the short form every resolver reads as 127.0.0.1 was refused the same way
    assert is_loopback("127.1") and not is_loopback("10.1") and not is_loopback("999.1")
    # and its hexadecimal spelling (a tester's: 0x7f.1 was called reachable)
    assert is_loopback("0x7f.1") and is_loopback("0X7F.0.0.1") and not is_loopback("0x0a.1")
    assert not is_loopback("0x.1") and not is_loopback("0xg.1")


def test_on_port_80_the_names_a_browser_sends_without_a_port_are_served() -> None:
    """On --port 80 http://localhost/ was refused ("not localhost"): a browser sends
    "Host: localhost", and only "localhost:80" was allowed."""
    hosts = web_cmd.served_hosts("http://127.0.0.1", "127.0.0.1", 80)
    assert {"localhost", "127.0.0.1", "[::1]", "localhost:80"} <= hosts.names
    assert "localhost" not in web_cmd.served_hosts("http://127.0.0.1:8080", "127.0.0.1", 8080).names


@pytest.mark.parametrize(
    ("host", "said"),
    [
        ("999.1.1.1", "is not an IP address"),
        ("203.0.113.9", "is not an address of this machine"),
    ],
)
def test_a_host_written_as_an_address_that_is_none_of_this_machine_s_is_said_so(
    host: str, said: str
) -> None:
    """Each was told it "is reachable from other machines ... pass --public" (and
    203.0.113.9, with --public, that it is not an address of this machine)."""
    done = subprocess.run(
        [PROCLAB, "web", "--host", host, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"proclab web: host: {host} {said}\n"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (
            "\x1b]0;pwned\x07\x1b[2J",
            "url: '\\x1b]0;pwned\\x07\\x1b[2J' has characters a URL cannot hold",
        ),
        ("javascript:alert(1)", "url: 'javascript:alert(1)' is not an http:// or https:// address"),
        ("http://", "url: 'http://' is not an http:// or https:// address with a host"),
        ("http://x y/", "url: 'http://x y/' has characters a URL cannot hold"),
        # a Host no browser sends; the token in a fragment no browser sends
        ("http://me@host:8000", "url: 'http://me@host:8000' has a user, a query or a fragment"),
        ("http://h:8000/?x=1#f", "url: 'http://h:8000/?x=1#f' has a user, a query or a fragment"),
    ],
)
def test_a_url_that_is_no_address_is_refused_before_serving(url: str, said: str) -> None:
    """--url was printed as given (its escape sequences cleared the user's screen) and
    served; one without a host put '' among the hosts the server answers to."""
    done = subprocess.run(
        [PROCLAB, "web", "--port", str(free_port()), "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == "" and "\x1b" not in done.stderr
    assert done.stderr.startswith(f"proclab web: {said}") and done.stderr.count("\n") == 1


def test_a_url_ending_in_a_slash_prints_an_address_that_opens() -> None:
    """`--url http://HOST:PORT/` printed http://HOST:PORT//?token=..."""
    port = free_port()
    with proclab_web(port, url=f"http://127.0.0.1:{port}/") as server:
        assert server.url.startswith(f"http://127.0.0.1:{port}/?token="), server.url
        with urllib.request.urlopen(server.url, timeout=10) as page:
            assert page.status == 200


def test_a_watch_that_cannot_start_is_refused_before_serving() -> None:
    for app_args, said in (
        (["watch", "no-such-script.py"], "no-such-script.py: no such file"),
        (["watch", "--headless", str(EXAMPLES / "ten_sleepers.py")], "--headless"),
        (["attach", "not-a-pid"], "'not-a-pid' is not a process id"),
        # every tab opened to say "past the limit of 256", once the server served
        ([f"{TASKS}:sleep", "--count", "300"], "count: 300 children at once are past the limit"),
    ):
        done = subprocess.run(
            [PROCLAB, "web", "--port", str(free_port()), "--", *app_args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done
        (line,) = done.stderr.splitlines()
        assert line.startswith("proclab web: ") and said in line, line
        assert done.stdout == ""


def test_a_port_taken_is_one_line_and_no_address_is_printed() -> None:
    """The address and its token were printed (aiohttp's start-up comes before it binds),
    then 'address already in use': the link led to whatever held the port."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [PROCLAB, "web", "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    assert done.stdout == "", done.stdout
    assert (
        done.stderr == f"proclab web: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_the_same_complaint_is_logged_at_most_once_a_second_with_a_count() -> None:
    """Out of file descriptors, asyncio logs every accept it cannot make: 6,892 lines on
    the terminal in a tester's run of `proclab web`."""
    from proclab.tui.commands.web_tabs import OncePerSecond, OneLine

    spaced, line = OncePerSecond(every=0.3), OneLine()

    def record(message: str) -> logging.LogRecord:
        error = OSError(24, "Too many open files")
        return logging.LogRecord(
            "asyncio", logging.ERROR, "", 0, message, (), (OSError, error, None)
        )

    shown = [
        r
        for r in (record("socket.accept() out of system resource") for _ in range(500))
        if spaced.filter(r)
    ]
    assert len(shown) == 1 and "more like it" not in line.format(shown[0])
    assert spaced.filter(record("another complaint"))  # another kind is not held back
    time.sleep(0.35)
    again = record("socket.accept() out of system resource")
    assert spaced.filter(again)
    assert line.format(again).endswith("(499 more like it since the last one shown, held back)")


def test_complaints_held_back_when_nothing_follows_are_said_as_the_log_closes() -> None:
    """A burst of complaints followed by none: its count was never said."""
    from proclab.tui.commands.web_tabs import OncePerSecond, OneLine, SaysHeldBack

    said = io.StringIO()
    handler = SaysHeldBack(said)
    handler.setFormatter(OneLine())
    handler.addFilter(OncePerSecond())
    log = logging.getLogger("proclab-test-held-back")
    log.addHandler(handler)
    log.propagate = False
    try:
        for _ in range(40):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                log.exception("socket.accept() out of system resource")
        log.error("another complaint")
        # what waits is its words, not its exception: that holds every frame's locals
        assert all(r.exc_info is None for r in handler.filters[0]._last_held.values())
    finally:
        log.removeHandler(handler)
        handler.close()
    assert said.getvalue().splitlines() == [
        "proclab web: socket.accept() out of system resource"
        " (OSError: [Errno 24] Too many open files)",
        "proclab web: another complaint",
        "proclab web: socket.accept() out of system resource"
        " (OSError: [Errno 24] Too many open files)"
        " (38 more like it since the last one shown, held back)",
    ]


async def test_on_every_address_it_answers_to_this_machine_s_own_by_number() -> None:
    """`--host 0.0.0.0 --public` refused every Host but "0.0.0.0:PORT", which no browser
    on another machine can open: this machine's addresses by number are answered (no
    other site's page can send one, as a name made to point here can), names are not."""
    port = free_port()
    others = [
        a.address
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]
    own = others[0] if others else "127.0.0.1"  # a machine with its loopback alone
    with proclab_web(port, host="0.0.0.0") as web:
        async with aiohttp.ClientSession() as session:
            page = f"http://127.0.0.1:{port}/?token={web.token}"
            for host, status in ((f"{own}:{port}", 200), (f"127.0.0.1:{port}", 200),
                                 (f"evil.example:{port}", 403)):  # fmt: skip
                async with session.get(page, headers={"Host": host}) as answer:
                    said = await answer.text()
                    assert answer.status == status, (host, said)
            # The refusal does not list every address of the machine (docker's, a VPN's)
            # to whoever asks with a wrong Host (a reviewer's).
            assert (own == "127.0.0.1" or own not in said) and "own addresses" in said, said


def test_a_public_address_that_is_not_this_machine_s_is_refused_before_any_warning() -> None:
    """It warned that anyone could reach it there, then said it could not listen there."""
    done = subprocess.run(
        [PROCLAB, "web", "--host", "192.0.2.123", "--public", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == "proclab web: host: 192.0.2.123 is not an address of this machine\n"
