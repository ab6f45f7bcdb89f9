"""A chosen source: bind a probe's socket to an address or an interface of the place.

`bind: {address: 10.0.0.5}` binds the socket to that address before it connects or sends;
`bind: {interface: eth1}` binds it to that device (SO_BINDTODEVICE), so the kernel routes and
picks the source address as for that interface only. When the place has no such address
(EADDRNOTAVAIL) or no such interface (ENODEV), nothing is sent: the cell is a source-error
that says which, never a network answer. Standard library only and Python 3.8 compatible:
shipped inside the agent.
"""

from __future__ import annotations

import errno
import socket
from typing import Any, Callable, Mapping, Optional

from .address import ip_literal
from .classify import errno_name
from .records import Check

# Linux's value; Python exports it only on some builds.
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
Bind = Optional[Mapping[str, str]]
# http.client's "no timeout given" marker (a private name of socket's).
_DEFAULT_TIMEOUT = getattr(socket, "_GLOBAL_DEFAULT_TIMEOUT", None)


class BindError(Exception):
    """The socket cannot be bound as asked: the place lacks the address or the interface."""

    def __init__(self, number: int, message: str) -> None:
        super().__init__(message)
        self.errno = number
        self.message = message

    def record(self, name: str, address: str, family: str | None, port: int | None) -> Check:
        """The check record of a probe that never left: a source-error with the errno."""
        record: Check = {
            "name": name,
            "status": "source-error",
            "errno": self.errno,
            "errno_name": errno_name(self.errno),
            "message": self.message,
            "address": address,
            "family": family,
            "duration_ms": 0.0,
        }
        if port:
            record["port"] = port
        return record


def describe(bind: Bind) -> str | None:
    """'10.0.0.5' or 'interface eth1', as check records and messages name the choice."""
    if not bind:
        return None
    if bind.get("interface"):
        return "interface {}".format(bind["interface"])
    return bind.get("address") or None


def bind_socket(sock: socket.socket, family: int, bind: Bind) -> None:
    """Bind `sock` as `bind` says (nothing when it says nothing); BindError when it cannot."""
    if not bind:
        return
    interface = bind.get("interface")
    address = bind.get("address")
    if interface:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, interface.encode() + b"\0")
        except OSError as exc:
            number = exc.errno or errno.ENODEV
            if number == errno.ENODEV:
                why = f"this place has no interface {interface}"
            elif number == errno.EPERM:
                why = f"binding to interface {interface} needs CAP_NET_RAW here"
            else:
                why = f"cannot bind to interface {interface}: {exc.strerror or exc}"
            raise BindError(number, why) from None
    if address:
        literal = ip_literal(address)
        wanted = socket.AF_INET6 if literal is not None and literal.version == 6 else socket.AF_INET
        if wanted != family:
            have, want = (6 if f == socket.AF_INET6 else 4 for f in (wanted, family))
            raise BindError(
                errno.EAFNOSUPPORT,
                f"the source address {address} is IPv{have} but this target address is IPv{want}",
            )
        try:
            sock.bind((address, 0, 0, 0) if family == socket.AF_INET6 else (address, 0))
        except OSError as exc:
            number = exc.errno or errno.EADDRNOTAVAIL
            if number == errno.EADDRNOTAVAIL:
                why = f"this place has no address {address} (EADDRNOTAVAIL)"
            else:
                why = f"cannot bind to {address}: {exc.strerror or exc}"
            raise BindError(number, why) from None


def socket_options(bind: Bind) -> list[tuple[int, int, bytes]]:
    """The socket option an interface choice needs, as urllib3 and httpcore take them."""
    if bind and bind.get("interface"):
        return [(socket.SOL_SOCKET, SO_BINDTODEVICE, str(bind["interface"]).encode() + b"\0")]
    return []


def source_address(bind: Bind) -> tuple[str, int] | None:
    """(address, 0) for an address choice, as http.client and urllib3 take it."""
    if bind and bind.get("address"):
        return (str(bind["address"]), 0)
    return None


def bound_connector(bind: Bind) -> Callable[..., socket.socket]:
    """socket.create_connection for http.client (and urllib, which uses it), bound as `bind`
    says before it connects: an interface needs its socket option before the connect, which
    create_connection cannot set. A BindError says what the place lacks."""

    def create_connection(
        address: tuple[str, int], timeout: Any = None, source: Any = None
    ) -> socket.socket:
        host, port = address
        failure: OSError | None = None
        for family, kind, proto, _name, target in socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                bind_socket(sock, family, bind)
                if timeout is not None and timeout is not _DEFAULT_TIMEOUT:
                    sock.settimeout(timeout)
                sock.connect(target)
                return sock
            except BindError:
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                failure = exc
        raise failure or OSError(errno.EHOSTUNREACH, f"no address for {host}")

    return create_connection
