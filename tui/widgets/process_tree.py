"""What the process table draws for a tree of processes: the order and the guides of
htop's tree view, and the name a person knows each process by.

Pure functions of rows, so the table can call them once per reorder and tests can read
them without an app.
"""

from __future__ import annotations

import functools
import posixpath
import shlex
from collections.abc import Iterable, Mapping, Sequence

from proclab.core import shell
from proclab.core.model import MpFacts, ProcessRow
from proclab.core.words import plural

# htop's guides: each level takes three cells, its last child closes the branch.
BRANCH = "├─ "
LAST = "└─ "
THROUGH = "│  "
PAST = "   "

POOL_WORDS = {"Pool": "Pool", "ProcessPoolExecutor": "Executor"}


def tree_order(
    ordered: Sequence[int], parents: Mapping[int, int | None]
) -> tuple[list[int], dict[int, str]]:
    """`ordered` (ids, sorted) as a tree: each id under its nearest ancestor among them,
    siblings in the order given; and each id's guides ("" for a root). An id whose
    ancestors are not among `ordered` (filtered out, cleared, never seen) is a root; a
    loop of parents (a pid reused as its own ancestor) cannot hide a row."""
    shown = set(ordered)
    children: dict[int | None, list[int]] = {}
    for rec_id in ordered:
        parent = parents.get(rec_id)
        if parent is not None and (parent not in shown or parent == rec_id):
            parent = _shown_ancestor(rec_id, parents, shown)
        kids = children.get(parent)
        if kids is None:
            children[parent] = [rec_id]
        else:
            kids.append(rec_id)
    order: list[int] = []
    guides: dict[int, str] = {}
    for root in [*children.get(None, ()), *ordered]:  # then any left in a loop
        if root in guides:
            continue
        # (id, its guides, what its children's guides begin with), last pushed first out
        stack: list[tuple[int, str, str]] = [(root, "", "")]
        while stack:
            rec_id, mine, lead = stack.pop()
            if rec_id in guides:
                continue
            order.append(rec_id)
            guides[rec_id] = mine
            kids = children.get(rec_id)
            if kids:
                stack.append((kids[-1], lead + LAST, lead + PAST))
                branch, through = lead + BRANCH, lead + THROUGH
                stack.extend((kid, branch, through) for kid in reversed(kids[:-1]))
    return order, guides


def _shown_ancestor(rec_id: int, parents: Mapping[int, int | None], shown: set[int]) -> int | None:
    seen = {rec_id}
    parent = parents.get(rec_id)
    while parent is not None and parent not in shown:
        if parent in seen:
            return None
        seen.add(parent)
        parent = parents.get(parent)
    return None if parent in seen else parent


def shown_name(row: ProcessRow) -> str:
    """The name a person knows the process by: its Process.name for a multiprocessing
    child, its pool and tasks for a pool worker, its role for one of multiprocessing's
    helpers, its command for any other process proclab watches; else the row's name."""
    mp = row.mp
    if mp is not None:
        if mp.pool_kind:
            return pool_label(mp, row.state.is_over)
        if mp.role:
            return f"mp {mp.role}"
        if mp.name:
            return mp.name
    if row.command:  # files by their names: the details show the whole command line
        return row.command if "/" not in row.command else _files_by_name(row.command)
    return row.name


@functools.lru_cache(maxsize=4096)  # each row's, on every tick: a command rarely changes
def _files_by_name(command: str) -> str:
    """'/usr/bin/python3 /home/me/lesson.py fork' -> 'python3 lesson.py fork'. Only words
    that are paths: split on spaces, `sh -c 'echo a/b/c'` was shown as `... echo c'`,
    and `-c 'print(1/2)'` as `2)'`. A command cut short inside its quotes stays whole."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    return shell.join(_file_name(word) for word in words)


def _file_name(word: str) -> str:
    """'/usr/bin/python3' -> 'python3', 'examples/day36.py' -> 'day36.py'; a word that
    is not a path (an option, a program's text: 'print(1/2)', 'echo a/b') stays."""
    if "/" not in word or word.startswith("-") or not _PATH_CHARS.issuperset(word):
        return word
    return posixpath.basename(word.rstrip("/")) or word


# What a file's path is written with; a program's text ("print(1/2)") has more.
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+~@,:/")


def pool_label(mp: MpFacts, over: bool) -> str:
    """ "Pool worker: 25 tasks done" (a task counts once its result is handed back: "0
    tasks" of a worker busy with its first read as idle); an ended worker whose count is
    not final (the pool ended it before it said its last) did at least that many: "≥25"."""
    kind = POOL_WORDS.get(mp.pool_kind or "", mp.pool_kind)
    if mp.tasks is None:
        return f"{kind} worker"
    count = plural(mp.tasks, "task")
    return f"{kind} worker: {'≥' if over and not mp.counts_final else ''}{count} done"


def has_tree(rows: Iterable[ProcessRow]) -> bool:
    return any(row.parent is not None for row in rows)
