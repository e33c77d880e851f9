"""Figures straight from /proc: a process's in three small reads, the machine's in two.

psutil's oneshot() reads the same files with several layers of Python on top; at one
reading per child per second that was most of proclab's own CPU with 100 children, and
importing psutil alone costs a tenth of a second of proclab's start-up. The sampler reads
here; the tests check these figures against psutil.

Files and fields (proc(5)):
  /proc/PID/stat       state, utime, stime (clock ticks), num_threads, starttime (clock ticks
                       since boot), rss (pages), processor (the CPU it last ran on)
  /proc/PID/status     voluntary_ctxt_switches, nonvoluntary_ctxt_switches
  /proc/PID/schedstat  time on a CPU, time waiting on a run queue (ns), timeslices

The main thread's schedstat also says whether it has run at all since the last reading:
its time on a CPU grows at every switch out, and its timeslices at every switch in. When
neither moved, its context switches (status, the dearest of the three files: 38 us of 86
here) and the children it started cannot have changed, and the last reading's stand.
When its stat did not change either (a sleeping child's does not, byte for byte), the
whole last reading stands, and nothing is parsed: that was 10 of a sleeping child's 13 us
a tick here.
"""

from __future__ import annotations

import os
import threading
import time
from typing import NamedTuple

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# When the machine booted, on the wall clock, to the microsecond: a process's start in
# /proc is counted on CLOCK_BOOTTIME. /proc/stat's btime (and psutil's boot_time) is rounded
# to a whole second, and drifts from the wall clock with every step NTP takes: it made new
# children up to a second older than they were (0.77 s on one machine), and their first
# CPU % half the truth.
BOOT_TIME = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)

# The kernel's state letters, as psutil names them.
STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "disk-sleep",
    "T": "stopped",
    "t": "tracing-stop",
    "Z": "zombie",
    "X": "dead",
    "x": "dead",
    "I": "idle",
    "P": "parked",
    "W": "waking",
    "K": "wake-kill",
}


class Reading(NamedTuple):
    status: str
    user: float  # seconds
    system: float
    threads: int
    rss: int  # bytes
    core: int
    started: float  # wall clock, from the process's start time
    ctx_voluntary: int
    ctx_involuntary: int
    run_delay: float  # seconds waiting for a CPU (main thread)
    name: str = ""  # comm: the kernel's command name, which an exec changes
    # The main thread's schedstat as read (time on a CPU in ns, timeslices); None where the
    # kernel keeps none. Equal in two readings: it has not run in between.
    ran: tuple[int, int] | None = None
    raw: tuple[bytes, bytes] = (b"", b"")  # stat and schedstat as read
    reaped: float = 0.0  # CPU seconds of the children it reaped (and theirs): not in user


