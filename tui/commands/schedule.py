"""`proclab schedule`: the CPU scheduling simulator, headless. Jobs come from a CSV file
(`name,arrival,burst[,priority]`, `-` for stdin) or a built-in textbook preset; it prints
each schedule's Gantt chart and table (or JSON), and a comparison when given `--algo all`.
With `--real` the jobs run on the kernel instead (schedule_kernel).

Bad input is one line on stderr naming the line or option, exit status 2, nothing
computed. Numbers are taken as text and checked here rather than by argparse, so that a
wrong one gets that one line too, not a usage message.
"""

from __future__ import annotations

import argparse
import codecs
import json
import shutil
import sys
import textwrap
from collections.abc import Sequence

from proclab.core.errors import ProclabError
from proclab.core.scheduling.kernel import KERNEL_RULES
from proclab.core.scheduling.simulator import (
    ALGORITHM_KEYS,
    ALGORITHMS,
    DEFAULT_QUANTUM,
    LIMITS,
    MAX_CSV_CHARS,
    MAX_JOBS,
    MAX_LEVELS,
    MAX_TIME,
    PRESETS,
    TIE_RULES,
    Job,
    Preset,
    Schedule,
    ScheduleError,
    Settings,
    compare,
    format_time,
    parse_jobs_csv,
    parse_quanta,
    parse_setting,
    render_comparison_text,
    render_gantt_text,
    render_table_text,
    to_json_dict,
)
from proclab.core.typed import ascii_number
from proclab.tui.commands import schedule_kernel
from proclab.tui.commands.options import say_if_fifo

HELP = (
    "simulate CPU scheduling (FCFS, SJF, SRTF, RR, priority, MLFQ) on jobs from a CSV"
    " file, or run them on the real kernel"
)
DESCRIPTION = (
    "Run FCFS, SJF, SRTF, round robin, priority or MLFQ on the jobs in JOBS.csv"
    " (header name,arrival,burst[,priority]) and print the Gantt chart and each job's"
    " start, completion, turnaround, waiting and response times; --algo all compares them."
    " --real runs the jobs as real processes under SCHED_FIFO, SCHED_RR or SCHED_OTHER"
    " and prints the measured chart beside the simulation."
)
PROG = "proclab schedule"
CHOICES = (*ALGORITHM_KEYS, "all")
OPTION_OF = {
    "quantum": "--quantum",
    "quanta": "--quanta",
    "levels": "--levels",
    "allotment": "--allotment",
    "boost": "--boost",
    "switch_cost": "--switch-cost",
    "algorithm": "--algo",
}


