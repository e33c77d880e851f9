"""proclab's hook inside every Python process of a watched program.

The sitecustomize beside this file imports it before the program's own code runs, when
the environment names proclab's socket (PROCLAB_HOOK). It then:

- connects to proclab (one SOCK_SEQPACKET connection per process, made again in each
  fork child) and says `hello` (argv, parent, how it started);
- gives the process output pipes of its own: two new pipes whose read ends travel to
  proclab with the hello, their write ends put on fds 1 and 2. Only fds that are
  proclab's pipes are taken over (the root's, listed by proclab in PROCLAB_HOOK_PIPES,
  and those of hooked ancestors): output a parent captures (subprocess's stdout=PIPE) or
  sends to a file stays where the program sent it;
- reports multiprocessing's calls (start, the child's run, join, terminate, kill, a
  child's renaming itself), the exit status of every child this process reaps
  (os.waitpid and friends), what it execs and what its subprocess children run, pool
  workers with their task counts, and multiprocessing's helper processes.

Rules it keeps, because it runs inside someone else's program:
- standard library only, and little of it: `_socket` rather than `socket` (which imports
  enum, selectors and more), a small JSON writer rather than `json`, multiprocessing
  patched only when the program imports it (an import hook), never imported here;
- it never breaks the program: every piece of it is guarded, a failure to reach proclab
  turns it off for good, and each patched call behaves as the original (same result,
  same exceptions, same side effects);
- sends never block and never raise SIGPIPE; a message that does not fit is dropped and
  counted, and the next message that fits tells proclab how many were lost.

Written for Python 3.7 and later: a watched program may run any interpreter.
"""

from __future__ import annotations

import _socket
import _thread
import os
import sys
import time

PIPES_ENV = "PROCLAB_HOOK_PIPES"
CONNECT_TIMEOUT = 1.0  # connect and hello only wait when proclab's queue is full
REPORT_EVERY = 0.1  # a pool worker reports its task count at most this often
KEEP_PIPE_IDS = 16  # pipes of the nearest hooked ancestors, passed down in the env

# Bounds on what a message carries, well under proclab's limits (core/watch/protocol.py).
MAX_ARGS = 64
MAX_ARG_CHARS = 1000
MAX_ARGV_CHARS = 8000  # proclab takes a message of 64 KiB: 8,000 characters of 4 bytes fit
MAX_REPR_CHARS = 200

_S_IFMT = 0o170000
_S_IFIFO = 0o010000

_sock = None  # this process's connection to proclab, or None: the hook is off
_sock_ino = 0  # its inode: tells a socket of ours from a reused fd number
_path = ""
_ours: list = []  # ids ("dev:ino") of the pipes that are proclab's, nearest last
_dropped = 0
_forked_by = 0  # set in the parent just before a fork: in the child, who forked it
# Threads inside Process.start(); a fork from one of them makes a child that start() will
# tell proclab of: its hello says so, and waits for that word (lines it printed at once
# came before its parent's start()).
_starting: set = set()
_forked_in_start = False
_repr = None  # a reprlib.Repr, made on first use


# --- sending -------------------------------------------------------------------------

