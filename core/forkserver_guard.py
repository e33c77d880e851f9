"""Imported only by the fork server, as a preload module: makes the fork server die with
proclab, and only with proclab.

The fork server normally exits when proclab's end of its "alive" pipe closes, but every
forkserver child holds a copy of that pipe, so a paused (stopped) child keeps the server
alive, and with it the child: its watchdog thread cannot run while it is stopped, and the
kernel's parent-death SIGCONT it asked for only comes when its parent, the fork server,
dies. Asking the kernel to SIGKILL the fork server when proclab dies breaks that cycle.
(The parent-death signal follows the thread that started the server: proclab starts it
from its main thread, before the interface runs.)

It leaves proclab's process group: a signal to the whole group (`timeout`, `kill --
-PGID`, a terminal's hang-up) killed it with proclab, and with it every forkserver
child's exit status ("not known: its fork server ended before it told it"), before
proclab's grace period and SIGKILL had run. proclab ends its children itself; the fork
server ends when proclab closes its pipe or dies. In a group of its own it is a
background job of proclab's terminal, which it never writes to: proclab starts it with
its fds 1 and 2 on /dev/null (methods._helpers_write_nowhere), so `stty tostop`
cannot stop it.
"""

from __future__ import annotations

import contextlib
import os
import signal

from proclab.core import bootstrap

if (
    bootstrap.prctl is not None
    and bootstrap.prctl(bootstrap.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
):
    # Each child this server forks finds it said, and needs no watchdog thread of its
    # own to die with proclab (bootstrap.die_with_parent).
    bootstrap.guarded_fork_server = os.getpid()

# A session leader (started by setsid) cannot: no group signal reaches it anyway.
with contextlib.suppress(OSError):
    os.setpgid(0, 0)
