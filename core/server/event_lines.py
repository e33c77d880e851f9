"""How a handler tells the server one event: a JSON object on one line, bytes on a pipe.

Written here by hand rather than by `json`: every handler process and pool worker writes
one for each connection it opens and closes (and, at `--log all`, for chunks it moves),
and a spawn handler imports its modules from scratch. `json.dumps` with compact
separators builds an encoder per call: a "disconnected" line took 6.9-8.5 µs with it and
3.4-5.0 µs here (timeit, three runs), and importing `json` cost a spawn handler 2.6 ms
(python -X importtime). The server reads the lines with `json.loads`, which keeps this
honest: tests/test_event_lines.py checks that any record written here reads back as
itself.
"""

from __future__ import annotations

# json's own C string encoder, without the json package around it: quotes, backslashes,
# controls and everything past ASCII escaped, so a line is ASCII whatever a client sent
# (a lone surrogate from an undecodable name included).
from _json import encode_basestring_ascii as _string

TYPE_CHECKING = False  # not typing's: kept light for spawn handlers (bootstrap says why)
if TYPE_CHECKING:
    from collections.abc import Mapping

DATA_LINE = b'{"kind":"data_'  # how every data event's line begins: counted unparsed


def _value(value: object) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    if isinstance(value, int):
        return str(int(value))  # an IntEnum's str() would be its name
    if isinstance(value, float):
        # repr is JSON's number, but for the infinities and NaN, which JSON has no word for
        return repr(value) if value - value == 0 else "null"
    if isinstance(value, list | tuple):
        return f"[{','.join(map(_value, value))}]"
    raise TypeError(f"an event cannot carry {type(value).__name__}")


def event_line(kind: str, fields: Mapping[str, object]) -> bytes:
    """One event as a line: {"kind": kind, **fields}, compact, newline-terminated."""
    parts = [f'{{"kind":{_string(kind)}']
    for name, value in fields.items():
        if type(value) is str:  # the common types inline: this runs for every event
            parts.append(f',"{name}":{_string(value)}')
        elif type(value) is int:
            parts.append(f',"{name}":{value}')
        else:
            parts.append(f',"{name}":{_value(value)}')
    parts.append("}\n")
    return "".join(parts).encode()


# A connection's two lines, which every handler and pool worker writes for each client,
# made by `%` from one template each: the general event_line took twice as long (timeit),
# and the pool's workers at --log connections or all were measured serving 6-7 % more
# connections a second making these at flush rather than as they happened (README,
# "Measured"). Both floats are finite (a clock's reading, a difference of two).
_ACCEPTED = '{"kind":"accepted","client":%s,"pid":%d,"time":%r}\n'
_DISCONNECTED = (
    '{"kind":"disconnected","client":%s,"pid":%d,"time":%r,"duration":%r,'
    '"bytes_in":%d,"bytes_out":%d,"reason":%s}\n'
)
_DISCONNECTED_LEFT_OUT = _DISCONNECTED[:-2] + ',"left_out":%d,"over_rate":%d}\n'


# A chunk's event: its kind is data_in or data_out, its head hex (handler.Reporter.chunk);
# neither needs escaping.
_DATA = '{"kind":"%s","client":%s,"pid":%d,"time":%r,"nbytes":%d,"head":"%s"}\n'


def data_line(kind: str, client: str, pid: int, time: float, nbytes: int, head: str) -> bytes:
    """event_line(kind, {"client": ..., "pid": ..., "time": ..., "nbytes": ..., "head": ...})
    for a chunk in or out: `kind` data_in or data_out, `head` hex."""
    return (_DATA % (kind, _string(client), pid, time, nbytes, head)).encode()


def accepted_line(client: str, pid: int, time: float) -> bytes:
    """event_line("accepted", {"client": ..., "pid": ..., "time": ...})"""
    return (_ACCEPTED % (_string(client), pid, time)).encode()


def disconnected_line(
    client: str,
    pid: int,
    time: float,
    duration: float,
    bytes_in: int,
    bytes_out: int,
    reason: str,
    left_out: int = 0,
    over_rate: int = 0,
) -> bytes:
    """event_line("disconnected", {...}) for a connection's end, fields in that order; a
    handler's count of data events it left out rides on it, if it has one."""
    fields = (_string(client), pid, time, duration, bytes_in, bytes_out, _string(reason))
    if left_out:
        return (_DISCONNECTED_LEFT_OUT % (*fields, left_out, over_rate)).encode()
    return (_DISCONNECTED % fields).encode()
