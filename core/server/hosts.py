"""Host names and addresses as proclab reads them, for `serve`, `client` and `web`: which
are this machine's loopback, which are addresses, and which can name no host at all.

Cheap to import (no controller): `proclab client` checks its --host with it.
"""

from __future__ import annotations

import ipaddress
import socket


def ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`host` as an IP address; None if it is not one (a name). Also the short forms every
    resolver reads as one (127.1 is 127.0.0.1), which ipaddress does not: 127.1 was said
    to be reachable from other machines."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not looks_numeric(host) or ":" in host:
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:  # 999.1, or 1.2.3.4.5
        return None


def host_problem(host: str) -> str | None:
    """Why `host` can name no host, else None: it holds a character no resolver takes (a
    control, or a byte that is not UTF-8 as Python decodes it), which binding and
    connecting raised as a TypeError or UnicodeError traceback; or it is written as an
    address and is none (999.1.1.1: `web` called it reachable from other machines)."""
    if not host.isprintable():
        return f"host: {host} is not a host name"
    if looks_numeric(host) and ip_of(host) is None:
        return f"host: {host} is not an IP address"
    return None


def not_ours(host: str) -> str | None:
    """Why a server cannot listen on `host`, if it is an address and none of this
    machine's: said before the warning that it is reachable from other machines (whose
    advice, --public, then met this). A name is not looked up (binding says)."""
    address = ip_of(host)
    if address is None or address.is_unspecified or is_loopback(host):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:192.0.2.2 is 192.0.2.2
    if _as_own(str(address)) in own_addresses(address.version):
        return None
    return f"host: {host} is not an address of this machine"


def looks_numeric(host: str) -> bool:
    """Meant as an IP address: IPv6 (a colon), or every label a number, decimal or the
    hexadecimal a resolver reads too (0x7f.1 is 127.0.0.1: `web` called it reachable)."""
    return ":" in host or (bool(host) and all(map(_number_label, host.split("."))))


def _number_label(label: str) -> bool:
    if label.isdecimal():
        return True
    digits = label[2:] if label[:2].lower() == "0x" else ""
    return bool(digits) and all(c in "0123456789abcdefABCDEF" for c in digits)


def own_addresses(version: int) -> set[str]:
    """This machine's addresses, as read now: IPv4 for a server bound to 0.0.0.0, both
    for :: (which takes IPv4 too on Linux); a link-local IPv6's zone left out, as a URL
    cannot carry it."""
    import psutil  # only here: `proclab client` imports this module for --host

    families = {socket.AF_INET} if version == 4 else {socket.AF_INET, socket.AF_INET6}
    return {
        _as_own(a.address)
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family in families
    }


def _as_own(address: str) -> str:
    """An address as own_addresses holds it: lower case, a link-local one without its
    zone (fe80::1%eth0 is fe80::1)."""
    return address.split("%")[0].lower()


def is_loopback(host: str) -> bool:
    """Only this machine can reach `host` (a name is not looked up: only localhost is)."""
    if host == "localhost":
        return True
    address = ip_of(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address is not None and address.is_loopback
