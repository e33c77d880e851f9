"""How close start + join can come to bare multiprocessing: the part of proclab's cost
that is the child's own set-up, which no change to proclab's threads can remove.

Three arms in one process, interleaved round by round (the ratios are what matter):
  bare:     raw multiprocessing.Process(target=os.getpid), start, join (benchmarks/spawn.py);
  set-up:   the same Process running proclab's bootstrap (core/bootstrap.child_main) on
            os:getpid, as every proclab child does: its output to two pipes, a session of
            its own, the death signal, its title, and under forkserver its exit record
            (proclab reaps a fork or spawn child with wait4, which gives it the figures).
            No controller thread takes part: the parent makes the pipes, starts, joins,
            and reads any record;
  proclab:  the controller's spawn + join (launcher, watcher, rows, events).

set-up / bare is a floor for proclab / bare: what the child does for proclab, paid on the
child's critical path whatever the parent does. issue 15 asks <= 1.2x for each start
method.

    python benchmarks/spawn_floor.py [--rounds 200] [--methods fork,forkserver] [--bytecode]
                                     [--out benchmarks/results/spawn-floor.json]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from results_file import write_results
from spawn import controller_once, raw_once, writers_made_ahead

RESULTS = Path(__file__).with_name("results")
TARGET = 1.2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--methods", default="fork,forkserver")
    parser.add_argument("--out", default=str(RESULTS / "spawn-floor.json"))
    parser.add_argument(
        "--bytecode", action="store_true", help="proclab's modules compiled, as installed"
    )
    ns = parser.parse_args()
    from bytecode import compiled, package_roots

    # No child re-imports this script (spawn.py's "bare" arm): only what each arm needs.
    main_module = sys.modules["__main__"]
    if hasattr(main_module, "__file__"):
        del main_module.__file__
    with compiled(package_roots(), ns.bytecode):
        return measure(ns)


def measure(ns: argparse.Namespace) -> int:
    from proclab.core.controller import Controller
    from proclab.core.spec import build_spec

    # Started first: it sets the fork server's preload (proclab's bootstrap and title),
    # which the set-up arm's forkserver children then find loaded, as proclab's do.
    controller = Controller(sample_interval=1.0).start()
    results: dict[str, object] = {}
    try:
        for method in ns.methods.split(","):
            ctx = multiprocessing.get_context(method)
            spec = build_spec("os:getpid", method=method)
            arms: dict[str, list[float]] = {"bare": [], "set-up": [], "proclab": []}
            runs: dict[str, Callable[[], float]] = {
                "bare": partial(raw_once, ctx),
                "set-up": partial(setup_once, ctx),
                "proclab": partial(_proclab_once, controller, spec),
            }
            for run in runs.values():  # warm every path
                run()
            for n in range(ns.rounds):
                names = list(runs)
                for name in names[n % 3 :] + names[: n % 3]:  # each arm first in turn
                    arms[name].append(runs[name]())
            ms = {name: statistics.median(times) * 1000 for name, times in arms.items()}
            floor, ours = ms["set-up"] / ms["bare"], ms["proclab"] / ms["bare"]
            share = (ms["set-up"] - ms["bare"]) / (ms["proclab"] - ms["bare"])
            results[method] = {
                "rounds": ns.rounds,
                "median_ms": {name: round(v, 3) for name, v in ms.items()},
                "setup_over_bare": round(floor, 2),
                "proclab_over_bare": round(ours, 2),
                "setup_share_of_proclab_excess": round(share, 2),
                "target": TARGET,
            }
            print(
                f"{method:<10}  bare {ms['bare']:.2f} ms  set-up {ms['set-up']:.2f} ms"
                f"  proclab {ms['proclab']:.2f} ms   set-up/bare {floor:.2f}x"
                f"  proclab/bare {ours:.2f}x  (target <= {TARGET}x); the child's set-up is"
                f" {share:.0%} of proclab's time over bare",
                flush=True,
            )
    finally:
        controller.close()
    ahead = writers_made_ahead()
    write_results(
        ns.out, {"bytecode": ns.bytecode, "fork_writers_made_ahead": ahead, "results": results}
    )
    return 0


def _proclab_once(controller, spec) -> float:  # type: ignore[no-untyped-def]
    return float(controller_once(controller, spec)[0])


def setup_once(ctx: multiprocessing.context.BaseContext) -> float:
    """Start + join of a child running proclab's bootstrap, its exit record read where
    the child writes one (forkserver)."""
    from proclab.core.bootstrap import (
        ChildPayload,
        InheritedFd,
        child_main,
        prepare_writers,
        read_exit_record,
        record_pipe,
    )

    began = time.perf_counter()
    if ctx.get_start_method() == "fork":
        prepare_writers()  # as proclab's launcher does
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    record_r, record_w, record_id = record_pipe()
    payload = ChildPayload(
        kind="module",
        location="os",
        function="getpid",
        args=(),
        kwargs={},
        cwd=os.getcwd(),
        affinity=None,
        stdout=InheritedFd(out_w),
        stderr=InheritedFd(err_w),
        method=ctx.get_start_method(),
        keep_fds=(),
        title_target="os:getpid",
        record=InheritedFd(record_w),
        record_pipe=record_id,
    )
    process = ctx.Process(target=child_main, args=(payload,))
    process.start()
    for fd in (out_w, err_w, record_w):
        os.close(fd)
    process.join()
    record = read_exit_record(record_r)
    elapsed = time.perf_counter() - began
    for fd in (out_r, err_r, record_r):
        os.close(fd)
    process.close()
    if (record is not None) != (ctx.get_start_method() == "forkserver"):
        raise RuntimeError(f"an exit record only under forkserver, not: {record!r}")
    return elapsed


if __name__ == "__main__":
    sys.exit(main())