_ESCAPES = {i: "\\u%04x" % i for i in range(32)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\"})


def _json(value: object) -> str:
    """JSON for the few types messages hold; `json` itself costs milliseconds to import."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value) if value - value == 0 else "null"  # inf and nan are not JSON
    if kind is str:
        return '"' + value.translate(_ESCAPES) + '"'  # type: ignore[attr-defined]
    if kind is list or kind is tuple:
        return "[" + ",".join(_json(v) for v in value) + "]"  # type: ignore[attr-defined]
    if kind is dict:
        return "{" + ",".join(_json(k) + ":" + _json(v) for k, v in value.items()) + "}"  # type: ignore[attr-defined]
    return _json(str(value))


def _text(value: object, limit: int) -> str:
    """A str that encodes as UTF-8 (lone surrogates, as in undecodable argv, become
    visible escapes) and is at most `limit` characters."""
    if not isinstance(value, str):
        value = str(value)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _send(kind: str, fields: dict, fds: tuple = ()) -> bool:
    """One message to proclab; False if it was not sent. Never raises, never blocks."""
    global _dropped
    sock = _sock
    if sock is None:
        return False
    try:
        if _dropped and kind != "dropped":
            lost = _dropped
            _dropped = 0
            if not _send("dropped", {"count": lost}):
                # Still full (or gone): this message would not fit either.
                _dropped = lost + 1
                return False
        message = {"k": kind, "pid": os.getpid(), "t": time.time()}
        if kind in _TOLD_IN_TURN and _own and "u" not in fields:
            message["tu"] = time.time()  # proclab's reads begun by then are not in the count
            message["u"] = _unread()
        message.update(fields)
        data = _json(message).encode("utf-8")
        ancillary = []
        if fds:
            raw = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
            ancillary.append((_socket.SOL_SOCKET, _socket.SCM_RIGHTS, raw))
        # The fd number may have been closed and reused by the program (a daemon's
        # closerange, say): never write a message into someone else's file or socket.
        if os.fstat(sock.fileno()).st_ino != _sock_ino:
            _off(close=False)
            return False
        sock.sendmsg([data], ancillary, _socket.MSG_NOSIGNAL)
        return True
    except (BlockingIOError, InterruptedError):
        _dropped += 1
        return False
    except Exception:
        _off(close=True)
        return False


# What a process says about its calls (a start, a join, a reap, a rename, an exec): told
# among its lines in the order it did them. Each carries how many bytes of its output
# were still in its pipes, unread by proclab, as it sent it ("u"): those came before it,
# the bytes proclab reads later than that after it. Sent as they happened, a start() was
# told before the lines the program printed just before it, whenever proclab read them
# late (a short program's first lines, on a busy machine).
_TOLD_IN_TURN = frozenset(
    ("mp_start", "mp_join", "mp_signal", "mp_name", "reaped", "started", "exec")
)
_own: dict = {}  # fd -> the id of the pipe this process took for it (its hello)
_ioctl = None  # fcntl.ioctl, imported on first use (0.3 ms: not at every start-up)
_fionread = 0  # its request number for "bytes waiting"


def _unread() -> list:
    """For fds 1 and 2, the bytes waiting in this process's own pipe (None: the fd is
    not that pipe any more, or cannot be asked)."""
    global _ioctl, _fionread
    counts = []
    for fd in (1, 2):
        count = None
        try:
            if _own.get(fd) is not None and _pipe_id(fd) == _own[fd]:
                if _ioctl is None:
                    import fcntl

                    _fionread = _fionread_number()
                    _ioctl = fcntl.ioctl
                raw = _ioctl(fd, _fionread, b"\0\0\0\0")
                count = int.from_bytes(raw, sys.byteorder, signed=True)
        except Exception:
            count = None
        counts.append(count)
    return counts


def _fionread_number() -> int:
    machine = os.uname().machine
    if machine.startswith(("x86", "i386", "i686", "aarch64", "arm", "riscv", "s390")):
        return 0x541B  # termios.FIONREAD there, without importing termios
    import termios

    return termios.FIONREAD


def _off(close: bool) -> None:
    """Stop for good in this process (proclab is gone, or the socket was taken away)."""
    global _sock
    sock, _sock = _sock, None
    if sock is not None:
        try:
            if close:
                sock.close()
            else:
                sock.detach()  # the number belongs to someone else now
        except Exception:
            pass


def _connect() -> bool:
    global _sock, _sock_ino
    sock = None
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(_path)
        _sock_ino = os.fstat(sock.fileno()).st_ino
        _sock = sock
        return True
    except Exception:
        if sock is not None:
            try:
                sock.close()
            except Exception:
                pass
        return False


# --- output pipes and hello ---------------------------------------------------------


def _pipe_id(fd: int):
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if st.st_mode & _S_IFMT != _S_IFIFO:
        return None
    return "%d:%d" % (st.st_dev, st.st_ino)


def _argv() -> list:
    return _bounded(getattr(sys, "orig_argv", None) or [sys.executable, *getattr(sys, "argv", [])])


def _bounded(argv) -> list:
    """An argv for a message: text (bytes and paths decoded), each item at most
    MAX_ARG_CHARS, and MAX_ARGV_CHARS in all, so that the message stays under proclab's
    limit even in 4-byte characters (64 items of 1,000 was up to 256 KB: lost whole)."""
    out, left = [], MAX_ARGV_CHARS
    for item in list(argv)[:MAX_ARGS]:
        if left <= 0:
            break
        text = _text(os.fsdecode(item), min(MAX_ARG_CHARS, left))
        out.append(text)
        left -= len(text)
    return out


def _hello(via: str, parent: int = 0) -> None:
    """Say hello, with pipes of our own for fds 1 and 2 where those are proclab's.
    `parent`: who forked this process (a parent that exits at once is gone by the time
    its child runs this, and getppid() names the reaper that adopted the child)."""
    global _own
    fields = {}
    if via == "fork" and _own:
        # Its fds 1 and 2 are still its parent's own pipes: what waits in them was written
        # before this child began (the lines before start()), and is told before it.
        fields["tu"] = time.time()
        fields["u"] = _unread()
    if via == "fork" and _forked_in_start:
        fields["st"] = True
    _own = {}  # a fork child's are its parent's until it takes its own
    taken = []  # (target fd, stream, read end, write end)
    try:
        for fd, stream in ((1, "stdout"), (2, "stderr")):
            if _pipe_id(fd) in _ours:
                r, w = os.pipe()
                taken.append((fd, stream, r, w))
    except OSError:
        pass  # out of fds: this process keeps writing where its parent does
    try:
        sent = _send(
            "hello",
            {
                "ppid": parent or os.getppid(),
                "argv": _argv(),
                "exe": _text(sys.executable or "", MAX_ARG_CHARS),
                "via": via,
                "fds": [stream for _, stream, _, _ in taken],
                **fields,
            },
            tuple(r for _, _, r, _ in taken),
        )
        if _sock is not None:
            _sock.setblocking(False)
        if sent:
            _take_output(taken)
    except Exception:
        _off(close=True)
    finally:
        for _, _, r, w in taken:
            os.close(r)
            os.close(w)


def _take_output(taken: list) -> None:
    """Put the write ends on fds 1 and 2 (proclab holds the read ends now)."""
    global _ours, _own
    _own = {}
    for fd, _, _, w in taken:
        os.dup2(w, fd)
        new_id = _pipe_id(fd)
        _own[fd] = new_id
        if new_id is not None and new_id not in _ours:
            _ours = [*_ours, new_id][-KEEP_PIPE_IDS:]
    if not taken:
        return
    # Python children (subprocess, spawn, exec) find them here, and take them over too.
    os.environ[PIPES_ENV] = ",".join(_ours)
    for fd, _, _, _ in taken:
        stream = sys.stdout if fd == 1 else sys.stderr
        try:
            # Lines reach proclab as they are printed, as in proclab's own children.
            if stream is not None and stream.fileno() == fd:
                stream.reconfigure(line_buffering=True)
        except Exception:
            pass


def _before_fork() -> None:
    global _forked_by, _forked_in_start
    _forked_by = os.getpid()
    _forked_in_start = _thread.get_ident() in _starting


def _after_fork_in_child() -> None:
    global _dropped
    _starting.clear()  # its parent's: this process's own start() calls come later
    try:
        if _sock is None:
            return
        _off(close=True)  # the parent's connection: this child gets its own
        _dropped = 0
        if _connect():
            _hello("fork", _forked_by)
    except Exception:
        _off(close=True)


# --- reaping ------------------------------------------------------------------------


def _reaped(pid: int, status: int, usage: object = None) -> None:
    if pid <= 0 or _sock is None:
        return
    try:
        if os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
        elif os.WIFSIGNALED(status):
            code = -os.WTERMSIG(status)
        else:
            return  # stopped or continued: not reaped
        fields = {"child": pid, "status": code}
        if usage is not None:
            fields["user"] = usage.ru_utime  # type: ignore[attr-defined]
            fields["system"] = usage.ru_stime  # type: ignore[attr-defined]
        _send("reaped", fields)
    except Exception:
        pass


def _like(wrapper, original):
    for name in ("__name__", "__qualname__", "__doc__", "__module__"):
        try:
            setattr(wrapper, name, getattr(original, name))
        except Exception:
            pass
    wrapper.__wrapped__ = original
    return wrapper


def _patch_waits() -> None:
    """Every way a Python process reaps a child reports the exit status: proclab is not
    the parent of most of the tree and cannot read those statuses itself. os.waitpid is
    Linux's wait4 without the resource usage, so it is served by wait4 to get the
    child's CPU times as well."""
    wait4 = getattr(os, "wait4", None)
    if wait4 is None:
        return
    plain_waitpid, plain_wait = os.waitpid, os.wait

    def waitpid(pid, options):
        if not _wait4_works():
            rpid, status = plain_waitpid(pid, options)
            _reaped(rpid, status)
            return rpid, status
        rpid, status, usage = wait4(pid, options)
        _reaped(rpid, status, usage)
        return rpid, status

    def wait():
        if not _wait4_works():
            rpid, status = plain_wait()
            _reaped(rpid, status)
            return rpid, status
        rpid, status, usage = wait4(-1, 0)
        _reaped(rpid, status, usage)
        return rpid, status

    def wait3(options):
        rpid, status, usage = wait4(-1, options)
        _reaped(rpid, status, usage)
        return rpid, status, usage

    def wait4_(pid, options):
        rpid, status, usage = wait4(pid, options)
        _reaped(rpid, status, usage)
        return rpid, status, usage

    os.waitpid = _like(waitpid, os.waitpid)
    os.wait = _like(wait, os.wait)
    os.wait3 = _like(wait3, os.wait3)
    os.wait4 = _like(wait4_, wait4)

    waitid = getattr(os, "waitid", None)
    if waitid is not None:

        def waitid_(idtype, ident, options):
            result = waitid(idtype, ident, options)
            if result is not None and not options & getattr(os, "WNOWAIT", 0):
                _reaped_waitid(result)
            return result

        os.waitid = _like(waitid_, waitid)


