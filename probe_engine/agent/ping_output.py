"""What a ping binary printed, as an icmp check record: iputils, busybox and inetutils words.

The agent runs the place's own `ping` where it can open no ICMP socket itself, and the shell
prober runs it where there is no Python; both read its output here. iputils names ICMP errors
("From 10.0.0.1 icmp_seq=1 Destination Host Unreachable", "Packet filtered"); busybox prints
nothing for them (100% loss, exit 1), so its silence cannot be told from a timeout: the record
says so rather than guess. Standard library only and Python 3.8 compatible: shipped inside the
agent.
"""

from __future__ import annotations

import re

from .classify import errno_from_message, errno_name, icmp_error, status_for_errno
from .records import Check

_REPLY = re.compile(
    r"bytes from \[?(?P<address>[0-9A-Fa-f:.]+)\]?(?: \([^)]*\))?:.*?time[=<](?P<ms>[0-9.]+) ?ms"
)
_FROM = re.compile(r"^From (?P<address>\S+?)(?: \([^)]*\))?:? icmp_seq=\d+ (?P<words>.+)$")
_SENT = re.compile(r"(?P<sent>\d+) packets transmitted, (?P<received>\d+) (?:packets )?received")
# iputils' words for each ICMP error (ping/ping4.c pr_icmph, ping/ping6_common.c).
_IPUTILS_V4 = {
    "destination net unreachable": (3, 0),
    "destination host unreachable": (3, 1),
    "destination protocol unreachable": (3, 2),
    "destination port unreachable": (3, 3),
    "frag needed and df set": (3, 4),
    "source route failed": (3, 5),
    "destination net unknown": (3, 6),
    "destination host unknown": (3, 7),
    "destination net prohibited": (3, 9),
    "destination host prohibited": (3, 10),
    "packet filtered": (3, 13),
    "time to live exceeded": (11, 0),
}
_IPUTILS_V6 = {
    "destination unreachable: no route": (1, 0),
    "destination unreachable: administratively prohibited": (1, 1),
    "destination unreachable: beyond scope of source address": (1, 2),
    "destination unreachable: address unreachable": (1, 3),
    "destination unreachable: port unreachable": (1, 4),
    "destination unreachable: source address failed ingress/egress policy": (1, 5),
    "destination unreachable: reject route to destination": (1, 6),
    "time exceeded: hop limit": (3, 0),
}
# The binary could not ping at all: its own words, a source-error (not a network answer).
# "socket:" is its ICMP socket refused; a send refused by a local firewall ("sendmsg:
# Operation not permitted") is the network's answer and is not listed.
_CANNOT = (
    "socket:",
    "are you root",
    "no such device",
    "so_bindtodevice",
    "bad address",
    "unknown host",
    "name or service not known",
    "cannot assign requested address",
    "invalid argument",
    "usage:",
    "invalid option",
    "unrecognized option",
    "cannot run",
)


def flavour(output: str, path: str = "") -> str:
    """'busybox', 'iputils' or 'ping' (another), from the binary's path and its words."""
    if "busybox" in path.lower():
        return "busybox"
    if "packets transmitted" in output and "icmp_seq=" in output:
        return "iputils"
    return "ping"


def _icmp_from_words(words: str, version: int) -> tuple[int, int] | None:
    text = words.strip().lower()
    table = _IPUTILS_V6 if version == 6 else _IPUTILS_V4
    for phrase, pair in table.items():
        if text.startswith(phrase):
            return pair
    return None


