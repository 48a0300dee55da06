"""Where a webhook may be sent: public internet addresses, unless the platform allows private ones.

A shop chooses its webhook URL, and the worker POSTs to it from inside the platform's network.
Unchecked, a URL naming 127.0.0.1, 10.0.0.5, 169.254.169.254 (a cloud's metadata service) or a
name that resolves to one of them would make the worker call the platform's own services
(server-side request forgery). So a URL is checked when it is set (literal addresses and names
that are local by definition), and again at every delivery: the name is resolved, every address
it resolves to must be public, and the request goes to the address that was checked, with the
name kept for the Host header and for TLS (server name and certificate check), so that a name
which resolves to something else a moment later (DNS rebinding) cannot slip past the check.

`webhook_allow_private_networks` (off by default) lets the worker reach this machine and private
networks: for tests and the demo, whose receivers listen on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fenqi.webhooks.errors import WebhookError

# names that are local by definition (RFC 6761, RFC 6762, RFC 8375) or by common use
LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".lan")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]


class UnsafeDestination(WebhookError):
    """A webhook URL that points at loopback, a private network or another non-public address."""

    code = "unsafe_webhook_url"
    http_status = 422


def _kind(address: IPAddress) -> str | None:
    """Why an address is not a public destination (None if it is one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _kind(address.ipv4_mapped)
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "not global"


# What the C library's inet_aton reads as an IPv4 address: one to four parts, each decimal, octal
# (leading 0) or hexadecimal (0x): 127.1, 0x7f.1, 0177.0.0.1 and 2130706433 are all 127.0.0.1.
_INET_ATON_FORM = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}$")


def _literal(host: str) -> IPAddress | None:
    """The address `host` names, read the way the HTTP client's connection will read it.

    httpx hands a host that is not a dotted quad to the system resolver, and getaddrinfo reads
    every inet_aton spelling of an IPv4 address as that address without asking DNS: so must
    this check, or `http://0x7f.1/` passes for a name while it connects to 127.0.0.1.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _INET_ATON_FORM.match(host.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_url(url: str, allow_private: bool) -> None:
    """Refuse a URL whose host is a non-public address or a local name, or that carries a
    user name or password (they would be sent to whoever answers)."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("url: must not carry a user name or password", field="url")
    if allow_private:
        return
    host = (parts.hostname or "").rstrip(".").lower()
    address = _literal(host)
    if address is not None:
        kind = _kind(address)
        if kind is not None:
            raise UnsafeDestination(
                f"url: {host}{'' if str(address) == host else f' (that is {address})'} is "
                f"not a public address ({kind}); webhooks go to public "
                "addresses only",
                field="url",
            )
        return
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES) or "." not in host:
        raise UnsafeDestination(
            f"url: {host!r} is a local name; webhooks go to public addresses only", field="url"
        )


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for (host, port), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """What to send a delivery to: the URL to connect to, and the request's extra headers and
    httpx extensions that keep the original name for Host and TLS."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def pin(url: str, allow_private: bool, resolve: Resolver = system_resolver) -> list[Target]:
    """The delivery targets for `url`, to try in order: checked as `check_url` does, its name
    resolved, every address checked (unless `allow_private`), and the URL rewritten to each
    address in the resolver's order (the name kept for Host and TLS), so that a host whose
    first address does not answer (say, IPv6 on a machine without it) is reached on the next,
    as a connection to the name would be.

    Raises UnsafeDestination for a non-public destination, OSError if the name does not
    resolve."""
    check_url(url, allow_private)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _literal(host) is not None:
        return [Target(url)]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = [_literal(a) for a in resolve(host, port)]
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    checked: list[IPAddress] = []
    for address in addresses:
        kind = _kind(address) if address is not None else "unreadable"
        if kind is not None and (address is None or not allow_private):
            raise UnsafeDestination(
                f"url: {host} resolves to {address}, not a public address ({kind}); webhooks go "
                "to public addresses only",
                field="url",
            )
        assert address is not None
        checked.append(address)
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    targets = []
    for address in checked:
        shown = f"[{address}]" if address.version == 6 else str(address)
        netloc = shown if parts.port is None else f"{shown}:{parts.port}"
        targets.append(
            Target(urlunsplit(parts._replace(netloc=netloc)), {"Host": host_header}, extensions)
        )
    return targets