def _patch_exec() -> None:
    """A process that execs another program says what it becomes: a fork child that execs
    `echo` ends before any walk reads its new command line, and was shown as the Python
    it had been. Every os.exec* function ends in os.execv or os.execve. Told before the
    exec, taken as true once the connection closes (the socket is close-on-exec); an
    exec that fails takes it back."""
    for name in ("execv", "execve"):
        original = getattr(os, name, None)
        if original is not None:
            setattr(os, name, _like(_telling_exec(original), original))


def _telling_exec(original):
    def exec_(*given, **named):
        # As the original takes them: os.execve(path=..., argv=..., env=...) too.
        told = False
        if _sock is not None:
            try:
                path = given[0] if given else named.get("path")
                argv = given[1] if len(given) > 1 else named.get("argv")
                told = _send(
                    "exec",
                    {
                        "argv": _bounded(argv),
                        "exe": None
                        if isinstance(path, int)
                        else _text(os.fsdecode(path), MAX_ARG_CHARS),
                    },
                )
            except Exception:
                pass
        try:
            return original(*given, **named)
        except BaseException:
            if told:
                _send("exec", {"argv": None, "exe": None})
            raise

    return exec_


def _wait4_works() -> bool:
    """Whether os.wait4 can build its result: it imports `resource` for it once the child
    is reaped. At shutdown (a Popen left unwaited, reaped by its __del__) that import
    failed, the status was lost and the program printed an ImportError traceback that
    was the hook's. `resource` is imported here, on the first wait, not with the hook:
    most programs never wait."""
    if "resource" in sys.modules:
        return True
    if sys.is_finalizing():
        return False
    try:
        import resource  # noqa: F401
    except Exception:
        return False
    return True


