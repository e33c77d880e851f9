"""The scheduling screen's drawings, as Rich renderables: the Gantt chart (a CPU lane and a
row per job on a time axis, or one lane per algorithm), the textbook slice chart, the
figures, and a kernel run's simulated and measured charts on one time scale with their
differences. Everything drawn comes from proclab.core's Schedule and KernelResult."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rich.color import Color, ColorParseError
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from proclab.core.scheduling.kernel import KernelResult
from proclab.core.scheduling.simulator import (
    PRIORITY_KEYS,
    Schedule,
    Slice,
    chart_columns,
    comparison_rows,
    format_time,
    job_figures,
    lowest_averages,
    nice_step,
    priority_text,
    render_gantt_text,
    run_columns,
    signed_time,
    throughput_text,
    utilisation_text,
)

# Distinct hues of every built-in theme, then lighter and darker ones.
PALETTE = (
    "$primary-lighten-1",
    "$accent",
    "$success",
    "$error-lighten-1",
    "$secondary-lighten-3",
    "$accent-lighten-3",
    "$success-darken-2",
    "$error-lighten-3",
    "$primary-lighten-3",
    "$accent-darken-2",
    "$success-lighten-3",
    "$primary-darken-2",
)
WAIT, IDLE, SWITCH_MARK = "·", "·", "×"


# The chart -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartStyle:
    """Rich styles for the chart, resolved from the theme."""

    colours: dict[str, str]  # job name -> colour
    muted: str
    switch: str
    axis: str

    def job(self, name: str) -> str:
        return self.colours.get(name, "default")

    def on(self, name: str) -> str:
        """The style of a job's name written on its own colour."""
        colour = self.job(name)
        return f"bold {_ink(colour)} on {colour}"


def _ink(colour: str) -> str:
    """Black or white, whichever reads better on `colour`."""
    try:
        triplet = Color.parse(colour).get_truecolor()
    except ColorParseError:
        return "default"
    luminance = 0.2126 * triplet.red + 0.7152 * triplet.green + 0.0722 * triplet.blue
    return "#000000" if luminance > 140 else "#ffffff"


def _lane(cells: Sequence[Slice | None], style: ChartStyle) -> Text:
    """The CPU's lane: each run in its job's colour with the name on it where it fits."""
    text = Text(no_wrap=True, overflow="crop")
    column = 0
    while column < len(cells):
        piece = cells[column]
        end = column
        while end < len(cells) and cells[end] is piece:
            end += 1
        length = end - column
        if piece is None:
            text.append(" " * length)
        elif piece.job is None:
            text.append(IDLE * length, style.muted)
        elif not piece.is_run:
            text.append(SWITCH_MARK * length, style.switch)
        else:
            name = piece.job
            label = name if len(name) < length else ""
            text.append(label.ljust(length), style.on(name))
        column = end
    return text


def _axis(span: float, columns: int, scale: float, pad: int) -> tuple[Text, Text]:
    """The tick line and the time labels under it."""
    label_width = len(format_time(span))
    step = nice_step(span, columns, label_width)
    ticks: list[tuple[int, str]] = []
    count = int(span / step + 1e-9)
    for k in range(count + 1):
        ticks.append((round(k * step * scale), format_time(k * step)))
    if not ticks or ticks[-1][0] != round(span * scale):
        ticks.append((round(span * scale), format_time(span)))
    line = ["─"] * (columns + 1)
    for position, _ in ticks:
        if position <= columns:
            line[position] = "┼"
    line[0] = "├"
    line[-1] = "┤"
    labels = [" "] * (columns + label_width + 1)
    free = 0
    for position, label in ticks:
        is_last = position == round(span * scale)
        # The end time always shows: it is the makespan. A tick label that would run into
        # the next one, or into the end's, gives way.
        room_needed = 0 if is_last else label_width + 1
        if position < free or (not is_last and position + room_needed > columns - label_width):
            continue
        labels[position : position + len(label)] = label
        free = position + len(label) + 1
    return (
        Text(" " * pad + "".join(line), no_wrap=True, overflow="crop"),
        Text(" " * pad + "".join(labels).rstrip(), no_wrap=True, overflow="crop"),
    )


def _gantt_rows(
    s: Schedule, style: ChartStyle, scale: float, columns: int, pad: int, lane: str = "CPU"
) -> list[Text]:
    """One schedule's CPU lane, then a row per job: its colour while it runs, a dot
    while it has arrived and waits."""
    cells = chart_columns(s.gantt, scale, columns)
    line = Text(lane.ljust(pad), style="bold", no_wrap=True, overflow="crop")
    line.append_text(_lane(cells, style))
    lines = [line]
    ran = run_columns(s.gantt, scale, columns)
    for result in s.jobs:
        line = Text(no_wrap=True, overflow="crop")
        line.append(result.name.ljust(pad), style.job(result.name))
        present = range(round(result.arrival * scale), round(result.completion * scale))
        mine = ran.get(result.name, set())
        for column in range(columns):
            if column in mine:
                line.append(" ", f"on {style.job(result.name)}")
            elif column in present:
                line.append(WAIT, style.muted)
            else:
                line.append(" ")
        lines.append(line)
    return lines


