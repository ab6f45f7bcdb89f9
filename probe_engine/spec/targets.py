"""WHAT TO: the kinds of target a matrix can declare, one model per kind."""

from __future__ import annotations

import ipaddress
import re
import typing
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .common import (
    IPV4_PATTERN,
    IPV6_PATTERN,
    PORT_TEXT,
    BindSpec,
    Duration,
    EchoCount,
    Family,
    Flag,
    Headers,
    Host,
    HttpStatus,
    Name,
    Ndots,
    Port,
    SpecModel,
    check_host,
    exactly_one_of,
    whole_number,
    whole_number_schema,
)


def expand_ports(items: list[Any]) -> list[int]:
    """[80, 443, "30000-30100"] -> every port, in order, without repeats (as nmap's -p)."""
    ports: list[int] = []
    seen: set[int] = set()
    for item in items:
        if isinstance(item, bool):
            raise ValueError(f"{item!r} is not a port")
        if isinstance(item, int):
            low = high = item
        else:
            match = _PORT_RANGE.fullmatch(str(item))
            if match is None:
                raise ValueError(f"{item!r} is not a port or a range like 30000-30100")
            low = int(match["low"])
            high = int(match["high"]) if match["high"] is not None else low
        if not (1 <= low <= 65535 and 1 <= high <= 65535):
            raise ValueError(f"{item!r}: ports run from 1 to 65535")
        if low > high:
            raise ValueError(f"{item!r}: a range goes from low to high")
        for port in range(low, high + 1):
            if port not in seen:
                seen.add(port)
                ports.append(port)
    return ports


def checked_ports(value: list[int | str] | None) -> list[int | str] | None:
    """A `ports:` list as written (tcp and udp targets): not empty, every item a port or range."""
    if value is not None:
        if not value:
            raise ValueError("list at least one port")
        expand_ports(value)
    return value


_PORT_RANGE = re.compile(r"(?P<low>[0-9]{1,9})(?:-(?P<high>[0-9]{1,9}))?")
PortOrRange = Annotated[
    Union[int, str],
    WithJsonSchema(
        {
            "anyOf": [
                whole_number_schema(1, 65535),
                {"type": "string", "pattern": f"^{PORT_TEXT}-{PORT_TEXT}$"},
            ]
        }
    ),
]


def check_url(value: str) -> str:
    """An http(s) URL whose host is a DNS name or an IP address, with no spaces."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{value!r}: a URL has no spaces or control characters (write %20)")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} has a bad port") from None
    if port == 0:
        raise ValueError(f"{value!r} has a bad port")
    try:
        check_host(parts.hostname)
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}") from None
    return value


def _http_method(value: str) -> str:
    if not value.isascii() or not value.isalpha():
        raise ValueError(f"{value!r} is not an HTTP method")
    return value.upper()


HttpMethod = Annotated[
    str,
    AfterValidator(_http_method),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z]+$", "examples": ["GET", "HEAD"]}),
]


# 10.96.0.10, 10.96.0.10:53, [fd00::10]:53, or fd00::10 (port 53 when none is given).
NAMESERVER_PATTERN = (
    f"^(?:{IPV4_PATTERN[1:-1]}(?::{PORT_TEXT})?|\\[{IPV6_PATTERN[1:-1]}\\]:{PORT_TEXT}"
    f"|{IPV6_PATTERN[1:-1]})$"
)
IpAddressText = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "anyOf": [{"pattern": IPV4_PATTERN}, {"pattern": IPV6_PATTERN}]}
    ),
]


class TargetOptions(SpecModel):
    timeout: Duration | None = Field(None, description="Per-cell timeout for this target.")
    description: str | None = Field(None, description="What this target stands for.")


class TcpTargetSpec(TargetOptions):
    """host:port, or host with a list of ports and ranges (one cell per port)."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("port", "ports"))

    kind: Literal["tcp"]
    host: Host = Field(description="A DNS name or an IP address (no URL, no port).")
    port: Port | None = Field(None, description="One port (or `ports:`).")
    ports: list[PortOrRange] | None = Field(
        None,
        description='Ports and ranges, one column per port: [80, 443, "30000-30100"].',
        json_schema_extra={"minItems": 1},
        examples=[[80, 443, "30000-30100"]],
    )
    family: Family = Field("any", description="Address family to connect with.")
    bind: BindSpec | None = Field(None, description="A chosen source address or interface.")

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int | str] | None) -> list[int | str] | None:
        return checked_ports(value)

    @model_validator(mode="after")
    def _one_of(self) -> TcpTargetSpec:
        if (self.port is None) == (self.ports is None):
            raise ValueError("give either port or ports")
        return self

    def port_list(self) -> list[int]:
        return [self.port] if self.port is not None else expand_ports(list(self.ports or []))