def _reaped_waitid(result) -> None:
    try:
        if result.si_code == os.CLD_EXITED:
            code = result.si_status
        elif result.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
            code = -result.si_status
        else:
            return
        _send("reaped", {"child": result.si_pid, "status": code})
    except Exception:
        pass


# --- multiprocessing ----------------------------------------------------------------


def _short(value: object) -> str:
    global _repr
    try:
        if _repr is None:
            _repr = _make_repr()
        return _text(_repr.repr(value), MAX_REPR_CHARS)
    except Exception:
        return "<unprintable %s>" % _text(type(value).__name__, 80)


def _make_repr():
    import reprlib

    class Repr(reprlib.Repr):
        def repr_dict(self, x, level):
            # reprlib sorts the keys: show kwargs in the order the program gave them.
            if not x:
                return "{}"
            if level <= 0:
                return "{...}"
            pieces = []
            for key, value in x.items():
                if len(pieces) == self.maxdict:
                    pieces.append("...")
                    break
                pieces.append(self.repr1(key, level - 1) + ": " + self.repr1(value, level - 1))
            return "{" + ", ".join(pieces) + "}"

        def repr_instance(self, x, level):
            # An object's default repr, its type without its module: a pool's queue read
            # "<concurrent.futures.process....eue object at 0x7f…>", cut in the middle of
            # its name. The address stays: it tells which children share one object.
            if type(x).__repr__ is object.__repr__:
                return "<%s object at %#x>" % (type(x).__qualname__, id(x))
            return reprlib.Repr.repr_instance(self, x, level)

    r = Repr()
    r.maxstring = r.maxother = 60
    r.maxlevel = 3
    return r