class UsageError(ProclabError):
    """One line for stderr: what is wrong with the command line or the input (escaped, as
    every ProclabError: it quotes what was typed)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `proclab schedule`'s arguments on `parser` (a subparser)."""
    # The tie rules close the help, laid out as they are written.
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    if parser.description:
        parser.description = textwrap.fill(parser.description, 80)
    parser.epilog = f"How time and ties are decided:\n\n{TIE_RULES}{LIMITS}{KERNEL_RULES}"
    parser.add_argument(
        "jobs",
        nargs="?",
        metavar="JOBS.csv",
        help="the jobs: a CSV file with the header name,arrival,burst[,priority] (- reads stdin)",
    )
    parser.add_argument(
        "--preset",
        metavar="NAME",
        help=f"a textbook workload instead of a file: {', '.join(PRESETS)}",
    )
    parser.add_argument(
        "--algo",
        metavar="ALGO",
        help=f"{'|'.join(CHOICES)} (default all: every algorithm, then a comparison)",
    )
    parser.add_argument(
        "--quantum",
        metavar="Q",
        help=f"round robin's time quantum (default {format_time(DEFAULT_QUANTUM)}, or the preset's)",
    )
    parser.add_argument(
        "--levels",
        metavar="N",
        help=f"MLFQ: number of levels, 1-{MAX_LEVELS} (default 3, or as many as --quanta gives)",
    )
    parser.add_argument(
        "--quanta",
        metavar="Q0,Q1,...",
        help="MLFQ: the quantum of each level, top first; inf runs the bottom level FCFS"
        " (default: Q, 2Q, 4Q... from --quantum)",
    )
    parser.add_argument(
        "--allotment",
        metavar="A",
        help="MLFQ: CPU time a job may use at a level, over all its slices there, before it"
        " drops a level (default: that level's quantum; inf: never drops)",
    )
    parser.add_argument(
        "--boost",
        metavar="S",
        help="MLFQ: every S time units the jobs below the top level go back to it (default: never)",
    )
    parser.add_argument(
        "--switch-cost",
        metavar="C",
        help="time each context switch takes (default 0)",
    )
    parser.add_argument(
        "--width",
        metavar="COLS",
        help="width of the Gantt chart (default: the terminal's)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    schedule_kernel.add_arguments(parser)


def run(ns: argparse.Namespace) -> int:
    try:
        jobs, preset = _jobs(ns)
        width = _width(ns.width)
        if not ns.real:
            # The kernel's own options, given without --real, would be ignored in silence.
            given = [
                o for name, o in schedule_kernel.OPTION_OF.items() if getattr(ns, name) is not None
            ]
            if given:
                raise UsageError(f"{given[0]} is for the kernel: add --real to run the jobs on it")
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if ns.real:
        return schedule_kernel.run(ns, jobs, preset, width)
    try:
        preset_settings = preset.settings if preset is not None else None
        algorithm = ("all" if ns.algo is None else ns.algo).strip().lower()
        if algorithm not in CHOICES:
            raise UsageError(f"--algo must be one of {', '.join(CHOICES)}, got {ns.algo!r}")
        keys = ALGORITHM_KEYS if algorithm == "all" else (algorithm,)
        settings = _settings(ns, preset_settings, mlfq="mlfq" in keys)
        schedules = compare(jobs, settings, keys)
    except ScheduleError as exc:
        # A wrong setting (compare checks them all first): say it with the option's name.
        if exc.field in OPTION_OF and exc.detail:
            message = f"{OPTION_OF[exc.field]} {exc.detail}"
        else:
            message = str(exc)
        print(f"{PROG}: {message}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if ns.json:
        data = [to_json_dict(s) for s in schedules]
        print(json.dumps(data if algorithm == "all" else data[0], indent=2))
        return 0
    print(_text(schedules, width))
    return 0


def _text(schedules: Sequence[Schedule], width: int) -> str:
    parts = []
    for schedule in schedules:
        name = ALGORITHMS[schedule.algorithm][1]
        parts.append(
            f"{schedule.label}: {name}\n"
            f"{render_gantt_text(schedule, width)}\n\n{render_table_text(schedule)}"
        )
    if len(schedules) > 1:
        parts.append("Compared (averages over the jobs)\n" + render_comparison_text(schedules))
    return "\n\n".join(parts)


def _jobs(ns: argparse.Namespace) -> tuple[list[Job], Preset | None]:
    if ns.jobs and ns.preset:
        raise UsageError("give a JOBS.csv file or --preset, not both")
    if ns.preset:
        preset = PRESETS.get(ns.preset.strip())
        if preset is None:
            raise UsageError(f"no preset {ns.preset!r} (presets: {', '.join(PRESETS)})")
        return list(preset.jobs), preset
    if not ns.jobs:
        raise UsageError(
            f"give a JOBS.csv file (name,arrival,burst[,priority]) or --preset NAME"
            f" ({', '.join(PRESETS)})"
        )
    try:
        if ns.jobs == "-":
            if sys.stdin is None:  # closed (`<&-`)
                raise UsageError("stdin is closed: give JOBS.csv, or pipe the jobs in")
            # As bytes, 4 a character at most (a stdin of text only, a test's, encoded back)
            buffer = getattr(sys.stdin, "buffer", None)
            if buffer is not None:
                data = buffer.read(4 * (MAX_CSV_CHARS + 1))
            else:
                data = sys.stdin.read(MAX_CSV_CHARS + 1).encode("utf-8", "surrogateescape")
        else:
            say_if_fifo("schedule", ns.jobs)
            with open(ns.jobs, "rb") as file:
                data = file.read(4 * (MAX_CSV_CHARS + 1))
        # A character cut at the end of a read that long waits: the file is too long. One
        # cut at the end of the file is a byte that is not UTF-8.
        whole = len(data) < 4 * (MAX_CSV_CHARS + 1)
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=whole)
    except OSError as exc:
        raise UsageError(f"cannot read {ns.jobs}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        # The line, as a wrong value's error names it ("position 26" named a byte)
        line = exc.object[: exc.start].count(b"\n") + 1
        byte = exc.object[exc.start]
        where = "stdin" if ns.jobs == "-" else ns.jobs
        raise UsageError(
            f"{where} line {line} is not UTF-8 (it holds the byte \\x{byte:02x})"
        ) from None
    if len(text) > MAX_CSV_CHARS:
        raise UsageError(
            f"{ns.jobs} is longer than {MAX_CSV_CHARS:,} characters: {MAX_JOBS} jobs fit in far less"
        )
    try:
        return parse_jobs_csv(text), None
    except ScheduleError as exc:
        source = "stdin" if ns.jobs == "-" else ns.jobs
        raise UsageError(f"{source} {exc}" if exc.line else f"{source}: {exc}") from None


def _number(value: str | None, option: str, name: str = "quantum") -> float | None:
    """The option's value (None if not given) as parse_setting reads setting `name`."""
    if value is None:
        return None
    if not value.strip():  # the app's blank field is "the default"; an empty option, a slip
        raise UsageError(f"{option} is empty")
    try:
        number = parse_setting(name, value)
    except ValueError as exc:
        raise UsageError(f"{option} {exc}") from None
    assert not isinstance(number, tuple)
    return number


def _settings(ns: argparse.Namespace, preset: Settings | None, mlfq: bool = True) -> Settings:
    """The settings from the options; a preset's settings fill in what is not given."""
    base = preset or Settings()
    quantum = _number(ns.quantum, "--quantum")
    quantum = base.quantum if quantum is None else quantum
    levels: int | None = None
    if ns.levels is not None:
        try:
            levels = ascii_number(ns.levels, int)
        except ValueError:
            raise UsageError(f"--levels is not a whole number: {ns.levels!r}") from None
        if not 1 <= levels <= MAX_LEVELS:
            raise UsageError(f"--levels must be from 1 to {MAX_LEVELS}, got {levels}")
    if ns.quanta is not None:
        try:
            quanta = parse_quanta(ns.quanta)
        except ValueError as exc:
            raise UsageError(f"--quanta {exc}") from None
        if levels is not None and len(quanta) == 1:
            quanta = quanta * levels
        elif levels is not None and len(quanta) != levels:
            raise UsageError(
                f"--quanta gives {len(quanta)} quanta but --levels is {levels}: give one per level"
            )
    elif levels is not None or ns.quantum is not None or preset is None:
        # Doubling per level, from the RR quantum: the usual textbook shape (8, 16, ...).
        quanta = tuple(quantum * 2**level for level in range(levels or 3))
        if mlfq and quanta[-1] > MAX_TIME:  # said as given, not as --quanta (not given)
            raise UsageError(
                f"--quantum {ns.quantum.strip() if ns.quantum else f'{quantum:g}'}, doubled at"
                f" each of {len(quanta)} MLFQ"
                f" levels, makes {quanta[-1]:,.0f} (at most {MAX_TIME:,.0f}):"
                " give a smaller one, or --quanta"
            )
    else:
        quanta = base.quanta
    allotment = _number(ns.allotment, "--allotment", "allotment")
    boost = _number(ns.boost, "--boost", "boost")
    cost = _number(ns.switch_cost, "--switch-cost", "switch_cost")
    return Settings(
        quantum=quantum,
        quanta=quanta,
        allotment=base.allotment if allotment is None else allotment,
        boost=base.boost if boost is None else boost,
        switch_cost=base.switch_cost if cost is None else cost,
    )


MAX_WIDTH = 10_000  # columns: a chart wider than this is read by nobody, and costs memory


def _width(text: str | None) -> int:
    if text is None:
        return max(40, shutil.get_terminal_size((80, 24)).columns)
    try:
        width = ascii_number(text, int)
    except ValueError:
        raise UsageError(f"--width is not a whole number: {text!r}") from None
    if not 20 <= width <= MAX_WIDTH:
        raise UsageError(f"--width must be from 20 to {MAX_WIDTH:,}, got {width:,}")
    return width
