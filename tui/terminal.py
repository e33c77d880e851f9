"""Keep the terminal to the interface alone.

Every child process inherits fds 0, 1 and 2 from proclab until its bootstrap replaces
them; a spawn or forkserver child that fails before its bootstrap runs (say, unpickling
its arguments) would print its traceback straight onto the screen. So while the app runs,
fds 0, 1 and 2 point at /dev/null and the app talks to the terminal through private
copies of them (Textual reads sys.__stdin__ and writes sys.__stderr__, which are rebound
to those copies). Everything is put back on the way out, so a crash report still reaches
the terminal. Under `proclab web`, fds 0 and 1 are the pipes to textual-serve, which must
carry nothing but its protocol: they are kept the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import TextIO

from proclab.core.bootstrap import PR_SET_PDEATHSIG, prctl


@contextlib.contextmanager
def private_terminal() -> Iterator[None]:
    end_with_web()
    if not os.isatty(0) and not os.isatty(2) and not in_browser():
        yield  # not a terminal (a pipe, a test): nothing to protect
        return
    saved_fds = [os.dup(fd) for fd in (0, 1, 2)]
    saved_streams = (
        sys.stdin,
        sys.stdout,
        sys.stderr,
        sys.__stdin__,
        sys.__stdout__,
        sys.__stderr__,
    )
    # Written with backslashreplace, as Python's own stderr is: a string no terminal can
    # take (a lone surrogate, from a name that is not UTF-8) that was not escaped on its
    # way killed Textual's writer thread, and the app then hung on its full queue, deaf
    # to q and to SIGTERM.
    private: list[TextIO] = [
        open(os.dup(0), encoding="utf-8", closefd=True),  # noqa: SIM115 - closed below
        open(os.dup(1), "w", encoding="utf-8", errors="backslashreplace", closefd=True),  # noqa: SIM115
        open(_screen_fd(), "w", encoding="utf-8", errors="backslashreplace", closefd=True),  # noqa: SIM115
    ]
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        _set_streams(*private, *private)
        yield
    finally:
        for stream in private:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        for fd, saved in zip((0, 1, 2), saved_fds, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        os.close(devnull)
        _set_streams(*saved_streams)
        for stream in private:
            with contextlib.suppress(OSError, ValueError):
                stream.close()


def _screen_fd() -> int:
    """A new fd for what the app draws (Textual writes it to stderr): stderr's, unless it
    was sent elsewhere and stdout or stdin is the terminal (`proclab 2>/dev/null` ran the
    app, keys, children and all, and drew nothing)."""
    if in_browser() or os.isatty(2):
        return os.dup(2)
    if os.isatty(1):
        return os.dup(1)
    if os.isatty(0):
        with contextlib.suppress(OSError):
            return os.open(os.ttyname(0), os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    return os.dup(2)


def heeded(*signals: int) -> tuple[int, ...]:
    """Of `signals`, those this process was not started ignoring: a command run with `&`
    by a script, or under nohup, keeps ignoring SIGINT or SIGHUP, as programs do (a
    Ctrl+C sent 0.2 s in cancelled it, sent sooner was ignored)."""
    return tuple(s for s in signals if signal.getsignal(s) is not signal.SIG_IGN)


NO_TERMINAL = "the app needs a terminal, and stdin is not one"


def has_keyboard() -> bool:
    """Whether the app can read keys: from a terminal on stdin, or from the browser under
    `proclab web` (its pipes are meant). Textual's driver reads stdin and, at its end (a
    file, /dev/null, `ssh host proclab`), would read nothing in a loop at 100 % of a core."""
    return os.isatty(0) or in_browser()


def in_browser() -> bool:
    """Run by `proclab web` (textual-serve's web driver talks through fds 0 and 1)."""
    return "web_driver" in os.environ.get("TEXTUAL_DRIVER", "")


WEB_PID = "PROCLAB_WEB_PID"  # set by `proclab web` for each tab's app: its own pid


def end_with_web() -> None:
    """A tab's app under `proclab web` gets SIGTERM when proclab web dies, even by SIGKILL,
    and ends its children as for any SIGTERM. (Its pipes then close, and Textual's web
    driver stops reading them, but the app ran on, children and all.) Its pid is given,
    not read: a proclab web gone before the kernel was asked is seen at once."""
    web = os.environ.pop(WEB_PID, None)  # not for the children
    if web is None or prctl is None:
        return
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if str(os.getppid()) != web:
        os.kill(os.getpid(), signal.SIGTERM)


def _set_streams(*streams: object) -> None:
    """sys.stdin, stdout, stderr, then their __stdin__, __stdout__, __stderr__ twins (a
    library may write to those: they must not reach the terminal either)."""
    names = ("stdin", "stdout", "stderr", "__stdin__", "__stdout__", "__stderr__")
    for name, stream in zip(names, streams, strict=True):
        setattr(sys, name, stream)