def _qualname(obj: object) -> str:
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(qualname, str):
        module = getattr(obj, "__module__", None)
        if module == "__mp_main__":  # the script, as spawn and forkserver children load it
            module = "__main__"
        name = "%s.%s" % (module, qualname) if isinstance(module, str) else qualname
        return _text(name, MAX_REPR_CHARS)
    return _short(obj)


def _target_name(process, base) -> object:
    target = getattr(process, "_target", None)
    if target is not None:
        return _qualname(target)
    run = getattr(type(process), "run", None)
    if run is not None and run is not getattr(base, "run", None):
        return _qualname(run)  # a Process subclass with its own run()
    return None


def _patch_process(module) -> None:
    base = module.BaseProcess
    if getattr(base, "_proclab_patched", False):
        return
    start, join, terminate, kill, bootstrap = (
        base.start,
        base.join,
        base.terminate,
        getattr(base, "kill", None),
        base._bootstrap,
    )

    def start_(self):
        t_call = time.time()
        fields = None
        if _sock is not None:
            # Made before the fork: start() deletes the target and its arguments, their
            # reprs are then of what the child gets, and after a fork every page the
            # parent writes is copied while the child shares it.
            try:
                target = getattr(self, "_target", None)
                fields = {
                    "name": _text(self.name, MAX_REPR_CHARS),
                    "target": _qualname(target) if target is not None else _target_name(self, base),
                    "args": _short(getattr(self, "_args", ())),
                    "kwargs": _short(getattr(self, "_kwargs", {})),
                    "daemon": bool(self.daemon),
                    "t_call": t_call,
                }
                if _own:  # counted before the fork (after it, each page written is copied)
                    fields["tu"] = time.time()
                    fields["u"] = _unread()
            except Exception:
                fields = None
        me = _thread.get_ident()
        _starting.add(me)
        try:
            start(self)
        finally:
            _starting.discard(me)
        if fields is not None and _sock is not None:
            try:
                fields["child"] = self._popen.pid
                fields["method"] = getattr(self._popen, "method", None)
                _send("mp_start", fields)
            except Exception:
                pass

    def join_(self, timeout=None):
        t_call = time.time()
        join(self, timeout)
        if _sock is not None:
            try:
                # The popen's own field: asking self.exitcode would poll, and could reap.
                code = getattr(self._popen, "returncode", None)
                _send(
                    "mp_join",
                    {
                        "child": self._popen.pid,
                        "t_call": t_call,
                        "timeout": float(timeout) if timeout is not None else None,
                        "ended": code is not None,
                        "exitcode": code if type(code) is int else None,
                    },
                )
            except Exception:
                pass

    def signal_(original, how):
        def send_signal(self):
            original(self)
            if _sock is not None:
                try:
                    _send("mp_signal", {"child": self._popen.pid, "how": how})
                except Exception:
                    pass

        return _like(send_signal, original)

    def bootstrap_(self, *args, **kwargs):
        pool = None
        try:
            pool = _on_run(self, base)
        except Exception:
            pass
        try:
            return bootstrap(self, *args, **kwargs)
        finally:
            if pool is not None:
                pool.report(final=True)

    base.start = _like(start_, start)
    base.join = _like(join_, join)
    base.terminate = signal_(terminate, "terminate")
    if kill is not None:
        base.kill = signal_(kill, "kill")
    base._bootstrap = _like(bootstrap_, bootstrap)
    named = base.__dict__.get("name")
    if isinstance(named, property) and named.fset is not None:
        base.name = property(named.fget, _renaming(named.fset, module), named.fdel, named.__doc__)
    base._proclab_patched = True


