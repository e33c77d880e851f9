"""Mutation testing of the core modules behind the README's promises, with mutmut.

mutmut changes the code one small way at a time (a `<` for a `<=`, a constant, a dropped
call) and runs the tests that reach the changed function: a mutant the tests still pass
with (a survivor) is a change to proclab that no test would notice. Not part of CI: each
mutant costs a test run.

proclab's packages live in core/ and tui/ but are imported as proclab.core and
proclab.tui, which mutmut cannot map by itself. So this script stages a copy of the project
in .mutation/ with the packages under src/proclab/, runs mutmut there (the [tool.mutmut]
settings in pyproject.toml), and puts the mutated copy first on PYTHONPATH, so the
children, `proclab` subprocesses and fork servers the tests start import it too.

    uv run python benchmarks/mutation.py [--modules controller spec ...] [--sample N]
        [--max-children 2] [--seed 17] [--out benchmarks/results/mutation.json]

--sample N tries N mutants of each module, drawn at random (the seed makes the draw
repeatable), instead of all of them. mutmut learns which tests reach a function by running
them in its own process: a function that only runs inside a child (the bootstrap's
child_main) shows as "no tests", although the exit-path tests do exercise it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from results_file import write_results

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / ".mutation"
# under proclab.core
MODULES = ["controller", "bootstrap", "spec", "arguments", "server.handler", "scheduling.simulator"]


def stage() -> None:
    """A copy of the project whose packages sit where their import names say."""
    mutants = STAGE / "mutants"
    if mutants.exists():  # mutmut reuses results for unchanged code; keep them
        shutil.rmtree(mutants / "src", ignore_errors=True)
        shutil.rmtree(mutants / "tests", ignore_errors=True)
    for name in ("src", "tests"):
        shutil.rmtree(STAGE / name, ignore_errors=True)
    for package in ("core", "tui"):
        shutil.copytree(
            ROOT / package,
            STAGE / "src" / "proclab" / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copytree(ROOT / "tests", STAGE / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", STAGE / "pyproject.toml")


def mutmut(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(STAGE / "mutants" / "src"),
        # the console script of a `proclab` subprocess imports the mutated copy too
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [sys.executable, "-m", "mutmut", *args],
        cwd=STAGE,
        env=env,
        text=True,
        capture_output=True,
    )


def all_results() -> dict[str, int | None]:
    """Every mutant's name and mutmut's exit code for it (None: not tried yet)."""
    results: dict[str, int | None] = {}
    for meta in (STAGE / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        results.update(data.get("exit_code_by_key", {}))
    return results


def module_of(mutant: str) -> str:
    """proclab.core.server.handler.x_serve__mutmut_1 -> server.handler"""
    return ".".join(mutant.split(".")[2:-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="+", default=MODULES, choices=MODULES)
    parser.add_argument("--sample", type=int, default=None, help="mutants per module")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/mutation.json"))
    ns = parser.parse_args()

    from mutmut.__main__ import status_by_exit_code

    began = time.monotonic()
    stage()
    # The first run makes every mutant and learns which tests reach which function; it
    # tries one mutant only.
    first = mutmut("run", "proclab.core.arguments.x_parse_args__mutmut_1")
    if not all_results():
        print(first.stdout[-3000:], first.stderr[-3000:], sep="\n")
        return 1
    names = sorted(n for n in all_results() if module_of(n) in ns.modules)
    draw = random.Random(ns.seed)
    chosen: list[str] = []
    for module in ns.modules:
        mine = [n for n in names if module_of(n) == module]
        chosen += draw.sample(mine, min(ns.sample, len(mine))) if ns.sample else mine
    print(f"{len(chosen)} of {len(names)} mutants of {', '.join(ns.modules)}", flush=True)
    run = mutmut("run", "--max-children", str(ns.max_children), *chosen)
    results = all_results()
    statuses = {n: status_by_exit_code.get(results.get(n), "not checked") for n in chosen}
    by_module: dict[str, Counter[str]] = {}
    for name, status in statuses.items():
        by_module.setdefault(module_of(name), Counter())[status] += 1
    survivors = sorted(n for n, s in statuses.items() if s == "survived")
    for name in survivors:
        print(f"--- {name}")
        print(mutmut("show", name).stdout.strip())
    for module, counts in by_module.items():
        killed = counts["killed"] + counts["timeout"]
        tested = killed + counts["survived"]
        score = f"{100 * killed / tested:.0f} %" if tested else "n/a"
        print(f"{module}: {dict(counts)}; score {score} of the {tested} mutants with tests")
    if run.returncode != 0:
        print(run.stdout[-2000:], run.stderr[-2000:], sep="\n")
    write_results(
        ns.out,
        {
            "seconds": round(time.monotonic() - began),
            "sample_per_module": ns.sample,
            "seed": ns.seed,
            "modules": {m: dict(c) for m, c in by_module.items()},
            "survivors": survivors,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
