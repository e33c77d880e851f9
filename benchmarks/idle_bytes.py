"""Bytes proclab writes to its terminal per minute while idle: 20 sleeping children, no
key pressed, at 1 s and at 5 s refresh, in an 80x24 pseudo-terminal (what an SSH session
carries). Each run settles, then counts the bytes written over a window (20 s by default)
and scales them to a minute.

    python benchmarks/idle_bytes.py [--children 20] [--seconds 20] [--size 80x24] [--out benchmarks/results/idle_bytes.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from results_file import write_results
from terminal import Terminal

PROCLAB = str(Path(sys.executable).with_name("proclab"))
RESULTS = Path(__file__).with_name("results")  # read now: main() forgets __file__
REFRESHES = (1.0, 5.0)


def idle_bytes(
    children: int, refresh: float, seconds: float, settle: float, size: tuple[int, int]
) -> dict[str, float]:
    term = Terminal(
        [
            PROCLAB,
            "proclab.core.tasks:sleep",
            "--args",
            "(3600,)",
            "--count",
            str(children),
            "--refresh",
            str(refresh),
        ],
        size=size,
    )
    try:
        term.wait_for(f"{children} live".encode(), timeout=120)
        time.sleep(settle)
        b0, t0 = term.bytes_written, time.monotonic()
        time.sleep(seconds)
        b1, t1 = term.bytes_written, time.monotonic()
    finally:
        term.close()
    window = t1 - t0
    per_minute = (b1 - b0) / window * 60
    return {
        "refresh_s": refresh,
        "window_s": round(window, 1),
        "bytes": b1 - b0,
        "bytes_per_minute": round(per_minute),
        "bytes_per_refresh": round((b1 - b0) / (window / refresh)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=20)
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="window measured (scaled to 60 s)"
    )
    parser.add_argument("--settle", type=float, default=6.0)
    parser.add_argument("--size", default="80x24", help="terminal COLUMNSxLINES")
    parser.add_argument("--out", default=str(RESULTS / "idle_bytes.json"))
    ns = parser.parse_args()
    columns, lines = (int(v) for v in ns.size.split("x"))

    runs = []
    for refresh in REFRESHES:
        run = idle_bytes(ns.children, refresh, ns.seconds, ns.settle, (columns, lines))
        runs.append(run)
        print(
            f"{ns.children} sleeping children, {ns.size}, refresh {refresh:g} s: "
            f"{run['bytes_per_minute'] / 1024:.1f} KiB per minute "
            f"({run['bytes']} bytes in {run['window_s']:g} s, about {run['bytes_per_refresh']} a refresh)"
        )
    write_results(
        ns.out,
        {
            "children": ns.children,
            "size": ns.size,
            "note": f"bytes counted over {ns.seconds:g} s after {ns.settle:g} s settling, scaled to a minute",
            "runs": runs,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
