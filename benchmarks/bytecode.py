"""proclab's own modules compiled, as an installed proclab has them, for one benchmark run.

pip and uv compile a package's modules as they install it (for proclab's dependencies,
`compile-bytecode` in pyproject.toml). The README's install is editable: proclab's own
modules are compiled when first imported, and on a machine that sets
PYTHONDONTWRITEBYTECODE (as these do) the result is never kept, so every new interpreter
compiles them again: every spawn child among them (about 20 ms for what a spawn TCP
handler imports, python -X importtime). `--bytecode` in tcp.py and spawn.py measures
proclab as installed; without it, as this checkout runs here. The compiled files are
removed after the run, leaving the checkout as it was.
"""

from __future__ import annotations

import compileall
import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "tui")  # proclab.core and proclab.tui (pyproject's package-dir)


def package_roots(before: str = "") -> list[Path]:
    """proclab's packages in this checkout, and in an older tree's proclab/ if given."""
    roots = [REPO / name for name in PACKAGES]
    if before:
        roots += [Path(before) / "proclab" / name for name in PACKAGES]
    return [root for root in roots if root.is_dir()]


@contextlib.contextmanager
def compiled(roots: list[Path], wanted: bool = True) -> Iterator[None]:
    """Bytecode for every module under `roots` while the block runs (if `wanted`)."""
    if not wanted:
        yield
        return
    had = {folder for root in roots for folder in root.rglob("__pycache__")}
    try:
        for root in roots:
            compileall.compile_dir(root, quiet=1)  # writes whatever PYTHONDONTWRITEBYTECODE says
        yield
    finally:
        for root in roots:
            for folder in root.rglob("__pycache__"):
                if folder not in had:
                    shutil.rmtree(folder, ignore_errors=True)