def _renaming(set_name, module):
    """The name's setter, saying so when a child renames itself (a Pool initializer's
    `current_process().name = ...`): proclab shows the name a process said last."""

    def set_name_(self, name):
        set_name(self, name)
        if _sock is None or self is not getattr(module, "_current_process", None):
            return
        if getattr(self, "_parent_pid", None) is None:
            return  # the main process: it has no Process name to show
        try:
            _send("mp_name", {"name": _text(self.name, MAX_REPR_CHARS)})
        except Exception:
            pass

    return set_name_


def _on_run(process, base):
    """In the child, just before multiprocessing runs its target."""
    if _sock is None:
        return None
    _send(
        "mp_run",
        {
            "name": _text(process.name, MAX_REPR_CHARS),
            "target": _target_name(process, base),
            "parent": getattr(process, "_parent_pid", None),
        },
    )
    target = getattr(process, "_target", None)
    where = (getattr(target, "__module__", None), getattr(target, "__qualname__", None))
    args = getattr(process, "_args", ())
    if where == ("multiprocessing.pool", "worker") and len(args) >= 2:
        return _PoolCounter("Pool", args[0], args[1], _pool_calls)
    if where == ("concurrent.futures.process", "_process_worker") and len(args) >= 2:
        return _PoolCounter("ProcessPoolExecutor", args[0], args[1], _executor_calls)
    if where[1] == "BaseManager._run_server":
        _send("helper", {"role": "manager"})
    return None


def _pool_calls(task) -> int:
    """Calls of the user's function in one Pool task (a map chunk holds many)."""
    pool = sys.modules.get("multiprocessing.pool")
    _job, _i, func, args, _kwds = task
    if pool is not None and func in (pool.mapstar, pool.starmapstar):
        return len(args[0][1])
    return 1