def _axis_lines(span: float, columns: int, scale: float, pad: int, style: ChartStyle) -> list[Text]:
    tick_line, label_line = _axis(span, columns, scale, pad)
    tick_line.stylize(style.axis)
    label_line.stylize(style.axis)
    return [tick_line, label_line]


def _legend(names: Sequence[str], style: ChartStyle, single: bool) -> Text:
    legend = Text(no_wrap=False)
    if single:
        legend.append("  ", f"on {style.job(names[0])}")
        legend.append(" running  ", style.muted)
        legend.append(WAIT, style.muted)
        legend.append(" waiting (on the CPU lane: idle)  ", style.muted)
    else:
        for name in names:
            legend.append("■ ", style.job(name))
            legend.append(f"{name}  ")
        legend.append(f"{IDLE} idle  ", style.muted)
    legend.append(SWITCH_MARK, style.switch)
    legend.append(" switch", style.muted)
    return legend


def chart_lines(schedules: Sequence[Schedule], style: ChartStyle, width: int) -> list[Text]:
    """The Gantt chart at `width` columns. One schedule: the CPU lane and a row per job.
    Several: one lane per algorithm on a shared time axis."""
    single = len(schedules) == 1
    names = [r.name for r in schedules[0].jobs]
    row_labels = ["CPU", *names] if single else [s.short for s in schedules]
    pad = max(len(label) for label in row_labels) + 1
    span = max(s.makespan for s in schedules)
    columns = max(10, width - pad - len(format_time(span)) - 1)
    scale = columns / span
    if single:
        lines = _gantt_rows(schedules[0], style, scale, columns, pad)
    else:
        lines = []
        for s, label in zip(schedules, row_labels, strict=False):
            line = Text(label.ljust(pad), style="bold", no_wrap=True, overflow="crop")
            line.append_text(_lane(chart_columns(s.gantt, scale, columns), style))
            lines.append(line)
    lines += _axis_lines(span, columns, scale, pad, style)
    lines.append(_legend(names, style, single))
    return lines


def kernel_lines(result: KernelResult, style: ChartStyle, width: int) -> list[Text]:
    """A kernel run: the simulation, then the measurement under it, each a CPU lane and a
    row per job, on one time axis."""
    simulated, measured = result.simulated, result.measured
    names = [r.name for r in simulated.jobs]
    pad = max(len(label) for label in ("CPU", *names)) + 1
    span = max(simulated.makespan, measured.makespan)
    columns = max(10, width - pad - len(format_time(span)) - 1)
    scale = columns / span
    lines: list[Text] = []
    for title, s in (("Simulated", simulated), ("Measured", measured)):
        heading = Text(f"{title}: ", "bold", no_wrap=True, overflow="ellipsis")
        heading.append(s.label, style.muted)
        lines.append(heading)
        lines += _gantt_rows(s, style, scale, columns, pad)
    lines += _axis_lines(span, columns, scale, pad, style)
    lines.append(_legend(names, style, single=True))
    return lines


class KernelRenderable:
    """A kernel run's two charts, drawn for whatever width they are given."""

    def __init__(self, result: KernelResult, style: ChartStyle) -> None:
        self.result = result
        self.style = style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from kernel_lines(self.result, self.style, options.max_width)


def kernel_results(result: KernelResult, style: ChartStyle) -> Group:
    """Each job measured beside simulated, the differences, and what the figures rest on."""
    table = _table("Job", "Turnaround", "measured", "Δ", "Waiting Δ", "Response Δ", "CPU")
    for (name, *deltas), sim, real, record in zip(
        result.differences(), result.simulated.jobs, result.measured.jobs, result.jobs, strict=True
    ):
        table.add_row(
            Text(name, style.job(name)),
            format_time(sim.turnaround),
            format_time(real.turnaround),
            *map(signed_time, deltas),
            format_time(record.cpu),
        )
    averages = result.average_differences()
    table.add_row(
        Text("Average", "bold"),
        format_time(result.simulated.averages.turnaround),
        format_time(result.measured.averages.turnaround),
        *(Text(signed_time(value), "bold") for value in averages),
        "",
    )
    notes = [
        "Turnaround: simulated, then measured; Δ: measured - simulated. CPU: the job's CPU"
        " time by the kernel's clock (its burst, give or take one check).",
        f"On CPU {result.core} no job ran for {format_time(result.no_job)} units while some"
        " were ready (wake-ups, switches, interrupts, other tasks); arrivals were released"
        f" at most {format_time(result.release_late_ms)} ms late.",
    ]
    if result.policy == "rr":
        notes.append(
            f"The kernel's round-robin quantum: {format_time(result.quantum_ms)} ms ="
            f" {format_time(result.quantum_ms / result.unit_ms)} units."
        )
    return Group(table, Text(""), *(Text(note, style.muted) for note in notes))


