"""The help screen: every key, and how to read what proclab shows."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from typing import ClassVar

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from proclab.core.batch import BATCH_RULE
from proclab.core.calls import EXIT_RULE, JOIN_RULE, START_RULE, TASKS_RULE
from proclab.core.classify import CPU_BOUND_DEMAND, MIN_WALL_S
from proclab.core.scheduling.simulator import TIE_RULES
from proclab.core.timeline import RUNNING_RULE, WAITING_RULE
from proclab.tui.theme import resolve


def _indented(text: str, label: str = "") -> str:
    """A rule's one-line text as a help entry: its label, then lines indented under it."""
    return textwrap.fill(label.ljust(10) + text, 88, subsequent_indent=" " * 10)


READING = f"""\
Target    module:function or file.py:function. proclab checks the call without running
          the file; each child imports it: its top-level code runs in every child, its
          if __name__ == '__main__': block never does (a top-level Process.start() fails
          the child, with the line to put under that guard).
States    starting: start() was asked for, the OS has not made the process yet
          running / sleeping / stopped / zombie: what the kernel reports now
          exited: ended with exit code 0      failed: another exit code (an uncaught
          exception gives 1; its traceback is in the log and the details)
          terminated: ended by SIGTERM        killed: ended by SIGKILL or another signal
Exit      the exit code, or -N and the signal's name (-15 SIGTERM, -9 SIGKILL)
Kind      CPU-bound if, over its life so far, it wanted a CPU (ran on one, or waited in a
          run queue for one) at least {CPU_BOUND_DEMAND:.0%} of the time; otherwise I/O-bound
          (mostly blocked: sleeping, waiting on I/O). Time it spent stopped (paused) is
          left out of its life. Blank for its first {MIN_WALL_S:g} s.
          Its context switches tell the same story: a CPU-bound child is mostly
          preempted (involuntary), an I/O-bound one mostly gives the CPU up (voluntary).
Core      the CPU it last ran on        CPU%   of one core, over the last tick
CPU/wall  CPU time / wall time over its life so far (100%: on a CPU all along)
Ctx       context switches, voluntary (gave the CPU up) / involuntary (preempted)
Pinned    the CPUs it may run on (affinity); blank: any
Output    each line under the name and pid of the child whose output it is; ↳ after the
          pid: printed once that child had ended, by a process it started that kept its
          output (a grandchild); ↪ before a line: it goes on from the piece before
Runtime   wall time since start() returned (until it was reaped)
{_indented(BATCH_RULE, "Batch")}
CPU pane  each core's load now and over about a minute, on a fixed 0-100 % scale
Quitting  proclab ends its children: SIGTERM, then SIGKILL after a grace period
          for those that ignore it. None is left behind.
"""

WATCHING = f"""\
Tree      proclab watch: each process of the program under its parent (F5: flat)
{_indented(START_RULE, "start()")}
{_indented(JOIN_RULE, "join()")}
{_indented(EXIT_RULE, "Exit")}
{_indented(TASKS_RULE, "Pool")}
"""

SCHEDULING = f"""\
Schedule  g: the CPU scheduling simulator. FCFS, SJF, SRTF, round
          robin, priority and MLFQ on jobs you type, a preset or a CSV
          file (name,arrival,burst[,priority]); F5 there runs them on
          the real kernel, measured beside the simulation; headless:
          proclab schedule [--real].
Chart     the CPU lane shows which job ran when (· idle, × switch);
          under it each job's row: its colour while it runs, · while
          it has arrived and waits. Below: each slice, exact times.
{TIE_RULES}"""

_TIMELINE_CELLS = _indented(
    f"0█ = on core 0: {RUNNING_RULE}; the bar is its share of the tick on a CPU (its"
    " CPU-time growth / the tick), the digit the core at the tick's end."
    f" W: {WAITING_RULE}; · sleeping, T stopped, Z zombie, X ended."
)