def _executor_calls(item) -> int:
    process = sys.modules.get("concurrent.futures.process")
    fn = item.fn
    if process is not None and getattr(fn, "func", None) is process._process_chunk:
        return len(item.args[0])
    return 1


class _PoolCounter:
    """Counts the tasks a pool worker runs, through its own copies of the pool's queues.

    A task counts when its result is handed back. Reports go out at most every
    REPORT_EVERY seconds, and also whenever the worker finds no task waiting, so the last
    count is out before the pool can see the last result and terminate the worker
    (Pool.__exit__ does). `final` says the worker's loop ended and the count is exact.
    """

    def __init__(self, kind, inqueue, outqueue, calls_of) -> None:
        self.kind = kind
        self.tasks = 0
        self.calls = 0
        self.reported = (-1, -1)
        self.due = 0.0
        self.pending = None  # calls in the task being run
        self.waiting = None
        try:
            # One poll object for the worker's life: Connection.poll(0) would build a
            # selector on every task.
            import select

            self.waiting = select.poll()
            self.waiting.register(inqueue._reader.fileno(), select.POLLIN)
        except Exception:
            pass
        get, put = inqueue.get, outqueue.put

        def counting_get(*args, **kwargs):
            if self.reported != (self.tasks, self.calls) and self.idle():
                self.report()
            item = get(*args, **kwargs)
            try:
                self.pending = None if item is None else calls_of(item)
            except Exception:
                self.pending = 1
            return item

        def counting_put(obj, *args, **kwargs):
            if self.pending is not None:
                self.tasks += 1
                self.calls += self.pending
                self.pending = None  # a retried put (an unpicklable result) counts once
                if time.monotonic() >= self.due or self.idle():
                    self.report()
            return put(obj, *args, **kwargs)

        inqueue.get = counting_get
        outqueue.put = counting_put
        self.report()

    def idle(self) -> bool:
        """No task waiting for this worker (nor any other) in the pool's queue."""
        try:
            return not self.waiting.poll(0)  # type: ignore[union-attr]
        except Exception:
            return True

    def report(self, final: bool = False) -> None:
        try:
            if self.reported == (self.tasks, self.calls) and not final:
                return
            self.reported = (self.tasks, self.calls)
            self.due = time.monotonic() + REPORT_EVERY
            _send(
                "pool",
                {"kind": self.kind, "tasks": self.tasks, "calls": self.calls, "final": final},
            )
        except Exception:
            pass


def _patch_helper_main(role: str):
    def patch(module) -> None:
        main = module.main
        if getattr(main, "_proclab_role", None):
            return

        def main_(*args, **kwargs):
            _send("helper", {"role": role})
            return main(*args, **kwargs)

        _like(main_, main)
        main_._proclab_role = role
        module.main = main_

    return patch


def _patch_subprocess(module) -> None:
    """Popen names its child, and what it runs: a parent that exits at once leaves the
    child to the reaper before any walk sees whose it was, and a short child (`true`)
    ends before any walk reads its command line."""
    popen = getattr(module, "Popen", None)
    execute = getattr(popen, "_execute_child", None)
    if execute is None or getattr(execute, "_proclab", False):
        return

    def _execute_child(self, *args, **kwargs):
        # Counted before the child runs: what it writes at once to a pipe it shares (a
        # shell's stderr) came after its start, not before the parent's line before it.
        counted = {"tu": time.time(), "u": _unread()} if _sock is not None and _own else {}
        execute(self, *args, **kwargs)
        if _sock is not None:
            try:
                argv = _popen_argv(args[0] if args else kwargs.get("args"), args, kwargs)
                _send("started", {"child": self.pid, "argv": argv, **counted})
            except Exception:
                pass

    _like(_execute_child, execute)
    _execute_child._proclab = True
    popen._execute_child = _execute_child