class Files:
    """One process's stat and schedstat, kept open and read again with pread: without the
    path's lookup, the open and the close, a sleeping child's tick took 5.7 us here
    against 9.7. An open file names the process it was opened for: once that process is
    reaped, reading it fails (ProcessLookupError), whatever process gets its pid."""

    __slots__ = ("schedstat", "stat")

    def __init__(self, pid: int) -> None:
        self.stat = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.schedstat = os.open(f"/proc/{pid}/schedstat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.schedstat = -1  # a kernel without schedstats (or gone: stat will say)

    def read(self) -> tuple[bytes, bytes]:
        # One read whole: a file of one record, far below 4 KiB (see _rest).
        stat = os.pread(self.stat, 4096, 0)
        if not stat:
            raise ProcessLookupError("the process is gone")
        return stat, os.pread(self.schedstat, 4096, 0) if self.schedstat >= 0 else b""

    def close(self) -> None:
        for fd in (self.stat, self.schedstat):
            if fd >= 0:
                os.close(fd)
        self.stat = self.schedstat = -1


def read(pid: int, last: Reading | None = None, files: Files | None = None) -> Reading:
    """Raises OSError (FileNotFoundError, ProcessLookupError) once the process is gone.

    `last`: this process's previous reading; if its main thread has not run since, its
    context switches are taken from there rather than read again, and if its stat did not
    change either, `last` itself is returned. `files`: the process's, kept open."""
    if files is not None:
        stat, schedstat = files.read()
    else:
        stat = _read(f"/proc/{pid}/stat")
        try:
            schedstat = _read(f"/proc/{pid}/schedstat")
        except OSError:
            schedstat = b""  # a kernel without schedstats
    raw = (stat, schedstat)
    if last is not None and schedstat and raw == last.raw:
        return last
    name, fields = _split_stat(stat)
    ran: tuple[int, int] | None
    try:
        on_cpu, waited, slices = schedstat.split()[:3]
        run_delay, ran = int(waited) / 1e9, (int(on_cpu), int(slices))
    except (IndexError, ValueError):
        run_delay, ran = 0.0, None
    if last is not None and not_run_since(last, ran):
        voluntary, involuntary = last.ctx_voluntary, last.ctx_involuntary
    else:
        voluntary, involuntary = _context_switches(pid)
    return Reading(
        status=STATES.get(fields[0].decode(), "running"),
        user=int(fields[11]) / CLOCK_TICKS,
        system=int(fields[12]) / CLOCK_TICKS,
        threads=int(fields[17]),
        rss=int(fields[21]) * PAGE_SIZE,
        core=int(fields[36]),
        started=wall_of(int(fields[19])),
        ctx_voluntary=voluntary,
        ctx_involuntary=involuntary,
        run_delay=run_delay,
        name=name,
        ran=ran,
        raw=raw,
        reaped=sum(_reaped(fields)),
    )


def not_run_since(last: Reading, ran: tuple[int, int] | None) -> bool:
    """Whether a main thread whose schedstat now reads `ran` has not run since `last`."""
    return ran is not None and ran == last.ran


def _read(path: str) -> bytes:
    """A whole /proc file. os.read rather than open(): 13 us against 19 a file here, and
    the sampler reads two or three for every process each tick."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _rest(fd, os.read(fd, 4096))
    finally:
        os.close(fd)


def _rest(fd: int, first: bytes) -> bytes:
    """`first`, the start of a /proc file, and the rest of it, read until the end. A file
    of one record (stat, status, schedstat, meminfo) is written out whole by a read whose
    buffer holds it; one of many records (a list of children, maps) gives at most a page
    of whole records a read, often less than asked."""
    if not first:
        return first
    chunks = [first]
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks) if len(chunks) > 1 else first


def thread_group(pid: int) -> int:
    """The process a task belongs to (its Tgid): `pid` itself for a process, another for
    one of its threads, which /proc shows too."""
    status = _read(f"/proc/{pid}/status")
    at = status.find(b"\nTgid:")
    return int(status[at + 6 :].split(None, 1)[0]) if at >= 0 else pid


def _context_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) of the main thread, from /proc/PID/status."""
    status = _read(f"/proc/{pid}/status")
    at = status.find(b"voluntary_ctxt_switches:")
    if at == -1:
        return 0, 0
    tail = status[at:].split()
    return int(tail[1]), int(tail[3])


class Kept:
    """A /proc file kept open, read again from its start. Once a second, with
    cold caches, the path's lookup and a file object cost more than the read: /proc/stat
    took 254 us by open() and 71 kept open, /proc/meminfo 229 and 74, a thread's children
    149 and 48 (this machine). `path` may hold "{pid}", filled in with this process's pid
    when opened; a forked process opens its own."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd = -1
        self._pid = 0
        self._lock = threading.Lock()  # no read of an fd another thread is closing

    def read(self) -> bytes:
        with self._lock:
            if self._pid != os.getpid():
                self._fd = os.open(self._path.format(pid=os.getpid()), os.O_RDONLY | os.O_CLOEXEC)
                self._pid = os.getpid()
            os.lseek(self._fd, 0, os.SEEK_SET)  # a /proc file is written out again
            return _rest(self._fd, os.read(self._fd, 4096))

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                os.close(self._fd)
            self._fd, self._pid = -1, 0


def core_times(stat: bytes | None = None) -> list[tuple[float, float]]:
    """(busy, total) clock ticks per logical CPU since boot, from /proc/stat (`stat`: its
    text, if read already). Busy is all but idle and iowait, as psutil and top count it."""
    times: list[tuple[float, float]] = []
    for line in (_read("/proc/stat") if stat is None else stat).split(b"\n"):
        if not line.startswith(b"cpu"):
            break
        if line[3:4] == b" ":  # the all-CPU line
            continue
        # user nice system idle iowait irq softirq steal (guest is inside user)
        values = [int(v) for v in line.split()[1:9]]
        total = sum(values)
        times.append((total - values[3] - values[4], total))
    return times


def memory(meminfo: bytes | None = None) -> tuple[int, int]:
    """(total, available) bytes, from /proc/meminfo (`meminfo`: its text, if read)."""
    text = _read("/proc/meminfo") if meminfo is None else meminfo
    return _kib(text, b"MemTotal:") * 1024, _kib(text, b"MemAvailable:") * 1024


def _kib(meminfo: bytes, field: bytes) -> int:
    at = meminfo.find(field)
    return int(meminfo[at + len(field) :].split(None, 1)[0]) if at >= 0 else 0


class Brief(NamedTuple):
    """Who a process is: enough to find it in a tree and to tell it from a later process
    given the same pid."""

    state: str  # the kernel's letter: R, S, Z...
    ppid: int
    pgid: int
    start: int  # clock ticks since boot: with the pid, names one process for ever
    name: str  # the command name (comm)

    @property
    def started(self) -> float:
        """When it started, on the wall clock (to the clock tick)."""
        return wall_of(self.start)


def wall_of(start: int) -> float:
    """A start in clock ticks since boot, on the wall clock."""
    return BOOT_TIME + start / CLOCK_TICKS


def _split_stat(stat: bytes) -> tuple[str, list[bytes]]:
    """/proc/PID/stat's command name (field 2) and the fields after it (field 3, the
    state, first). The name may hold spaces and parentheses: split after the last ')'."""
    close = stat.rindex(b")")
    name = stat[stat.index(b"(") + 1 : close].decode("utf-8", "replace")
    return name, stat[close + 2 :].split()


def brief(pid: int) -> Brief:
    """Raises OSError once the process is gone (and ValueError/IndexError if /proc says
    something unexpected)."""
    return brief_of(_read(f"/proc/{pid}/stat"))


def ancestors(pid: int) -> set[int]:
    """The processes above `pid`, its parent's parent and on, up to init (left out)."""
    found: set[int] = set()
    try:
        while (pid := brief(pid).ppid) > 1 and pid not in found:
            found.add(pid)
    except (OSError, ValueError, IndexError):
        pass  # one above has ended meanwhile: those found are still above
    return found


