"""`proclab schedule … --real`: the jobs run on the real kernel, one core, under SCHED_FIFO,
SCHED_RR, SCHED_FIFO with priorities or SCHED_OTHER, and the measured Gantt chart and
figures printed beside the simulation (text or --json).

A run that cannot be done (no right to real-time policies, too much CPU, a wrong --unit
or --core) is one line on stderr and exit status 2, before anything starts; a run that
fails while it runs (a job ended early) is one line and exit status 1. Ctrl+C, SIGTERM
and SIGHUP end the jobs and exit with 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence

from proclab.core.columns import columns
from proclab.core.errors import ProclabError
from proclab.core.scheduling.kernel import (
    DEFAULT_UNIT_MS,
    MAX_CPU_S,
    POLICY_KEYS,
    KernelCancelled,
    KernelError,
    KernelPlan,
    KernelResult,
    check_rights,
    check_together,
    measured_value,
    plan,
    to_json,
)
from proclab.core.scheduling.simulator import (
    Job,
    Preset,
    ScheduleError,
    format_time,
    render_lanes_text,
    render_table_text,
    signed_time,
)
from proclab.core.typed import ascii_number

PROG = "proclab schedule"
CHOICES = (*POLICY_KEYS, "all")
# The policy an algorithm (a preset's, by default) is measured with, where one matches.
POLICY_FOR = {"fcfs": "fifo", "rr": "rr", "priority": "priority", "priority-np": "priority"}
OPTION_OF = {"policy": "--policy", "unit": "--unit", "core": "--core"}
# Simulation-only options, meaningless on the kernel.
SIMULATION_ONLY = ("algo", "quantum", "levels", "quanta", "allotment", "boost", "switch_cost")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "on the real kernel",
        "run each job as a real CPU-bound process, all on one core, and print the measured"
        " Gantt chart and figures beside the simulation of the matching algorithm",
    )
    group.add_argument(
        "--real",
        action="store_true",
        help=f"run the jobs on the kernel (at most {MAX_CPU_S:g} s of CPU in all)",
    )
    group.add_argument(
        "--policy",
        metavar="POLICY",
        help=f"{'|'.join(CHOICES)}: SCHED_FIFO (beside FCFS), SCHED_RR (beside RR with the"
        " kernel's quantum), SCHED_FIFO with a priority per priority number (beside"
        " preemptive priority), SCHED_OTHER (beside processor sharing), or all four"
        " (default: the preset's algorithm's, else fifo)",
    )
    group.add_argument(
        "--unit",
        metavar="MS",
        help=f"milliseconds in a time unit of the jobs (default {DEFAULT_UNIT_MS:g})",
    )
    group.add_argument(
        "--core",
        metavar="N",
        help="the CPU the jobs run on (default: the last usable one; proclab keeps off it)",
    )


def run(ns: argparse.Namespace, jobs: Sequence[Job], preset: Preset | None, width: int) -> int:
    try:
        plans = _plans(ns, jobs, preset)
        for each in plans:
            check_rights(each.policy, each.releaser_priority)
    except KernelError as exc:
        option = OPTION_OF.get(exc.field, "")
        print(f"{PROG}: {option} {exc}" if option else f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except (ScheduleError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    # Here, not at the top: the simulation alone never needs the controller.
    from proclab.core.controller import Controller
    from proclab.core.scheduling.kernel_run import run as run_on_kernel
    from proclab.tui.commands.run import stop_signals

    cancel = threading.Event()
    status = _Status()
    results: list[KernelResult] = []
    controller = Controller(sample_interval=1.0, grace=1.0)
    with stop_signals(cancel.set) as received:
        try:
            controller.start()
            for each in plans:
                results.append(run_on_kernel(each, controller, progress=status, cancel=cancel))
        except KernelCancelled:
            pass
        except ProclabError as exc:
            # A signal to the whole process group (timeout, a closed terminal) ends the jobs
            # too: a job that died of it is the signal's doing, said below.
            if not received:
                status.clear()
                print(f"{PROG}: {exc}", file=sys.stderr)
                return 1
        finally:
            status.clear()
            controller.close()
    if received:
        name = signal.Signals(received[0]).name
        print(f"{PROG}: {name} received: the jobs were ended", file=sys.stderr)
        return 128 + received[0]
    if ns.json:
        data = [to_json(r) for r in results]
        print(json.dumps(data if ns.policy == "all" else data[0], indent=2))
    else:
        print("\n\n".join(render(r, width) for r in results))
    return 0


def _plans(ns: argparse.Namespace, jobs: Sequence[Job], preset: Preset | None) -> list[KernelPlan]:
    given = [name for name in SIMULATION_ONLY if getattr(ns, name, None) is not None]
    if given:
        option = "--" + given[0].replace("_", "-")
        raise KernelError(
            f"{option} is for the simulation; with --real the kernel decides"
            " (--policy chooses how, --unit sets the time scale)"
        )
    if ns.policy is None:
        key = POLICY_FOR.get(preset.algorithm, "fifo") if preset is not None else "fifo"
    else:
        key = ns.policy.strip().lower()
        if key not in CHOICES:
            raise KernelError(f"must be one of {', '.join(CHOICES)}, got {ns.policy!r}", "policy")
    unit = DEFAULT_UNIT_MS
    if ns.unit is not None:
        try:
            unit = ascii_number(ns.unit, float)
        except ValueError:
            raise KernelError(f"is not a number of milliseconds: {ns.unit!r}", "unit") from None
    core = None
    if ns.core is not None:
        try:
            core = ascii_number(ns.core, int)
        except ValueError:
            raise KernelError(f"is not a CPU number: {ns.core!r}", "core") from None
    keys = POLICY_KEYS if key == "all" else (key,)
    plans = [plan(jobs, each, unit, core) for each in keys]
    check_together(plans)
    return plans


class _Status:
    """The run's progress on one line of stderr, when stderr is a terminal."""

    def __init__(self) -> None:
        self._shown = False
        self._tty = sys.stderr.isatty()

    def __call__(self, done: float, text: str) -> None:
        if self._tty:
            sys.stderr.write(f"\r{text[:70]:<70}")
            sys.stderr.flush()
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()
            self._shown = False


