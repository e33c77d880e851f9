"""A batch's figures (proclab.core.batch) in words: the same two lines in `proclab run`'s
summary, the app's details and join-all notice, and the demo's caption."""

from __future__ import annotations

from proclab.core.batch import TOO_SHORT_S, BatchFigures, Verdict
from proclab.core.words import plural
from proclab.tui import fmt


def times_line(b: BatchFigures) -> str:
    """How long the batch took, and what their own times add up to."""
    children = plural(b.count, "child")
    if b.started == 0:
        return f"{children}: none started"
    if b.done:
        line = f"{children} in {fmt.seconds(b.wall)} of wall time"
        if b.started > 1:
            line += ", first start to last end"
    else:
        running = b.count - b.ended - b.paused
        now = [f"{running} still running"] if running else []
        now += [f"{b.paused} stopped"] if b.paused else []
        line = f"{children} ({', '.join(now)}): {fmt.seconds(b.wall)} of wall time"
        line += " since the first start" if b.started > 1 else " so far"
    if b.started > 1:
        line += f"; their own times add up to {fmt.seconds(b.lives)}"
    if b.measured:
        line += f", {_cpu(b)} of it on a CPU"
    if b.started < b.count:
        line += f"; {b.count - b.started} never started"
    return line


def verdict_line(b: BatchFigures) -> str:
    """What running them at once gained, by core.batch's rule; '' for a lone child."""
    work = f"{_cpu(b)} of CPU work in {fmt.seconds(b.wall)}"
    at_least = _at_least(b)  # figures made from a sum of CPU times that is a bound
    busy = f"{at_least}{b.busy_cores:.1f} of the {plural(b.cores, 'core')} they could use busy"
    match b.verdict:
        case Verdict.ALONE:
            return ""
        case Verdict.UNMEASURED:
            return "no speed-up stated: the CPU time of some of them was never measured"
        case Verdict.TOO_SHORT:
            return (
                f"no speed-up stated: under {fmt.seconds(TOO_SHORT_S)}, starting them is most"
                " of what was measured"
            )
        case Verdict.SHARED_ONE_CORE:
            return f"they shared one core: no parallel speed-up (CPU-bound, {work})"
        case Verdict.NO_SPEEDUP:
            line = f"no parallel speed-up: CPU-bound, {work}, {busy} on average"
            return line + (UNREAD_CPU if b.cpu_at_least else "")
        case Verdict.PARALLEL if b.beyond_cores:
            return (
                f"CPU-bound, {work}: {b.busy_cores:.1f}x is more than {plural(b.cores, 'core')} allow,"
                " so it is measuring noise, not a speed-up"
            )
        case Verdict.PARALLEL if b.threaded:
            return (
                f"CPU-bound, {work}, {busy} on average; some ran threads of their own at once,"
                " so that is not what running them at once gained (time one alone to compare)"
            )
        case Verdict.PARALLEL if b.waits_overlapped:
            return (
                # A wait for each other (a lock) looks the same as their own: two that took
                # turns on an flock read 1.5x where one after another took as long.
                f"{b.speedup:.1f}x faster than one after another, their waits overlapping too"
                f" (less if they waited for each other, on a lock): CPU-bound, {work}, {busy}"
                " on average"
            )
        case Verdict.PARALLEL:
            return f"{at_least}{b.busy_cores:.1f}x parallel speed-up: CPU-bound, {work}, {busy} on average"
        case Verdict.CONCURRENT if b.threaded:
            # Only a main thread's waits for a CPU are read: threads that queued for one on
            # a busy machine looked like children that waited for I/O (two hashing
            # children, 245 ms of CPU each in 665 ms, read "I/O-bound").
            return (
                "not said whether CPU- or I/O-bound: some ran threads of their own at once,"
                " whose waits for a CPU are not counted (time one alone to compare)"
            )
        case Verdict.CONCURRENT:
            line = (
                "concurrency, not parallelism: I/O-bound, they waited at the same time"
                f" ({b.overlap:.1f} alive at once on average)"
            )
            return line + (UNREAD_CPU if b.cpu_at_least else "")
    return ""


# A "no" said from CPU times some of which are lower bounds may be wrong: said with it.
UNREAD_CPU = "; some of their CPU was read before their end, so this may understate it"


def _at_least(b: BatchFigures) -> str:
    return "≥" if b.cpu_at_least else ""


def _cpu(b: BatchFigures) -> str:
    return _at_least(b) + fmt.seconds(b.cpu)


def theirs_line(b: BatchFigures) -> str:
    """The CPU their own children used, which none of the figures above holds."""
    if b.theirs < fmt.THEIRS_WORTH_SAYING_S:
        return ""
    return (
        f"besides, processes they started and reaped used {fmt.seconds(b.theirs)} of CPU,"
        " not in these figures: each row is one process"
    )


def batch_lines(b: BatchFigures) -> list[str]:
    """The times line, the verdict line when there is one, and their children's CPU when
    it is worth a word."""
    return [line for line in (times_line(b), verdict_line(b), theirs_line(b)) if line]
