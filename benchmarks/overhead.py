"""proclab's own CPU while it watches 100 sleeping children, against htop, in one run.

Both run in 80x24 pseudo-terminals at the same time, with the same 100 extra processes on
the machine (proclab's own children, which htop lists too): proclab at its default 1 s
refresh, htop at `-d 10` (1 s). After a settling period both are measured over the same
window; the ratio is what matters (issue 15's targets: <= 0.5x htop at 100 children,
<= 1x at 1,000). In the same window, the least a Textual app pays to redraw a screen of
rows once a second (benchmarks/textual_floor.py, sampling nothing): what proclab spends
above it is its own. Also: time from launch to proclab's first full frame (target <= 1 s).

    python benchmarks/overhead.py [--children 100] [--seconds 30] [--out benchmarks/results/overhead.json]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from results_file import write_results
from terminal import Terminal

PROCLAB = str(Path(sys.executable).with_name("proclab"))
FIRST_FRAME = b"Quit"  # the footer: drawn as part of the first full frame

RESULTS = Path(__file__).with_name("results")  # read now: main() forgets __file__


HELLO = [sys.executable, str(Path(__file__).with_name("hello_textual.py"))]
FLOOR = [sys.executable, str(Path(__file__).with_name("textual_floor.py"))]


def first_frame_seconds(rounds: int = 5, argv: list[str] | None = None) -> list[float]:
    """Launch to first full frame (the footer drawn), with no children."""
    times = []
    for _ in range(rounds):
        term = Terminal(argv or [PROCLAB])
        times.append(term.wait_for(FIRST_FRAME))
        term.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=8.0)
    parser.add_argument("--out", default=str(RESULTS / "overhead.json"))
    ns = parser.parse_args()
    if shutil.which("htop") is None:
        print("needs htop (apt-get install htop)", file=sys.stderr)
        return 2

    frames = first_frame_seconds()
    hello = first_frame_seconds(argv=HELLO)
    median, hello_median = sorted(frames)[len(frames) // 2], sorted(hello)[len(hello) // 2]
    print(
        f"launch to first frame: proclab median {median:.2f} s, a two-widget Textual app"
        f" {hello_median:.2f} s (target <= 1 s)"
    )

    proclab = Terminal(
        [
            PROCLAB,
            "proclab.core.tasks:sleep",
            "--args",
            "(3600,)",
            "--count",
            str(ns.children),
            "--max-procs",
            str(ns.children + 10),
        ]
    )
    proclab.wait_for(f"{ns.children} live".encode(), timeout=120)
    htop = Terminal(["htop", "-d", "10"])
    floor = Terminal(FLOOR)
    time.sleep(ns.settle)
    p0, h0, f0, b0, t0 = (
        proclab.cpu_seconds(),
        htop.cpu_seconds(),
        floor.cpu_seconds(),
        proclab.bytes_written,
        time.monotonic(),
    )
    time.sleep(ns.seconds)
    p1, h1, f1, b1, t1 = (
        proclab.cpu_seconds(),
        htop.cpu_seconds(),
        floor.cpu_seconds(),
        proclab.bytes_written,
        time.monotonic(),
    )
    floor.close()
    htop.close()
    proclab.close()

    window = t1 - t0
    ours, theirs = (p1 - p0) / window * 100, (h1 - h0) / window * 100
    least = (f1 - f0) / window * 100
    ratio = ours / theirs if theirs > 0 else float("inf")
    target = 0.5 if ns.children <= 100 else 1.0
    print(f"over {window:.0f} s with {ns.children} sleeping children, 80x24, 1 s refresh:")
    print(
        f"  proclab {ours:.2f}% of a core   htop {theirs:.2f}%   ratio {ratio:.2f}x"
        f" (target <= {target}x)"
    )
    print(
        f"  a Textual app redrawing 20 rows a second, sampling nothing: {least:.2f}%"
        f" ({least / theirs if theirs > 0 else float('inf'):.2f}x htop)"
    )
    print(f"  proclab wrote {(b1 - b0) / window * 60 / 1024:.1f} KiB per minute to the terminal")
    write_results(
        ns.out,
        {
            "children": ns.children,
            "window_s": round(window, 1),
            "proclab_cpu_percent": round(ours, 2),
            "htop_cpu_percent": round(theirs, 2),
            "textual_floor_cpu_percent": round(least, 2),
            "ratio": round(ratio, 2),
            "target": target,
            "proclab_kib_per_minute": round((b1 - b0) / window * 60 / 1024, 1),
            "first_frame_s": [round(t, 3) for t in frames],
            "hello_textual_first_frame_s": [round(t, 3) for t in hello],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
