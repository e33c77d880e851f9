"""`proclab demo`: a scenario (core/scenario.py) played in the real app, for a recording.

The steps drive the same controller and the same actions a person would; only the
keyboard changes meaning while it plays: any key pauses or resumes, q (or Ctrl+Q, Ctrl+C)
ends the demo and proclab, leaving nothing running.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import events
from textual.css.query import NoMatches
from textual.widgets import Static

from proclab.core.batch import batch_figures
from proclab.core.errors import ProclabError
from proclab.core.output import on_screen
from proclab.core.scenario import Scenario, Step
from proclab.core.server.echo_client import run_load
from proclab.core.server.tcp import ServerConfig, ServerError
from proclab.core.source import ProcessSource, ServerLike
from proclab.tui.app import ProclabApp
from proclab.tui.batch_words import batch_lines
from proclab.tui.screens.dialogs import ConfirmScreen, PromptScreen
from proclab.tui.screens.lab import LabScreen
from proclab.tui.screens.shutdown import ShutdownScreen

if TYPE_CHECKING:
    from proclab.core.defaults import StartMethod
    from proclab.core.server.tcp import Mode

TICK_S = 0.05  # how often a wait looks at the pause key
DIALOGS = (ShutdownScreen, ConfirmScreen, PromptScreen)  # they keep to themselves


class DemoCaption(Static):
    DEFAULT_CSS: ClassVar[str] = """
    DemoCaption {
        dock: top;
        height: auto;
        padding: 0 1;
        background: $accent;
        color: $text;
        text-style: bold;
    }
    """


class DemoApp(ProclabApp):
    """The app with a scenario playing in it."""

    def __init__(
        self, source: ProcessSource, scenario: Scenario, speed: float = 1.0, **options: Any
    ) -> None:
        super().__init__(source, **options)
        self.scenario = scenario
        self.speed = speed
        self.step_index = -1  # the step playing now
        self.done = False
        self._resume = asyncio.Event()
        self._resume.set()
        self._said = ""
        self._spawned_last: tuple[int, ...] = ()  # by the last spawn step, for a join step

    @property
    def caption(self) -> DemoCaption:
        return self.lab.query_one("#demo-caption", DemoCaption)

    async def on_lab_screen_ready(self, _message: LabScreen.Ready) -> None:
        await self.lab.mount(DemoCaption(id="demo-caption", markup=False))
        self._caption()  # a key may have paused the demo already
        self.run_worker(self._play(), name="demo", exclusive=True)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded and not self.done:
            event.stop()
            event.prevent_default()
            if event.key in ("q", "ctrl+q", "ctrl+c"):
                self._finish("demo ended")
                self.shut_down("Demo ended: ending every child and quitting…")
            elif self._resume.is_set():
                self._resume.clear()
                self._caption()
            else:
                self._resume.set()
                self._caption()
            return
        await super().on_event(event)

    # Playing ------------------------------------------------------------------------------

    async def _play(self) -> None:
        total = len(self.scenario.steps)
        for index, step in enumerate(self.scenario.steps):
            if self.done:
                return
            await self._resume.wait()
            self.step_index = index
            if step.say is not None:
                self._said = f"{index + 1}/{total}  {step.say}"
                self._caption()
            try:
                await self._do(step)
                self._caption()  # with what the step found (a join's time, the echoes)
            except ProclabError as exc:  # e.g. the port is taken: say so, play on
                self.notify(f"demo step at line {step.line}: {exc}", severity="error", markup=False)
            except Exception as exc:  # a bug must not take the app (and its children) down
                self.notify(
                    f"demo step at line {step.line} failed: {type(exc).__name__}: {exc}",
                    severity="error",
                    markup=False,
                )
            await self._wait(step.wait)
        self._finish(f"{self.scenario.title}: the end. The app is yours now (q quits).")

    def _finish(self, text: str) -> None:
        self.done = True
        self._resume.set()
        self._said = text
        self._caption()

    def _caption(self) -> None:
        # Paused says so whatever redraws the caption: a step that was under way when the
        # key came redraws it when it ends (CI saw the word lost that way).
        paused = not self._resume.is_set() and not self.done
        extra = "paused: any key resumes, q ends the demo" if paused else None
        text = on_screen(f"{self._said}   [{extra}]" if extra else self._said)
        try:
            caption = self.caption
        except NoMatches:  # a key before the lab was ready: said once the caption is there
            return
        caption.update(text or on_screen(self.scenario.title))
        screen = self.screen
        if screen is not self.lab and screen.is_mounted and not isinstance(screen, DIALOGS):
            # a screen a step opened shows the caption too
            try:
                on_top = screen.query_one("#demo-caption", DemoCaption)
            except NoMatches:
                on_top = DemoCaption(id="demo-caption", markup=False)
                screen.mount(on_top)
            on_top.update(text or on_screen(self.scenario.title))

    async def _wait(self, seconds: float) -> None:
        left = seconds / self.speed
        while not self.done and left > 0:
            await self._resume.wait()  # a pause stops the clock of the wait too
            began = time.monotonic()
            await asyncio.sleep(min(TICK_S, left))
            if self._resume.is_set():  # a slice a pause began in does not count at all
                left -= time.monotonic() - began

    async def _do(self, step: Step) -> None:
        source, lab = self.source, self.lab
        match step.action:
            case "spawn":
                spec = step.spec
                assert spec is not None
                # starting spawn children takes a while: off the loop, as the form does
                ids = await asyncio.to_thread(source.spawn, spec, step.count)
                self._spawned_last = ids
                lab.refresh_rows()
                lab.spawned(ids)
            case "join":
                # The children of the last spawn step (every live one if none): the caption
                # times them, from the first one's start to the last one's end.
                ids = self._spawned_last or tuple(r.id for r in source.rows() if r.state.is_live)
                await source.join_async(ids)
                rows = [source.row(i) for i in ids]
                figures = batch_figures(rows, lab.clock(), source.usable_cpus())
                said = ". ".join(line[0].upper() + line[1:] for line in batch_lines(figures))
                self._said += f"  Joined: {said}."
            case "show":
                await self._show(step.target or "procs")
            case "server":
                await asyncio.to_thread(self._serve, step)
                if step.target == "start":
                    await self._show("server")
            case "clients":
                server = self._server()
                if not server.running:
                    raise ProclabError('clients need the server: add a server = "start" step')
                status = server.status()
                host, _, port = status.address.rpartition(":")
                result = await run_load(host, int(port), step.count, step.messages)
                self._said += f"  {result.messages} echoes, {len(result.errors)} errors."
            case "schedule":
                from proclab.tui.screens.schedule import ScheduleScreen

                await self._back_to_main()
                await self.push_screen(
                    ScheduleScreen(preset=step.target or "stallings", processes=source)
                )
            case "terminate":
                for row in source.rows():
                    if row.state.is_live:
                        lab.run_command(functools.partial(source.terminate, row.id))
            case "clear":
                await self._back_to_main()
                lab.run_command(source.clear_exited)

    def _server(self) -> ServerLike:
        server = self.source.server
        if server is None:
            raise ProclabError("this source has no TCP server")
        return server

    def _serve(self, step: Step) -> None:
        server = self._server()
        if step.target == "stop":
            server.stop()
            return
        config = ServerConfig(
            mode=cast("Mode", step.mode), method=cast("StartMethod", self.lab.default_method)
        )
        try:
            server.start(config)
        except ServerError:
            if server.running:
                raise
            server.start(replace(config, port=0))  # the lesson's port is taken: any free one

    async def _show(self, target: str) -> None:
        await self._back_to_main()
        if target == "details":
            self.lab.action_details()
        elif target == "timeline":
            self.lab.action_timeline()
        else:
            self.lab.action_pane(target)
        await self.screen.wait_for_refresh()  # drawn once, so the caption can join it

    async def _back_to_main(self) -> None:
        while len(self.screen_stack) > 1:
            # a screen popped while its widgets still mount trips them up (at a fast pace)
            await self.screen.wait_for_refresh()
            await self.pop_screen()
