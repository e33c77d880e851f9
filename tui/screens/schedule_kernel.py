"""The scheduling screen's run on the kernel (F5): the job table run as real processes on
one core under SCHED_FIFO, SCHED_RR or SCHED_OTHER, in a thread, measured and drawn beside
the simulation (proclab.core.scheduling.kernel_run does the run).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable

from textual import work
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, ProgressBar, Select, Static

from proclab.core.controller import Controller
from proclab.core.errors import ProclabError
from proclab.core.scheduling.kernel import (
    POLICIES,
    KernelCancelled,
    KernelPlan,
    KernelResult,
    check_rights,
    plan,
)
from proclab.core.scheduling.kernel_run import run as run_on_kernel
from proclab.core.scheduling.simulator import Job, JobProblem, format_time
from proclab.core.source import ProcessSource
from proclab.tui.widgets.schedule_chart import ChartStyle, KernelRenderable, kernel_results


class KernelChartView(Static, can_focus=True):
    """A kernel run's simulated and measured charts."""


class KernelProgress(Message):
    def __init__(self, done: float, text: str) -> None:
        super().__init__()
        self.done = done
        self.text = text


class KernelFinished(Message):
    """The run's result, or why there is none."""

    def __init__(self, result: KernelResult | None, error: str = "") -> None:
        super().__init__()
        self.result = result
        self.error = error