def _popen_argv(args, call_args, call_kwargs) -> list:
    """What Popen's child runs, as Popen builds it for exec (its _execute_child's args,
    executable and shell): once it returns without an error, the child runs exactly
    that. Not read from /proc: the child may not have set its new command line yet (read
    at once, an empty one was taken for an ended child's, 141 times of 300)."""
    executable = call_args[1] if len(call_args) > 1 else call_kwargs.get("executable")
    shell = call_args[9] if len(call_args) > 9 else call_kwargs.get("shell", False)
    argv = [args] if isinstance(args, (str, bytes)) or hasattr(args, "__fspath__") else list(args)
    if shell:
        argv = ["/bin/sh", "-c", *argv]
        if executable:
            argv[0] = executable
    return _bounded(argv)


def _patch_spawnv(module) -> None:
    """multiprocessing's own fork and exec (a spawn child, the resource tracker, the fork
    server) names its child and what it runs, as Popen does: a parent that exits right
    after start() left them without a parent, adopted before any walk saw whose they were."""
    spawnv = getattr(module, "spawnv_passfds", None)
    if spawnv is None or getattr(spawnv, "_proclab", False):
        return

    def spawnv_passfds(path, args, passfds):
        pid = spawnv(path, args, passfds)
        if _sock is not None:
            try:
                _send("started", {"child": pid, "argv": _bounded(args)})
            except Exception:
                pass
        return pid

    _like(spawnv_passfds, spawnv)
    spawnv_passfds._proclab = True
    module.spawnv_passfds = spawnv_passfds


PATCHES = {
    "subprocess": _patch_subprocess,
    "multiprocessing.util": _patch_spawnv,
    "multiprocessing.process": _patch_process,
    "multiprocessing.forkserver": _patch_helper_main("forkserver"),
    "multiprocessing.resource_tracker": _patch_helper_main("resource_tracker"),
}


class _PatchingLoader:
    """The module's own loader, and a patch applied once the module has run."""

    def __init__(self, loader, patch, finder, name) -> None:
        self._loader = loader
        self._patch = patch
        self._finder = finder
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            module.__loader__ = self._loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self._loader
            self._finder.done(self._name)
            self._patch(module)
        except Exception:
            pass

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _PatchOnImport:
    """A meta-path finder that patches multiprocessing's modules and subprocess when the
    program first imports them: importing multiprocessing here would cost every Python
    process of the tree tens of milliseconds, used or not."""

    def __init__(self, patches) -> None:
        self.patches = dict(patches)

    def find_spec(self, name, path=None, target=None):
        patch = self.patches.get(name)
        if patch is None:
            return None
        try:
            for finder in sys.meta_path:
                if finder is self:
                    continue
                find = getattr(finder, "find_spec", None)
                spec = find(name, path, target) if find is not None else None
                if spec is not None:
                    break
            else:
                return None
            if spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return None
            spec.loader = _PatchingLoader(spec.loader, patch, self, name)
            return spec
        except Exception:
            return None

    def done(self, name) -> None:
        self.patches.pop(name, None)
        if not self.patches:
            try:
                sys.meta_path.remove(self)
            except ValueError:
                pass


def _patch_multiprocessing() -> None:
    pending = {}
    for name, patch in PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:
            try:
                patch(module)
            except Exception:
                pass
        else:
            pending[name] = patch
    if pending:
        sys.meta_path.insert(0, _PatchOnImport(pending))


# --- installing ---------------------------------------------------------------------


def install(path: str) -> bool:
    """Connect to proclab at `path`; if it answers, take the process's output and patch.
    Returns False (and changes nothing) when proclab cannot be reached."""
    global _path, _ours
    if _sock is not None or not path:
        return _sock is not None
    _path = path
    _ours = [p for p in os.environ.get(PIPES_ENV, "").split(",") if p]
    if not _connect():
        return False
    _hello("load")
    if _sock is None:
        return False
    _patch_waits()
    _patch_exec()
    _patch_multiprocessing()
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
    return True