class HttpEvidenceSpec(SpecModel):
    """What to read from the server's side after the run, for a server run by Docker."""

    container_logs: list[Name] = Field(
        description="Docker containers (names or ids) serving this URL: their logs for the "
        "run's time are read and each cell gets the lines carrying its User-Agent marker.",
        json_schema_extra={"minItems": 1},
    )
    docker_host: str | None = Field(
        None,
        description="The Docker daemon running them (default: as `docker` does: DOCKER_HOST, "
        "the current context, the local socket).",
        examples=["unix:///var/run/docker.sock"],
    )

    @field_validator("container_logs")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one container")
        return list(dict.fromkeys(value))


class HttpTargetSpec(TargetOptions):
    """A URL; its host is resolved and connected to, then one request is sent."""

    kind: Literal["http"]
    url: str = Field(
        description="An http:// or https:// URL.",
        examples=["http://127.0.0.1:8000/health"],
        json_schema_extra={"pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+[^\s]*$"},
    )
    method: HttpMethod = Field("GET", description="The request's method.")
    expect_status: list[HttpStatus] | None = Field(
        None, description="HTTP statuses that count as ok (default: 2xx and 3xx)."
    )
    headers: Headers = Field(default_factory=dict, description="Request headers.")
    verify_tls: Flag = Field(True, description="Check the server's certificate (https).")
    family: Family = Field("any", description="Address family to connect with.")
    bind: BindSpec | None = Field(None, description="A chosen source address or interface.")
    evidence: HttpEvidenceSpec | None = Field(
        None, description="The server's side: what its Docker containers logged of each request."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)


class DnsTargetSpec(TargetOptions):
    """A name to resolve, through the source's resolver or one nameserver queried directly."""

    kind: Literal["dns"]
    name: Host = Field(description="The name to resolve.", examples=["api.default.svc"])
    family: Family = Field("any", description="Which addresses to ask for.")
    expect_addresses: (
        list[
            Annotated[
                str,
                WithJsonSchema(
                    {
                        "anyOf": [{"pattern": IPV4_PATTERN}, {"pattern": IPV6_PATTERN}],
                        "type": "string",
                    }
                ),
            ]
        ]
        | None
    ) = Field(None, description="Addresses the answer must hold (else dns-error).")
    nameserver: str | None = Field(
        None,
        description="address:port of a nameserver queried directly (default: the source's "
        "resolver).",
        json_schema_extra={"pattern": NAMESERVER_PATTERN},
        examples=["10.96.0.10:53"],
    )
    search: list[Host] | None = Field(None, description="Search list, with nameserver only.")
    ndots: Ndots = Field(1, description="Dots a name needs to be tried as-is first.")

    @field_validator("expect_addresses")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            try:
                ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address") from None
        return value

    @field_validator("nameserver")
    @classmethod
    def _nameserver(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, colon, port = value.rpartition(":")
        if not colon or (host.count(":") and not host.startswith("[")):
            host, port = value, "53"
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise ValueError(
                f"{value!r}: give the nameserver as an address, e.g. 10.96.0.10:53"
            ) from None
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{value!r} has a bad port")
        return f"{host}:{port}"


class IcmpTargetSpec(TargetOptions):
    """Echo requests to a host (ping): ok with a reply, timeout without, unreachable with the
    ICMP error named (host, net, admin-prohibited)."""

    kind: Literal["icmp"]
    host: Host = Field(description="A DNS name or an IP address.")
    count: EchoCount = Field(3, description="Echo requests to send (as ping -c), 1 to 100.")
    interval: Duration = Field(0.2, description="Time between echo requests (as ping -i).")
    family: Family = Field("any", description="Address family to ping (ICMPv6 for ipv6).")
    bind: BindSpec | None = Field(None, description="A chosen source address or interface.")


_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})*$")


class UdpTargetSpec(TargetOptions):
    """One datagram to host:port (or each of `ports`): a response is ok, an ICMP port
    unreachable is refused, silence is a timeout ("no answer: open or filtered"), never ok."""

    model_config = ConfigDict(
        json_schema_extra={
            **exactly_one_of("port", "ports"),
            "not": {"required": ["payload", "payload_hex"]},
        }
    )

    kind: Literal["udp"]
    host: Host = Field(description="A DNS name or an IP address (no URL, no port).")
    port: Port | None = Field(None, description="One port (or `ports:`).")
    ports: list[PortOrRange] | None = Field(
        None,
        description='Ports and ranges, one column per port: [53, 123, "30000-30010"].',
        json_schema_extra={"minItems": 1},
    )
    payload: str | None = Field(None, description="The datagram's content, as text (UTF-8).")
    payload_hex: str | None = Field(
        None,
        description="The datagram's content as hex digits (default: an empty datagram).",
        json_schema_extra={"pattern": _HEX.pattern},
        examples=["0001"],
    )
    expect_response: Flag = Field(
        True,
        description="Whether the service answers. Either way silence is never ok: it is a "
        "timeout worded 'no answer: open or filtered'.",
    )
    family: Family = Field("any", description="Address family to send with.")
    bind: BindSpec | None = Field(None, description="A chosen source address or interface.")

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int | str] | None) -> list[int | str] | None:
        return checked_ports(value)

    @field_validator("payload_hex")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not _HEX.match(value):
            raise ValueError(f"{value!r} is not hex bytes (pairs of 0-9, a-f)")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> UdpTargetSpec:
        if (self.port is None) == (self.ports is None):
            raise ValueError("give either port or ports")
        if self.payload is not None and self.payload_hex is not None:
            raise ValueError("give either payload or payload_hex")
        return self

    def port_list(self) -> list[int]:
        return [self.port] if self.port is not None else expand_ports(list(self.ports or []))

    def payload_bytes(self) -> bytes:
        if self.payload_hex is not None:
            return bytes.fromhex(self.payload_hex)
        return (self.payload or "").encode()


