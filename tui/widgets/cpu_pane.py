"""Every core's load now (a gauge) and over about the last minute (a history), plus total
CPU, memory and load average. Histories are drawn on a fixed 0-100 % scale: a sparkline
that scaled itself to its own min..max would draw a flat 3 % as full bars.

With many cores the cores are laid out in as many columns as fit, each line still a gauge,
a percentage and a history, so 64 cores read as well as 2.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widget import Widget

from proclab.core.model import SystemSample
from proclab.core.words import plural
from proclab.tui import fmt
from proclab.tui.theme import resolve
from proclab.tui.widgets.offscreen import PaintedWhenShown

BLOCKS = " ▁▂▃▄▅▆▇█"
HISTORY_SECONDS = 60.0
GAUGE_WIDTH = 10
COMPACT_GAUGE_WIDTH = 5  # when there are more cores than lines
MIN_HISTORY = 8


def spark(values: list[float], width: int) -> str:
    """The last `width` values, 0-100 %, as block characters (blank where no data yet)."""
    tail = values[-width:]
    cells = [BLOCKS[min(8, max(0, math.ceil(v / 100 * 8)))] for v in tail]
    return " " * (width - len(cells)) + "".join(cells)


def gauge(percent: float, width: int) -> tuple[str, str]:
    """A bar `width` cells long: (filled part, empty part), eighths for the last cell."""
    eighths = round(max(0.0, min(100.0, percent)) / 100 * width * 8)
    full, part = divmod(eighths, 8)
    filled = "█" * full + (BLOCKS[part] if part and full < width else "")
    return filled, "·" * (width - len(filled))


class CpuPane(PaintedWhenShown, Widget):
    DEFAULT_CSS = """
    CpuPane { height: auto; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sample: SystemSample | None = None
        self._history: list[deque[float]] = []
        self._total: deque[float] = deque()
        self.interval = 1.0

    def record(self, samples: Sequence[SystemSample], interval: float) -> None:
        """Add sampler ticks, oldest first; keeps about HISTORY_SECONDS of them. Drawn
        once for them all: a replay seeking back hands over every tick again, and a
        repaint each took 1.1 s of 1.2 for 20,000 (cProfile)."""
        if not samples:
            return
        self.interval = interval
        keep = max(MIN_HISTORY, math.ceil(HISTORY_SECONDS / interval))
        for sample in samples[-keep:]:
            self._push(sample, keep)
        self._shown(samples[-1], interval, keep)

    def _push(self, sample: SystemSample, keep: int) -> None:
        if len(self._history) != len(sample.per_core) or self._total.maxlen != keep:
            old = [list(h) for h in self._history]
            self._history = [
                deque(old[i] if i < len(old) else (), maxlen=keep)
                for i in range(len(sample.per_core))
            ]
            self._total = deque(self._total, maxlen=keep)
        for history, value in zip(self._history, sample.per_core, strict=True):
            history.append(value)
        self._total.append(sample.total)

    def _shown(self, sample: SystemSample, interval: float, keep: int) -> None:
        previous, width = self._sample, self.size.width
        grew = (
            previous is None
            or len(previous.per_core) != len(sample.per_core)
            # or the load moved to or from a line of its own ("(9%)" became "(10%)")
            or self._load_apart(previous, width) != self._load_apart(sample, width)
        )
        self._sample = sample
        subtitle = f"{plural(len(sample.per_core), 'core')} · {fmt.seconds(interval)} ticks · {fmt.seconds(interval * keep)} of history"
        if isinstance(self.parent, Widget) and self.parent.border_subtitle != subtitle:
            self.parent.border_subtitle = subtitle
        self.refresh(layout=grew)  # a layout pass only when the number of lines may change

    def reset(self) -> None:
        """Forget the history (a replay seeking back feeds it again)."""
        self._sample = None
        self._history = []
        self._total.clear()
        self.refresh()

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        if self._sample is None:
            return 1
        split = self._load_apart(self._sample, width)
        return 2 + split + math.ceil(len(self._sample.per_core) / self._columns(width))

    @staticmethod
    def _memory(sample: SystemSample) -> tuple[str, str]:
        used, total = fmt.size(sample.mem_used), fmt.size(sample.mem_total)
        load = "load " + " ".join(f"{v:.2f}" for v in sample.load)
        return f"{'mem':<6}{used} of {total} ({sample.mem_percent:.0f}%)", load

    def _load_apart(self, sample: SystemSample, width: int) -> bool:
        """The load average on a line of its own: beside the memory it lost its third
        figure at 120 columns (the pane 44 wide)."""
        memory, load = self._memory(sample)
        return len(memory) + 3 + len(load) > width

    def _columns(self, width: int) -> int:
        """As few columns as let every core show in the pane's height, as many as fit
        across (one core needs "cpu63 " + gauge + " 100% " + a short history)."""
        cores = len(self._sample.per_core) if self._sample else 1
        height = self.parent.size.height if isinstance(self.parent, Widget) else 0
        fit_rows = max(1, height - 2)
        most = max(1, width // (6 + self._gauge_width(width) + 6 + MIN_HISTORY + 1))
        return max(1, min(most, math.ceil(cores / fit_rows)))

    def _gauge_width(self, width: int) -> int:
        cores = len(self._sample.per_core) if self._sample else 1
        height = self.parent.size.height if isinstance(self.parent, Widget) else 0
        return GAUGE_WIDTH if cores <= max(1, height - 2) else COMPACT_GAUGE_WIDTH

    def render(self) -> Text:
        sample = self._sample
        if sample is None:
            return Text("waiting for the first sample…", style="italic")
        width = max(20, self.size.width)
        text = Text(no_wrap=True, overflow="crop", end="")
        self._line(text, "total", sample.total, list(self._total), width, bold=True)
        memory, load = self._memory(sample)
        text.append(f"\n{memory}")
        gap = f"\n{'':<6}" if self._load_apart(sample, width) else "   "
        text.append(gap + load, resolve(self.app, "$text-muted"))
        columns = self._columns(width)
        column_width = width // columns
        rows = math.ceil(len(sample.per_core) / columns)
        for r in range(rows):
            text.append("\n")
            for c in range(columns):
                core = c * rows + r
                if core >= len(sample.per_core):
                    break
                history = list(self._history[core])
                self._line(text, f"cpu{core}", sample.per_core[core], history, column_width - 1)
                text.append(" ")
        return text

    def _line(
        self,
        text: Text,
        label: str,
        percent: float,
        history: list[float],
        width: int,
        bold: bool = False,
    ) -> None:
        level = "$success" if percent < 50 else "$warning" if percent < 85 else "$error"
        style = resolve(self.app, ("bold " if bold else "") + level)
        gauge_width = GAUGE_WIDTH if bold else self._gauge_width(self.size.width)
        filled, empty = gauge(percent, gauge_width)
        spark_width = max(1, width - (6 + gauge_width + 6))
        text.append(f"{label:<6}", resolve(self.app, "$text-muted"))
        text.append(filled, style)
        text.append(empty, resolve(self.app, "$text-disabled"))
        text.append(f" {percent:3.0f}% ", style)
        text.append(spark(history, spark_width), resolve(self.app, "$accent"))