def render(result: KernelResult, width: int) -> str:
    """The run as text: both charts on one time scale, the figures, their differences,
    and the kernel's own count beside what the jobs measured."""
    kind = result.kind
    measured, simulated = result.measured, result.simulated
    unit = format_time(result.unit_ms)
    parts = [
        f"{kind.kernel} on CPU {result.core}, 1 unit = {unit} ms\n{kind.about[:1].upper()}{kind.about[1:]}\n"
        "# running, . arrived and waiting, on one time scale (units)\n"
        + render_lanes_text(
            [
                (f"Simulated: {simulated.label}", simulated),
                (f"Measured: {measured.label}", measured),
            ],
            width,
        ),
        f"Measured: {measured.label}\n{render_table_text(measured)}",
        f"Simulated: {simulated.label}\n{render_table_text(simulated)}",
        "Measured - simulated\n" + "\n".join(_differences(result)),
        "The kernel's own count (CPU clock, /proc/PID/schedstat), in units\n"
        + "\n".join(_cross_check(result)),
        "\n".join(_notes(result)),
    ]
    return "\n\n".join(parts)


def _differences(result: KernelResult) -> list[str]:
    rows = [["job", "turnaround", "waiting", "response"]]
    rows += [[name, *map(signed_time, figures)] for name, *figures in result.differences()]
    rows.append(["average", *map(signed_time, result.average_differences())])
    return columns(rows, left=1)


def _cross_check(result: KernelResult) -> list[str]:
    rows = [
        [
            "job",
            "on CPU",
            "kernel CPU",
            "interrupted",
            "waiting",
            "kernel wait",
            "stretches",
            "runs",
        ]
    ]
    for measure, figures in zip(result.jobs, result.measured.jobs, strict=True):
        rows.append(
            [
                measure.name,
                measured_time(measure.on_cpu),
                measured_time(measure.cpu),
                measured_time(measure.interrupted),
                measured_time(figures.waiting),
                measured_time(measure.wait),
                str(len(measure.intervals)),
                str(measure.times_on_cpu),
            ]
        )
    return columns(rows, left=1)


def measured_time(value: float) -> str:
    """A time the run measured, as the charts have it ("2.007831" said more than it knew)."""
    return format_time(measured_value(value))


def _notes(result: KernelResult) -> list[str]:
    unit_ms = result.unit_ms
    notes = [
        f"On CPU {result.core} no job ran for {format_time(result.no_job)} units"
        f" ({format_time(result.no_job * unit_ms)} ms) while some were ready: wake-ups,"
        " switches, interrupts, other tasks, the kernel's real-time throttling.",
        f"Arrivals were released at most {measured_time(result.release_late_ms)} ms late.",
    ]
    if result.policy == "rr":
        notes.append(
            f"The kernel's round-robin quantum: {format_time(result.quantum_ms)} ms ="
            f" {format_time(result.quantum_ms / unit_ms)} units (sched_rr_get_interval)."
        )
    notes.append(
        "A stretch: time a job held the CPU, from its own clock readings (it asks the kernel"
        " about every gap over 0.05 ms: switched out, the stretch ends; not, the gap was"
        " interrupts or the host, which the kernel bills to the job: interrupted)."
        " Runs: times the kernel put it on a CPU."
    )
    return notes