# Ways to reach a Kubernetes Service; each one the target declares becomes its own column.
Via = Literal["cluster-ip", "node-port", "dns", "dns-short", "endpoints", "port-forward"]
ALL_VIAS: tuple[Via, ...] = typing.get_args(Via)
# A Service port's name: an IANA service name (lower-case letters, digits and '-', 15 at most).
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")
# A Service's name: a DNS-1035 label.
_SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


class EvidenceSpec(SpecModel):
    """What to read from the server's side after the run."""

    pod_logs: Flag = Field(
        False,
        description="Read the logs of the Service's backend pods (ready or not) for the run's "
        "time and attach to each http cell the lines carrying its User-Agent marker.",
    )


class KubernetesServiceSpec(TargetOptions):
    """A Service, looked up live in the API server; one column per way of reaching it."""

    kind: Literal["kubernetes-service"]
    service: str = Field(
        description="The Service's name.", json_schema_extra={"pattern": _SERVICE_NAME.pattern}
    )
    namespace: str | None = Field(
        None,
        description="Default: kubernetes.namespace, else the context's namespace, else default.",
    )
    port: (
        Annotated[
            int | str,
            WithJsonSchema(
                {
                    "anyOf": [
                        whole_number_schema(1, 65535),
                        {"type": "string", "pattern": _PORT_NAME.pattern},
                    ]
                }
            ),
        ]
        | None
    ) = Field(None, description="The Service port, by number or name (default: its first port).")
    via: list[Via] | None = Field(
        None,
        description=f"Which ways to probe (default: all: {', '.join(ALL_VIAS)}).",
        json_schema_extra={"minItems": 1, "uniqueItems": True},
    )
    path: str | None = Field(
        None,
        description="An HTTP check on top of TCP, e.g. /health.",
        json_schema_extra={"pattern": "^/"},
    )
    scheme: Literal["http", "https"] = Field("http", description="With path: the URL's scheme.")
    method: HttpMethod = Field("GET", description="With path: the request's method.")
    expect_status: list[HttpStatus] | None = Field(
        None, description="HTTP statuses that count as ok (default: 2xx and 3xx)."
    )
    headers: Headers = Field(default_factory=dict, description="Request headers.")
    verify_tls: Flag = Field(True, description="Check the server's certificate (https).")
    evidence: EvidenceSpec | None = Field(
        None, description="The server's side: what its backend pods logged of each request."
    )

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        if not _SERVICE_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a Service name (lower-case letters, digits and '-', "
                "starting with a letter)"
            )
        return value

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str) and not value.isdigit():
            if not _PORT_NAME.match(value):
                raise ValueError(
                    f"{value!r} is neither a port number nor a port name (lower-case letters, "
                    "digits and '-', at most 15)"
                )
            return value
        try:
            number = whole_number(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a port number or name") from None
        if not isinstance(number, int) or not 1 <= number <= 65535:
            raise ValueError(f"{value!r}: ports run from 1 to 65535")
        return number

    @field_validator("via")
    @classmethod
    def _via(cls, value: list[Via] | None) -> list[Via] | None:
        if value is not None:
            if not value:
                raise ValueError(f"list at least one of: {', '.join(ALL_VIAS)}")
            twice = sorted({v for v in value if value.count(v) > 1})
            if twice:
                raise ValueError(f"{', '.join(twice)} listed twice")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{value!r}: a path starts with '/'")
        return value

    def vias(self) -> tuple[Via, ...]:
        return tuple(self.via) if self.via is not None else ALL_VIAS


TargetSpec = Annotated[
    Union[
        TcpTargetSpec,
        HttpTargetSpec,
        DnsTargetSpec,
        IcmpTargetSpec,
        UdpTargetSpec,
        KubernetesServiceSpec,
    ],
    Field(discriminator="kind"),
]
