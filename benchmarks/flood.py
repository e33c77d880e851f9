"""An output flood in the app: one child prints 200 MB in 100-byte lines (2 million lines)
as fast as proclab reads them, with every pane on screen (160x48, so the Output pane draws
the flood), in a pseudo-terminal. Measured, and measured again in the same run with a
child that prints nothing (the reference: what the machine's load costs a key now):

- key latency: from a key press to the screen answering it. The probe types one letter at
  a time into the process filter (`/`), and times each letter until the filter's new text
  is written to the terminal;
- proclab's peak RSS (the app's own process, not the child), sampled every 0.1 s;
- SIGTERM, sent while the flood still runs: until the app has ended its child and
  exited.

    python benchmarks/flood.py [--mb 200] [--line 100] [--seconds 30] [--out benchmarks/results/flood.json]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil
from results_file import write_results
from terminal import Terminal

PROCLAB = str(Path(sys.executable).with_name("proclab"))
RESULTS = Path(__file__).with_name("results")
LETTERS = b"QZJKVWYGHMPRDUBTCNSLFEOIA"  # none is in the flood's lines (digits and x)
PROBE_TIMEOUT_S = 120.0


class PeakRss:
    """The highest RSS of one process, sampled on a thread."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def probe_keys(term: Terminal, seconds: float) -> tuple[list[float], int]:
    """Key latencies for `seconds`: letters typed into the process filter, each timed until
    the filter's new text is written. The first letter is not timed (it shows the filter
    has the focus); each later one is timed by the whole text, a string seen only once."""
    typed = LETTERS[:1]
    try:
        term.send(b"/")
        term.wait_for(b"filter: name", timeout=PROBE_TIMEOUT_S)
        term.send(typed)
        term.wait_for(b"filter '" + typed, timeout=PROBE_TIMEOUT_S)
    except TimeoutError:
        return [], 1  # the app never opened the filter: one key unanswered, no more tried
    latencies: list[float] = []
    unanswered = 0
    began = time.monotonic()
    while time.monotonic() - began < seconds and len(typed) < 60:
        at = len(typed) % len(LETTERS)
        letter = LETTERS[at : at + 1]
        typed += letter
        term.watch(typed)
        sent = time.monotonic()
        term.send(letter)
        while typed not in term.first_seen:
            if time.monotonic() - sent > PROBE_TIMEOUT_S:
                unanswered += 1
                break
            time.sleep(0.002)
        else:
            latencies.append(term.first_seen[typed] - sent)
        time.sleep(0.2)
    return latencies, unanswered


def end_with_sigterm(term: Terminal) -> float | None:
    """SIGTERM: seconds until the app has ended its child and exited (None: not in 300 s)."""
    signalled = time.monotonic()
    term.process.send_signal(signal.SIGTERM)
    exited = None
    while time.monotonic() - signalled < 300:
        try:
            if term.process.status() == psutil.STATUS_ZOMBIE:
                exited = time.monotonic() - signalled
                break
        except psutil.NoSuchProcess:
            exited = time.monotonic() - signalled
            break
        time.sleep(0.005)
    return exited


def summary(latencies: list[float]) -> dict[str, float | None]:
    ordered = sorted(latencies)
    if not ordered:
        return {"median": None, "p95": None, "max": None}
    return {
        "median": round(statistics.median(ordered) * 1000, 1),
        "p95": round(ordered[int(len(ordered) * 0.95)] * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
    }


def run(target: list[str], seconds: float, size: tuple[int, int]) -> dict[str, object]:
    """The app with one child (`target` and its options), keys probed, then SIGTERM."""
    term = Terminal([PROCLAB, *target], size=size)
    rss = PeakRss(term.pid)
    try:
        term.watch(b"1 live", b"1 ended")  # a short flood may be over before it shows
        deadline = time.monotonic() + 60
        while not term.first_seen and time.monotonic() < deadline:
            time.sleep(0.01)
        began = time.monotonic()
        latencies, unanswered = probe_keys(term, seconds)
        ended = term.first_seen.get(b"1 ended")
        rss_at_sigterm = rss.process.memory_info().rss
        exited = end_with_sigterm(term)
        peak = rss.stop()
    finally:
        rss.stop()
        term.close(signal.SIGKILL)
    return {
        "probes": len(latencies) + unanswered,
        "unanswered": unanswered,
        "key_latency_ms": summary(latencies),
        "peak_rss_mib": round(peak / 2**20, 1),
        "rss_at_sigterm_mib": round(rss_at_sigterm / 2**20, 1),
        "child_ended_after_s": round(ended - began, 1) if ended is not None else None,
        "sigterm_to_exit_s": round(exited, 2) if exited is not None else None,
    }


def describe(label: str, result: dict[str, object]) -> str:
    latency = result["key_latency_ms"]
    return (
        f"{label}: key latency median {latency['median']} ms, p95 {latency['p95']} ms,"  # type: ignore[index]
        f" max {latency['max']} ms ({result['probes']} keys, {result['unanswered']}"  # type: ignore[index]
        f" unanswered in {PROBE_TIMEOUT_S:g} s); peak RSS {result['peak_rss_mib']} MiB;"
        f" SIGTERM to exit {result['sigterm_to_exit_s']} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="megabytes the child prints")
    parser.add_argument("--line", type=int, default=100, help="bytes per line")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long keys are probed")
    parser.add_argument("--size", default="160x48", help="terminal COLUMNSxLINES")
    parser.add_argument("--out", default=str(RESULTS / "flood.json"))
    ns = parser.parse_args()
    columns, lines = (int(v) for v in ns.size.split("x"))
    size = (columns, lines)
    # The same app and probes with a child that prints nothing: what the machine's own
    # load costs a key now.
    reference = run(["proclab.core.tasks:sleep", "--args", "(3600,)"], ns.seconds, size)
    print(describe("a sleeping child (reference)", reference))
    flood = run(
        ["proclab.core.tasks:flood", "--args", f"({ns.mb * 1_000_000}, {ns.line})"],
        ns.seconds,
        size,
    )
    print(describe(f"{ns.mb} MB in {ns.line}-byte lines", flood))
    print(f"the flood's child ended after {flood['child_ended_after_s']} s (None: still running)")
    write_results(
        ns.out,
        {
            "size": ns.size,
            "flood_mb": ns.mb,
            "line_bytes": ns.line,
            "window_s": ns.seconds,
            "load_average_at_end": list(os.getloadavg()),
            "reference": reference,
            "flood": flood,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