SEEING = f"""Timeline  l: one row per child, one column per sampler tick, newest at the right.
{_TIMELINE_CELLS}
          Parallel: different digits in the same column, full bars. Concurrent (e.g.
          pinned to one core with --affinity 0): the same digit, partial bars.
Experiments  e: real processes, measured now: parallel (N copies at once vs one
          after another: speed-up, efficiency), start-methods (fork, forkserver,
          spawn: start latency), cpu-vs-io (speed-up per N: I/O keeps gaining, CPU
          stops near the core count). ctrl+r runs, ctrl+o / ctrl+s export JSON / CSV;
          `proclab experiment NAME --json` does it headless.
"""


class Hanging:
    """Help text as written (a label, then lines under the label's column) drawn in two
    columns: where its lines fit they are kept as written; on a narrower screen each
    label's lines become one paragraph, wrapped under its own start, not under the label
    (at 80 columns the text lost its indent). str() is the text itself."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.entries: list[tuple[str, list[str]]] = []
        for line in text.splitlines():
            labelled = re.match(r"(\S+(?: \S+)*)(?:\s{2,}(.*))?$", line)
            if labelled and not line[0].isspace():
                self.entries.append((labelled[1], [labelled[2] or ""]))
            elif self.entries:
                self.entries[-1][1].append(line.strip())
            else:
                self.entries.append(("", [line.strip()]))

    def __str__(self) -> str:
        return self.text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        as_written = max(map(len, self.text.splitlines()), default=0) <= options.max_width
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column()
        for label, lines in self.entries:
            if as_written:
                for index, line in enumerate(lines):
                    grid.add_row("" if index else label, Text(line))
            else:
                for index, paragraph in enumerate(_paragraphs(lines)):
                    grid.add_row("" if index else label, Text(paragraph))
        yield grid


# An item of a list under one label ("exited: ended with exit code 0"), or one of two side
# by side: joined into one paragraph at 80 columns, the States read "the OS has not made
# the process yet running / sleeping / stopped / zombie: what the kernel reports now
# exited: …".
_ITEM = re.compile(r"[A-Za-z][\w /%-]*: ")
_SIDE_BY_SIDE = re.compile(r"\s{4,}")


def _paragraphs(lines: list[str]) -> list[str]:
    """A label's lines as paragraphs to wrap: a line goes on from the one before it unless
    it begins an item, and items side by side on one line are apart."""
    paragraphs: list[str] = []
    for line in lines:
        for index, part in enumerate(_SIDE_BY_SIDE.split(line.strip())):
            part = " ".join(part.split())
            if paragraphs and index == 0 and not _ITEM.match(part):
                paragraphs[-1] += " " + part
            elif part:
                paragraphs.append(part)
    return paragraphs


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(
        self,
        sections: Iterable[tuple[str, Iterable[Binding]]],
        texts: Iterable[str] = (READING, WATCHING, SCHEDULING, SEEING),
        heading: str = "proclab: keys (escape closes)",
    ) -> None:
        super().__init__(classes="dialog")
        self._sections = [(title, list(bindings)) for title, bindings in sections]
        self._texts = tuple(texts)
        self._heading = heading

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog-box", id="help-box"):
            yield Static(self._keys(), id="help-keys", markup=False)
            for index, text in enumerate(self._texts):
                yield Static(
                    Hanging(text),
                    id="help-reading" if index == 0 else None,
                    classes="help-text",
                    markup=False,
                )

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = self._heading

    def _keys(self) -> Table:
        key_style = resolve(self.app, "bold $accent")
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(ratio=1)
        for title, bindings in self._sections:
            table.add_row(Text(title, style="bold"), "")
            # One line a key: a key whose action turns with the state (the log's f, the
            # footer saying which) was listed once for each.
            said: dict[str, list[str]] = {}
            for binding in bindings:
                keys = ", ".join(
                    _function_key(self.app.get_key_display(Binding(k.strip(), "")))
                    for k in binding.key.split(",")
                )
                said.setdefault(keys, []).append(binding.tooltip or binding.description)
            for keys, words in said.items():
                rest = "".join(f"; or {w[:1].lower()}{w[1:]}" for w in words[1:])
                table.add_row(Text(f"  {keys}", style=key_style), words[0] + rest)
        return table

    def action_close(self) -> None:
        self.dismiss(None)


def _function_key(display: str) -> str:
    """F9 as htop and keyboards write it, not f9."""
    return display.upper() if re.fullmatch(r"f\d{1,2}", display) else display