def brief_of(stat: bytes) -> Brief:
    """A Brief from /proc/PID/stat as read (ValueError/IndexError if it is not one)."""
    name, fields = _split_stat(stat)
    return Brief(
        state=fields[0].decode(),
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        start=int(fields[19]),
        name=name,
    )


MAX_ARGS = 64
MAX_ARG_CHARS = 1000


def read_cmdline(pid: int) -> tuple[str, ...]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read(MAX_ARGS * MAX_ARG_CHARS)
    except OSError:
        return ()
    # A title set over argv (setproctitle) leaves the rest of the area as NULs, read as
    # empty arguments; ps and htop show the title alone, and so does proclab (an empty
    # last argument of a real command line is lost with them, as in ps).
    raw = raw.rstrip(b"\0")
    parts = raw.split(b"\0") if raw else []
    return tuple(arg_text(p)[:MAX_ARG_CHARS] for p in parts[:MAX_ARGS])


def arg_text(raw: bytes) -> str:
    """An argument as the watch hook writes one (its _text): a byte that is not UTF-8 as a
    visible \\udcXX. Read as U+FFFD here, the same command line read two ways was told
    as an exec, twice."""
    return os.fsdecode(raw).encode("utf-8", "backslashreplace").decode("utf-8")


def reaped_cpu(pid: int) -> tuple[float, float]:
    """The user and system CPU seconds of the children a process has reaped (clock
    ticks), which wait4 counts into its own figures; (0, 0) if it cannot be read."""
    try:
        return _reaped(_split_stat(_read(f"/proc/{pid}/stat"))[1])
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0


def _reaped(fields: list[bytes]) -> tuple[float, float]:
    """cutime and cstime, from /proc/PID/stat's fields after its name."""
    return int(fields[13]) / CLOCK_TICKS, int(fields[14]) / CLOCK_TICKS


def last_cpu(pid: int) -> int:
    """The CPU a process last ran on, or is queued on if it has not run yet. Raises OSError
    once the process is gone (and ValueError/IndexError if /proc says something unexpected)."""
    return int(_split_stat(_read(f"/proc/{pid}/stat"))[1][36])


def newest_child() -> int:
    """The last process the calling thread forked that is not reaped yet: the kernel
    lists a thread's children in the order they were forked. Raises OSError, ValueError or
    IndexError where there is none or /proc cannot say."""
    return int(_read("/proc/thread-self/children").split()[-1])


def children_of(pid: int, kept: Kept | None = None) -> list[int]:
    """The processes `pid`'s main thread has started (/proc/PID/task/PID/children; `kept`:
    that file, kept open)."""
    try:
        text = kept.read() if kept is not None else _read(f"/proc/{pid}/task/{pid}/children")
        return [int(p) for p in text.split()]
    except (OSError, ValueError):
        return []


def children_of_every_thread(pid: int) -> list[int]:
    """The processes any of `pid`'s threads has started (a child's parent is the thread
    that forked it), and the orphans it adopted as a subreaper."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in threads:
        try:
            found.extend(int(p) for p in _read(f"/proc/{pid}/task/{tid}/children").split())
        except (OSError, ValueError):
            continue
    return found


def count_descendants(pid: int, limit: int) -> int:
    """How many processes descend from `pid` (children, their children...), counting no
    further than `limit`: enough to tell a fork bomb without walking all of it."""
    count = 0
    queue = children_of(pid)
    while queue and count < limit:
        child = queue.pop()
        count += 1
        queue.extend(children_of(child))
    return count
