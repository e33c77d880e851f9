# proclab's bootstrap for a watched program, put first on its PYTHONPATH.
#
# Python imports `sitecustomize` at startup, before the program's code: this one loads
# proclab's hook (when PROCLAB_HOOK names a socket that exists), then steps aside so that
# sys.path and sys.modules look as they would without it, and runs the sitecustomize the
# program would have run (the next one on sys.path), as ddtrace-run and
# opentelemetry-instrument do. Errors in that one surface exactly as they would have.
#
# Any Python may load this file (a watched program can run python2), so it is written in
# syntax every interpreter parses; the hook itself needs Python 3.7.
import os
import sys


def _proclab_here():
    return os.path.dirname(os.path.abspath(__file__))


def _proclab_load(here):
    path = os.environ.get("PROCLAB_HOOK")
    # No socket, no hook: not even an import, so the program runs as it would without.
    if not path or sys.version_info < (3, 7) or not os.path.exists(path):
        return
    before = set(sys.modules)
    try:
        import _proclab_hook

        if _proclab_hook.install(path):
            return
    except Exception:
        pass
    # Nobody answered (a socket left behind): leave no module behind either.
    for name in set(sys.modules) - before:
        del sys.modules[name]


def _proclab_step_aside(here):
    sys.path[:] = [p for p in sys.path if not p or os.path.abspath(p) != here]
    del sys.modules["sitecustomize"]


_proclab_dir = _proclab_here()
_proclab_load(_proclab_dir)
_proclab_step_aside(_proclab_dir)
# The program's own sitecustomize, if any. If there is none, the ImportError (named
# "sitecustomize") is what site.py expects and ignores, as without proclab.
import sitecustomize  # noqa: E402, F401
