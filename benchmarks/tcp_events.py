"""What one handler event costs `proclab serve`'s own process: the server thread reading a
pool worker's lines (an "accepted" and a "disconnected" per connection, as `--log all`
gets them) through to the console's line, as `proclab serve` prints it.

Real lines, written by a worker's Reporter with a live worker's pid, fed to the running
server's reader in reads of 120 lines (what a few workers' batched writes make). A pool
under load logs 2-3 lines a connection, thousands a second (benchmarks/tcp.py), so this
cost is part of what the pool pays for `--log all`.

    python benchmarks/tcp_events.py [--rounds 5] [--events 24000] [--data 0] [--before DIR]

--data N: also N chunks' lines (data_in, data_out in turn) per connection, each a
random chunk's first 32 bytes as a handler sends them (hex, handler.Reporter.chunk), so
that the figure includes making their previews. The default, 0, is the mix the earlier
results measured.

--before DIR: also the proclab in DIR/proclab (an older tree, `git archive`), each round
run in a fresh interpreter, the two trees alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_file import write_results

RESULTS = Path(__file__).with_name("results")
PER_READ = 120  # lines in one read of the event pipe


def child(events: int, data: int = 0) -> float:
    """µs per event, median of 5 passes, in this interpreter's proclab."""
    from proclab.core.controller import Controller
    from proclab.core.model import ServerEvent
    from proclab.core.output import escape_controls
    from proclab.core.server.handler import Reporter
    from proclab.core.server.tcp import ServerConfig, describe_event
    from proclab.tui.commands.serve import Console, _stamp

    controller = Controller()
    controller.start()
    console = Console()

    def show(event: object) -> None:  # as `proclab serve` prints (tui/commands/serve.py)
        if isinstance(event, ServerEvent):
            console.add(_stamp(event.time) + escape_controls(describe_event(event)))

    controller.subscribe(show)
    server = controller.server
    server.start(ServerConfig(port=0, mode="pool", workers=2, method="fork"))
    try:
        deadline = time.monotonic() + 10
        while not (workers := [r for r in controller.rows() if "pool worker" in (r.tag or "")]):
            if time.monotonic() > deadline:
                raise RuntimeError("no pool worker started")
            time.sleep(0.05)
        report = Reporter(-1, pid=workers[0].pid)
        lines: list[bytes] = []
        per_connection = 2 + data
        for n in range(PER_READ // per_connection):
            client = f"127.0.0.1:{40000 + n}"
            lines.append(report._line("accepted", client))
            for k in range(data):
                report.chunk(("data_in", "data_out")[k % 2], client, os.urandom(64), 64)
            lines.extend(line for line, _ in report.queue if isinstance(line, bytes))
            report.queue.clear()
            lines.append(
                report._line(
                    "disconnected",
                    client,
                    duration=0.0012,
                    bytes_in=640,
                    bytes_out=640,
                    reason="peer closed",
                )
            )
        read = b"".join(lines)
        per_read = len(lines)

        def feed(count: int) -> float:
            began = time.perf_counter()
            for _ in range(count // per_read):
                server._data_budget = 1 << 30  # every chunk's line read, none left out
                server._take_events(read)
                console._lines.clear()
            return (time.perf_counter() - began) / (count // per_read * per_read) * 1e6

        feed(events // 4)  # warm
        return statistics.median(feed(events) for _ in range(5))
    finally:
        server.stop()
        controller.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=24000)
    parser.add_argument("--data", type=int, default=0, help="chunks' lines per connection")
    parser.add_argument("--before", default="")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(RESULTS / "tcp_events.json"))
    ns = parser.parse_args()
    if ns.child:
        print(json.dumps(child(ns.events, ns.data)))
        return 0
    arms = {"now": dict(os.environ)}
    if ns.before:
        arms["before"] = {**os.environ, "PYTHONPATH": ns.before}
    got: dict[str, list[float]] = {arm: [] for arm in arms}
    for round_ in range(ns.rounds):
        for arm, env in arms.items():
            argv = [sys.executable, __file__, "--child", "--events", str(ns.events)]
            argv += ["--data", str(ns.data)]
            out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            got[arm].append(float(out.stdout.strip().splitlines()[-1]))
            print(f"round {round_ + 1} {arm:6} {got[arm][-1]:6.2f} µs/event", flush=True)
    figures: dict[str, object] = {"events_per_pass": ns.events, "per_read": PER_READ}
    figures["data_lines_per_connection"] = ns.data
    for arm, values in got.items():
        figures[arm] = {"median_us": round(statistics.median(values), 2), "rounds": values}
        print(f"{arm:6} median {statistics.median(values):6.2f} µs an event")
    if ns.before:
        ratio = statistics.median(got["now"]) / statistics.median(got["before"])
        figures["now_over_before"] = round(ratio, 3)
        print(f"now / before: {ratio:.2f}x")
    write_results(ns.out, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
