"""`proclab experiment parallel|start-methods|cpu-vs-io`: run one experiment headless and
print its result table and bar chart, or `--json` (one object), and `--csv FILE`.

Progress goes to stderr while it runs (when stderr is a terminal). Bad input is one line
and exit status 2, before anything starts. No textual here; core.experiments is imported
only when the command runs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
from typing import TYPE_CHECKING

from proclab.core.columns import columns
from proclab.core.defaults import DEFAULT_METHOD, METHODS
from proclab.core.overwrite import not_overwritable
from proclab.tui.commands.options import positive_int, say_if_fifo

if TYPE_CHECKING:
    from proclab.core.experiments import Progress, Result

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
CHART_WIDTH = 40
HELP = "measure now: parallel vs serial, start-method latency, CPU- vs I/O-bound speed-up"
DESCRIPTION = (
    "Run one experiment with real processes and print its result table and chart"
    " (or --json); --csv FILE also writes it as CSV."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "experiment",
        metavar="NAME",
        help="parallel (N copies at once vs one after another), start-methods (start latency"
        " of fork, forkserver, spawn) or cpu-vs-io (speed-up per N, CPU- vs I/O-bound)",
    )
    parser.add_argument(
        "--count",
        default=None,
        metavar="N",
        help="parallel: copies (default 4); start-methods: samples per method (default 5);"
        " cpu-vs-io: the largest N (default 4 x cores)",
    )
    parser.add_argument(
        "--task",
        default=None,
        metavar="TARGET",
        help="parallel: module:function or file.py:function (default"
        " proclab.core.tasks:count with (5_000_000,))",
    )
    parser.add_argument("--args", default="", metavar="LIT", help="parallel: the task's args")
    parser.add_argument("--kwargs", default="", metavar="LIT", help="parallel: the task's kwargs")
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=None,
        help=f"start method of the children (default {DEFAULT_METHOD}; start-methods measures all three)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument(
        "--csv",
        default=None,
        metavar="FILE",
        help="also write the result as CSV (-: print it instead of the table)",
    )


def run(ns: argparse.Namespace) -> int:
    from proclab.core import experiments
    from proclab.core.errors import ProclabError
    from proclab.tui.commands.run import stop_signals

    if ns.json and ns.csv == "-":  # the CSV took stdout, and --json was dropped unsaid
        print(
            "proclab experiment: give --json or --csv -, not both: each is stdout's",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        count = _count(ns.count)
        if ns.csv is not None and ns.csv != "-":
            check_writable(ns.csv, "csv")
        plan = experiments.plan(ns.experiment, count, ns.task, ns.args, ns.kwargs, ns.method)
    except ProclabError as exc:
        print(f"proclab experiment: {exc}", file=sys.stderr)
        return EXIT_USAGE

    cancel = threading.Event()
    show = _ProgressLine() if sys.stderr.isatty() else None
    with stop_signals(on_signal=cancel.set) as received:
        try:
            result = experiments.run(plan, show, cancel)
        except (experiments.Cancelled, ProclabError) as exc:
            _clear(show)
            # A signal to the whole process group (timeout, a closed terminal) reaches the
            # children too: a child that died of it is the signal's doing, not a failure.
            if received or isinstance(exc, experiments.Cancelled):
                print("proclab experiment: cancelled; its children were ended", file=sys.stderr)
                return 128 + received[0] if received else EXIT_FAILED
            print(f"proclab experiment: {exc}", file=sys.stderr)
            return EXIT_FAILED
    _clear(show)
    if ns.csv == "-":  # the CSV on stdout, in place of the table (it made a file "-")
        print(experiments.to_csv(result), end="", flush=True)
        return EXIT_OK
    # Shown before the CSV is written: a FIFO with no reader yet holds the write.
    print(experiments.to_json_text(result) if ns.json else report(result), flush=True)
    failed = None
    if ns.csv:
        say_if_fifo("experiment", ns.csv, writing=True)
        failed = _write_csv(ns.csv, experiments.to_csv(result))
        if failed is None and not ns.json:
            print(f"\nCSV written to {ns.csv}")
    if failed is not None:  # the result is printed all the same: it took a while to measure
        print(f"proclab experiment: csv: {failed}", file=sys.stderr)
        return EXIT_FAILED  # as run's and schedule's output that could not be written
    return EXIT_OK


def _count(text: str | None) -> int | None:
    """argparse would print a usage block for a bad --count; this is one line, as every
    other bad input of the command is."""
    from proclab.core.errors import InputError

    if text is None:
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise InputError("count", str(exc)) from None


def check_writable(path: str, field: str) -> None:
    """Refuse a file that could not be written, before anything runs or is asked (nothing
    is emptied here, and a file made to try is removed: the file is written only once
    there is a result). The experiments screen checks its export path with it too."""
    from proclab.core.errors import InputError

    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise InputError(field, f"{path!r} is a folder")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise InputError(field, f"cannot write {path!r}: it is read-only")
        ours = _a_result_csv if field == "csv" else _a_result_json
        why = not_overwritable(path, ours, f"an experiment's {field.upper()}")
        if why is not None:
            # `--csv notes.txt` and `--csv script.py` replaced them, as --record no longer
            # replaces what is not a recording.
            raise InputError(
                field, f"{path!r}: {why} (not overwritten: remove it or choose another name)"
            )
        flags = os.O_WRONLY | os.O_NONBLOCK  # a fifo without a reader is refused, not waited on
    elif not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise InputError(field, f"cannot write into {folder!r}")
    else:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    # Opened to be sure: access() says yes to root anywhere, and /proc took no file after
    # the experiment had run.
    try:
        os.close(os.open(path, flags, 0o666))
    except OSError as exc:
        raise InputError(field, f"cannot write {path!r}: {exc.strerror or exc}") from None
    if flags & os.O_CREAT:
        os.unlink(path)


def _a_result_csv(head: bytes) -> bool:
    return head.startswith(b"experiment,")  # its header


def _a_result_json(head: bytes) -> bool:
    # Its first key: "experiment", or a start method (start-methods' JSON is keyed by them)
    return re.match(rb'\{\s*"(experiment|fork|forkserver|spawn)"\s*:', head) is not None


def _write_csv(path: str, text: str) -> str | None:
    """Write the CSV; None once written, else why not (in one line)."""
    try:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as exc:
        return f"cannot write {path!r}: {exc.strerror or exc}"
    return None


class _ProgressLine:
    """`[#####-----] 3/8 what is running`, redrawn in place on stderr."""

    def __call__(self, progress: Progress) -> None:
        width = 20
        filled = round(progress.fraction * width)
        line = f"[{'#' * filled}{'-' * (width - filled)}] {progress.done}/{progress.total} {progress.text}"
        sys.stderr.write("\r\x1b[K" + line[:120])
        sys.stderr.flush()


def _clear(show: _ProgressLine | None) -> None:
    if show is not None:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


def report(result: Result) -> str:
    """The result table, a bar chart and a one-line summary, as plain text."""
    from proclab.core.experiments import bar_lengths

    header, rows = result.table()
    lines = [f"proclab experiment {result.name}", ""]
    lines.extend(columns([header, *rows], left=len(header)))
    lines.append("")
    bars = result.bars()
    label_width = max(len(bar[0]) for bar in bars)
    for (label, _value, text, _group), cells in zip(
        bars, bar_lengths(bars, CHART_WIDTH), strict=True
    ):
        lines.append(f"{label.ljust(label_width)}  {'█' * cells} {text}")
    lines += ["", *result.notes(), result.summary()]
    return "\n".join(lines)
