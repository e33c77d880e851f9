"""The scheduling screen's layout: the settings box, the job table's box and the result
boxes, built from a preset's jobs and settings (tui/screens/schedule.py fills and reads them).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.containers import Container, HorizontalGroup, VerticalGroup
from textual.widget import Widget
from textual.widgets import Input, Label, ProgressBar, Select, Static

from proclab.core.scheduling.kernel import DEFAULT_UNIT_MS
from proclab.core.scheduling.simulator import (
    ALGORITHMS,
    PRESETS,
    TIE_RULES,
    format_time,
    setting_texts,
)
from proclab.tui.screens.schedule_kernel import KernelChartView

SETTING_LABELS = {  # label, placeholder (the field is 10 wide)
    "quantum": ("RR quantum", "e.g. 4"),
    "switch_cost": ("Switch cost", "0: free"),
    "quanta": ("MLFQ quanta", "4,8,16"),
    "allotment": ("Allotment", "1 quantum"),
    "boost": ("Boost every", "never"),
}
KERNEL_CHOICES = (
    ("SCHED_FIFO (FCFS)", "fifo"),
    ("SCHED_RR (RR)", "rr"),
    ("SCHED_FIFO, priorities", "priority"),
    ("SCHED_OTHER (fair)", "other"),
)
ALGORITHM_CHOICES = (
    (f"All {len(ALGORITHMS)}, compared", "all"),
    *((v[0], k) for k, v in ALGORITHMS.items()),
)


class ChartView(Static, can_focus=True):
    """The Gantt chart; focusable so the keyboard can bring it into view."""


class ResultsView(Static, can_focus=True):
    """The per-job figures, or the comparison."""


def field(name: str, label: str, widget: Widget) -> HorizontalGroup:
    """A labelled field; those typed into have an error line beside them."""
    parts: list[Widget] = [Label(label, classes="sched-label", markup=False), widget]
    if name not in ("preset", "algorithm", "kernel"):
        parts.append(Static("", id=f"err-{name}", classes="sched-error", markup=False))
    return HorizontalGroup(*parts, id=f"field-{name}", classes="sched-field")


def _select(choices: Iterable[tuple[str, str]], value: str, id: str) -> Select[str]:
    return Select(list(choices), value=value, allow_blank=False, compact=True, id=id)


def _typed(value: str, placeholder: str, id: str) -> Input:
    return Input(value, placeholder=placeholder, compact=True, id=id, select_on_focus=False)


def settings_box(preset: str, algorithm: str, kernel: str) -> VerticalGroup:
    """The preset, the algorithm and the settings it reads, the kernel policy and unit."""
    presets = ((p.title, key) for key, p in PRESETS.items())
    fields = [
        field("preset", "Preset", _select(presets, preset, "sched-preset")),
        field("algorithm", "Algorithm", _select(ALGORITHM_CHOICES, algorithm, "sched-algorithm")),
    ]
    for name, value in setting_texts(PRESETS[preset].settings).items():
        label, placeholder = SETTING_LABELS[name]
        fields.append(field(name, label, _typed(value, placeholder, f"set-{name}")))
    fields.append(field("kernel", "Kernel", _select(KERNEL_CHOICES, kernel, "sched-kernel")))
    unit = _typed(format_time(DEFAULT_UNIT_MS), "ms", "set-unit")
    fields.append(field("unit", "Unit (ms)", unit))
    return VerticalGroup(
        Container(*fields, id="sched-settings"),
        Static(id="sched-about", markup=False),
        id="sched-settings-box",
        classes="sched-box",
    )


def jobs_box(rows: Iterable[Widget]) -> VerticalGroup:
    """The job table (a row per job), its error line, its keys and the CSV file field."""
    head = HorizontalGroup(
        Label("Name".ljust(8), markup=False),
        Label("Arrival", markup=False),
        Label("Burst".ljust(7), markup=False),
        Label("Prio", markup=False),
        id="sched-head",
    )
    return VerticalGroup(
        head,
        VerticalGroup(*rows, id="sched-rows"),
        Static(id="sched-jobs-error", markup=False),
        Static(
            "ctrl+n add · ctrl+r remove · ↑↓←→ cells · Enter computes",
            id="sched-hint",
            markup=False,
        ),
        field("csv", "Load CSV", _typed("", "jobs.csv, then Enter", "set-csv")),
        id="sched-jobs-box",
        classes="sched-box",
    )


def outputs() -> VerticalGroup:
    """The chart, the figures, the run on the kernel and the rules."""
    kernel = VerticalGroup(
        Static(id="kernel-status", markup=False),
        ProgressBar(total=100, show_eta=False, id="kernel-progress"),
        KernelChartView(id="kernel-chart"),
        Static(id="kernel-results", markup=False),
        id="sched-kernel-box",
        classes="sched-box",
    )
    return VerticalGroup(
        ChartView(id="sched-chart", classes="sched-box"),
        ResultsView(id="sched-results", classes="sched-box"),
        kernel,
        Static(Text(TIE_RULES.rstrip()), id="sched-rules", classes="sched-box", markup=False),
        id="sched-outputs",
    )