def slice_lines(s: Schedule, style: ChartStyle, width: int) -> list[Text]:
    """The textbook Gantt chart (one box per slice, the exact time under each boundary),
    its job names in their colours."""
    lines = [Text("Slices, exact times", style.muted)]
    for line in render_gantt_text(s, width).splitlines():
        text = Text(line, no_wrap=True, overflow="crop")
        if line.startswith("|"):
            for result in s.jobs:
                name = re.escape(result.name)
                text.highlight_regex(rf"(?<=[| ]){name}(?=[| ])", f"bold {style.job(result.name)}")
            # A name cut to fit its box ("abcdefghijklmno…") in its job's colour too.
            for cut_name in re.finditer(r"(?<=[| ])([^| ][^|]*?)…(?=[| ])", line):
                job = next((r.name for r in s.jobs if r.name.startswith(cut_name[1])), None)
                if job is not None:
                    text.stylize(f"bold {style.job(job)}", cut_name.start(), cut_name.end())
        else:
            text.stylize(style.muted)
        lines.append(text)
    return lines


class GanttRenderable:
    """The chart as a Rich renderable: drawn for whatever width it is given."""

    def __init__(self, schedules: Sequence[Schedule], style: ChartStyle) -> None:
        self.schedules = tuple(schedules)
        self.style = style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from chart_lines(self.schedules, self.style, options.max_width)
        if len(self.schedules) == 1:
            yield Text("")
            yield from slice_lines(self.schedules[0], self.style, options.max_width)


# The figures ---------------------------------------------------------------------------------


def results_renderable(schedules: Sequence[Schedule], style: ChartStyle, good: str) -> Group:
    if len(schedules) == 1:
        return _one(schedules[0], style)
    return _compared(schedules, style, good)


def _table(*headers: str) -> Table:
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold", expand=False)
    table.add_column(headers[0], no_wrap=True)
    for header in headers[1:]:
        table.add_column(header, justify="right", no_wrap=True)
    return table


def _one(s: Schedule, style: ChartStyle) -> Group:
    prioritised = s.algorithm in PRIORITY_KEYS
    headers = ["Job", "Arrival", "Burst", "Start", "End", "Turnaround", "Waiting", "Response"]
    if prioritised:
        headers.insert(3, "Prio")
    table = _table(*headers)
    for r in s.jobs:
        cells = [*map(format_time, job_figures(r))]
        if prioritised:
            cells.insert(2, priority_text(r.priority))
        table.add_row(Text(r.name, style.job(r.name)), *cells)
    averages = (Text(format_time(v), "bold") for v in s.averages.figures())
    table.add_row(Text("Average", "bold"), *[""] * (len(headers) - 4), *averages)
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style=style.muted, no_wrap=True)
    summary.add_column()
    summary.add_row(
        "Throughput",
        f"{throughput_text(s)} ({len(s.jobs)} in {format_time(s.makespan)})",
    )
    summary.add_row(
        "CPU utilisation",
        f"{utilisation_text(s)} (busy {format_time(s.busy)} of {format_time(s.makespan)})",
    )
    summary.add_row("Context switches", str(s.switches))
    return Group(table, Text(""), summary)


def _compared(schedules: Sequence[Schedule], style: ChartStyle, good: str) -> Group:
    table = _table(
        "Algorithm", "Turnaround", "Waiting", "Response", "Throughput", "CPU", "Switches"
    )
    lowest = lowest_averages(schedules)
    for s, cells in zip(schedules, comparison_rows(schedules), strict=True):
        marked = [
            Text(cell, good if s.algorithm in lowest[k] else "")
            for k, cell in enumerate(cells[1:4])
        ]
        table.add_row(cells[0], *marked, *cells[4:])
    waits = _table("Waiting", *(s.short for s in schedules))
    for index, r in enumerate(schedules[0].jobs):
        waits.add_row(
            Text(r.name, style.job(r.name)),
            *(format_time(s.jobs[index].waiting) for s in schedules),
        )
    note = Text("Averages over the jobs; the lowest in each column is marked.", style.muted)
    return Group(table, note, Text(""), waits)