def parse(output: str, exit_code: int, told: Check, count: int) -> Check:
    """The icmp record for one ping run of `count` echoes: replies with their rtt, ICMP
    errors, loss, or why the binary could not ping (source-error, in its words). `told` is
    the record so far: name, address, family, and the ping as `method`."""
    tool = str(told.get("method") or "ping")
    version = 6 if told.get("family") == "ipv6" else 4
    rtts: list[float] = []
    errors: list[tuple[str, int, int]] = []
    sent: int | None = None
    received: int | None = None
    for raw in output.splitlines():
        line = raw.strip()
        reply = _REPLY.search(line)
        if reply is not None:
            rtts.append(float(reply["ms"]))
            continue
        came = _FROM.match(line)
        if came is not None:
            pair = _icmp_from_words(came["words"], version)
            if pair is not None:
                errors.append((came["address"], pair[0], pair[1]))
            continue
        summary = _SENT.search(line)
        if summary is not None:
            sent, received = int(summary["sent"]), int(summary["received"])
    record: Check = {
        **told,
        "name": "icmp",
        "method": tool,
        "sent": sent if sent is not None else (count if (rtts or errors) else 0),
        "received": received if received is not None else len(rtts),
    }
    words = " | ".join(line.strip() for line in output.splitlines() if line.strip())[-400:]
    if rtts:
        record["received"] = max(record["received"], len(rtts))
        finish_replies(record, rtts)
        return record
    if errors:
        origin, kind, code = errors[0]
        apply_icmp_error(record, version, kind, code, origin)
        return record
    lowered = output.lower()
    number = errno_from_message(output)
    if sent is None and any(phrase in lowered for phrase in _CANNOT):
        record.update(
            {
                "status": "source-error",
                "sent": 0,
                "message": f"{tool} could not ping (exit status {exit_code}): {words}",
            }
        )
        return record
    if sent is None and number is not None:
        # "ping: connect: Network is unreachable": the kernel refused before anything left.
        record.update(
            {
                "status": status_for_errno(number),
                "errno": number,
                "errno_name": errno_name(number),
                "sent": 0,
                "message": words,
            }
        )
        return record
    if sent is None and exit_code != 124:
        record.update(
            {
                "status": "source-error",
                "sent": 0,
                "message": "{} printed no statistics (exit status {}): {}".format(
                    tool, exit_code, words or "nothing"
                ),
            }
        )
        return record
    if sent is None:  # stopped at our deadline before its summary
        sent = count
    message = "no echo reply to {} request{} (100% loss)".format(sent, "" if sent == 1 else "s")
    if tool.startswith("busybox"):
        message += (
            "; busybox ping prints nothing for ICMP errors, so an unreachable host looks the "
            "same as one that does not answer"
        )
    record.update(
        {
            "status": "timeout",
            "sent": sent,
            "received": 0,
            "loss_percent": 100.0 if sent else None,
            "errno": None,
            "errno_name": None,
            "message": message,
        }
    )
    return record


def finish_replies(record: Check, rtts: list[float]) -> None:
    """An answered check: ok, with rtt min/avg/max and the loss."""
    sent = max(int(record.get("sent") or 0), len(rtts))
    received = len(rtts)
    loss = 100.0 * (sent - received) / sent if sent else 0.0
    record.update(
        {
            "status": "ok",
            "sent": sent,
            "received": received,
            "loss_percent": round(loss, 1),
            "rtt_ms": {
                "min": round(min(rtts), 3),
                "avg": round(sum(rtts) / len(rtts), 3),
                "max": round(max(rtts), 3),
            },
            "message": "{} of {} echo replies, rtt min/avg/max {:.3f}/{:.3f}/{:.3f} ms{}".format(
                received,
                sent,
                min(rtts),
                sum(rtts) / len(rtts),
                max(rtts),
                f", {round(loss, 1):g}% loss" if loss else "",
            ),
        }
    )


def apply_icmp_error(record: Check, version: int, kind: int, code: int, origin: str | None) -> None:
    """A check answered by an ICMP error: its status, name, type/code, errno and sender."""
    name, status, words, number = icmp_error(version, kind, code)
    sent = int(record.get("sent") or 0)
    record.update(
        {
            "status": status,
            "icmp": name,
            "icmp_type": kind,
            "icmp_code": code,
            "icmp_from": origin,
            "errno": number or None,
            "errno_name": errno_name(number) if number else None,
            "loss_percent": 100.0 if sent else None,
            "message": "ICMP{} {} from {} (type {} code {})".format(
                "v6" if version == 6 else "", words, origin or "?", kind, code
            ),
        }
    )