class KernelRuns(ModalScreen[None]):
    """The kernel half of the scheduling screen, which fills in the job table's hooks."""

    def __init__(self, processes: ProcessSource | None) -> None:
        super().__init__()
        self._processes = processes  # runs need it to be proclab's own controller
        self._kernel_result: KernelResult | None = None
        self._kernel_for: tuple[object, ...] | None = None  # what the result was measured on
        self._kernel_cancel: threading.Event | None = None  # set while a run is under way
        self._kernel_drawn: tuple[object, ...] | None = None

    # What the scheduling screen fills in ----------------------------------------------------

    def _row_values(self) -> tuple[tuple[str, str, str, str], ...]:
        """Each job row's four cells, as typed."""
        raise NotImplementedError

    def _check_jobs(self) -> tuple[list[Job], dict[int, list[JobProblem]], str]:
        raise NotImplementedError

    def _style(self, names: Iterable[str]) -> ChartStyle:
        raise NotImplementedError

    # Running ----------------------------------------------------------------------------

    def _kernel_key(self) -> tuple[object, ...]:
        """What a kernel run measures: the jobs, the policy and the unit."""
        return (
            self._row_values(),
            self.query_one("#sched-kernel", Select).value,
            self.query_one("#set-unit", Input).value.strip(),
        )

    def action_run_kernel(self) -> None:
        """Run the job table on the kernel, in a thread; the screen stays live."""
        if self._kernel_cancel is not None:
            self.notify(
                "a run on the kernel is under way (Esc ends it)", severity="warning", markup=False
            )
            return
        controller = self._processes
        if not isinstance(controller, Controller):
            self._kernel_status("Runs on the kernel need proclab's own controller (not a replay).")
            return
        jobs, problems, general = self._check_jobs()
        if general or any(problems.values()):
            self._kernel_status("Nothing run: a job's field is wrong (its error is beside it).")
            return
        policy = str(self.query_one("#sched-kernel", Select).value)
        unit_text = self.query_one("#set-unit", Input).value
        try:
            unit = float(unit_text)
        except ValueError:
            self._kernel_status(f"Unit: not a number of milliseconds: {unit_text.strip()!r}")
            return
        try:
            the_plan = plan(jobs, policy, unit)
            check_rights(the_plan.policy, the_plan.releaser_priority)
        except ProclabError as exc:
            self._kernel_status(f"Nothing run: {exc}")
            return
        self._kernel_result = None
        self._kernel_for = self._kernel_key()
        self._kernel_cancel = threading.Event()
        self.query_one("#kernel-chart", KernelChartView).update("")
        self.query_one("#kernel-results", Static).update("")
        progress = self.query_one("#kernel-progress", ProgressBar)
        progress.update(progress=0)
        progress.display = True
        self._kernel_status(f"Starting {len(jobs)} jobs on CPU {the_plan.core}…")
        self._measure(the_plan, controller, self._kernel_cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="kernel")
    def _measure(
        self, the_plan: KernelPlan, controller: Controller, cancel: threading.Event
    ) -> None:
        def post(message: Message) -> None:
            with contextlib.suppress(RuntimeError):  # the app may be gone (quit mid-run)
                self.post_message(message)

        try:
            result = run_on_kernel(
                the_plan,
                controller,
                progress=lambda done, text: post(KernelProgress(done, text)),
                cancel=cancel,
            )
        except KernelCancelled:
            post(KernelFinished(None, "Cancelled: its jobs were ended."))
        except ProclabError as exc:
            post(KernelFinished(None, f"The run failed: {exc}"))
        except Exception as exc:  # a bug must still end the run on screen, in one line
            post(KernelFinished(None, f"The run failed: {type(exc).__name__}: {exc}"))
        else:
            post(KernelFinished(result))

    def on_kernel_progress(self, message: KernelProgress) -> None:
        if self._kernel_cancel is None:
            return
        with contextlib.suppress(NoMatches):  # the screen is being taken down (quitting)
            self.query_one("#kernel-progress", ProgressBar).update(progress=message.done * 100)
            self._kernel_status(message.text[:1].upper() + message.text[1:])

    def on_kernel_finished(self, message: KernelFinished) -> None:
        self._kernel_cancel = None
        self._kernel_result = message.result
        self._kernel_drawn = None
        with contextlib.suppress(NoMatches):  # the screen is being taken down (quitting)
            self.query_one("#kernel-progress", ProgressBar).display = False
            if message.result is None:
                self._kernel_status(message.error)
            else:
                self._show_kernel()

    def show_kernel_result(self, result: KernelResult, unit_text: str | None = None) -> None:
        """Show a run made earlier (a recorded one) as if just measured on this table."""
        self.query_one("#sched-kernel", Select).value = result.policy
        self.query_one("#set-unit", Input).value = unit_text or format_time(result.unit_ms)
        self._kernel_result = result
        self._kernel_for = None  # taken when it is drawn: see _show_kernel
        self._kernel_drawn = None

    def scroll_to_kernel(self) -> None:
        """Bring the kernel run's box to the top of what scrolls."""
        box = self.query_one("#sched-kernel-box")
        self.call_after_refresh(box.scroll_visible, top=True, animate=False)

    @property
    def kernel_result(self) -> KernelResult | None:
        """The run shown now (None while none is, or it no longer matches the table)."""
        key = self._kernel_key()
        return self._kernel_result if self._kernel_for == key else None

    def _show_kernel(self) -> None:
        if self._kernel_cancel is not None:
            return  # the progress bar is showing
        key = self._kernel_key()
        if self._kernel_result is not None and self._kernel_for is None:
            self._kernel_for = key
        shown = self._kernel_result if self._kernel_for == key else None
        drawn = (key, id(shown), self.app.theme)
        if drawn == self._kernel_drawn:
            return
        self._kernel_drawn = drawn
        chart = self.query_one("#kernel-chart", KernelChartView)
        results = self.query_one("#kernel-results", Static)
        if shown is None:
            chart.update("")
            results.update("")
            policy = POLICIES[str(self.query_one("#sched-kernel", Select).value)]
            again = (
                "The jobs or the kernel settings changed since the last run. "
                if self._kernel_result
                else ""
            )
            self._kernel_status(
                f"{again}F5 runs these jobs as real processes on one core under"
                f" {policy.kernel} ({policy.about}) and measures them beside the simulation."
            )
            return
        style = self._style(r.name for r in shown.simulated.jobs)
        self._kernel_status(
            f"{shown.kind.kernel} on CPU {shown.core}, 1 unit = {format_time(shown.unit_ms)} ms:"
            " measured under the simulation, on one time scale."
        )
        chart.update(KernelRenderable(shown, style))
        results.update(kernel_results(shown, style))

    def _kernel_status(self, text: str) -> None:
        self.query_one("#kernel-status", Static).update(text)
