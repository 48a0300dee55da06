"""Webhooks go to public addresses only (server-side request forgery): the URL is checked when
set, and at delivery the name is resolved, every address checked, and the request sent to the
address checked, with the name kept for Host and TLS."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from fenqi.clock import FixedClock
from fenqi.webhooks.destinations import UnsafeDestination, check_url, pin
from fenqi.webhooks.endpoints import Endpoint
from fenqi.webhooks.worker import Claimed, post_signed
from webhooks.webhook_receiver import Receiver

REFUSED = [
    "http://127.0.0.1/hooks",
    "http://127.1.2.3:8080/hooks",
    "https://10.0.0.5/hooks",
    "https://172.16.0.1/hooks",
    "https://192.168.1.10/hooks",
    "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
    "http://100.64.0.1/hooks",  # carrier-grade NAT: not public
    "http://0.0.0.0:8000/",
    "http://[::1]/hooks",
    "http://[fe80::1]/hooks",
    "http://[fd00::5]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",  # IPv4 loopback written as IPv6
    "http://localhost:9000/hooks",
    "https://api.localhost/hooks",
    "https://db.internal/hooks",
    "https://printer.local/hooks",
    "https://intranet/hooks",  # one label: the resolver's search domains decide
]
ACCEPTED = ["https://shop.example/hooks", "https://8.8.8.8/hooks", "https://[2606:4700::1111]/h"]


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_destinations_are_refused_by_default(url: str) -> None:
    with pytest.raises(UnsafeDestination) as caught:
        check_url(url, allow_private=False)
    assert caught.value.code == "unsafe_webhook_url" and "public" in str(caught.value)
    check_url(url, allow_private=True)  # a test or demo platform may reach them


@pytest.mark.parametrize("url", ACCEPTED)
def test_public_destinations_are_accepted(url: str) -> None:
    check_url(url, allow_private=False)


def test_credentials_in_the_url_are_refused_even_on_private_networks() -> None:
    for allow in (False, True):
        with pytest.raises(UnsafeDestination, match="user name or password"):
            check_url("https://user:pw@shop.example/hooks", allow_private=allow)


@given(st.ip_addresses())
def test_a_literal_address_is_accepted_exactly_when_it_is_public(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """Public: global, not multicast, and not in space IANA keeps reserved (unassigned IPv6,
    which also holds the NAT64 prefix that can reach IPv4 loopback); an IPv4 address written
    as IPv6 is judged as IPv4."""
    host = f"[{address}]" if address.version == 6 else str(address)
    judged = (address.ipv4_mapped if address.version == 6 else None) or address
    public = judged.is_global and not judged.is_multicast and not judged.is_reserved
    try:
        check_url(f"https://{host}/hooks", allow_private=False)
        accepted = True
    except UnsafeDestination:
        accepted = False
    assert accepted == public


def resolver(table: dict[str, Sequence[str]]) -> Callable[[str, int], Sequence[str]]:
    return lambda host, _port: table[host]


def test_pin_sends_to_the_checked_address_and_keeps_the_name() -> None:
    first, second = pin(
        "https://hooks.shop.example:8443/in?x=1",
        False,
        resolver({"hooks.shop.example": ["93.184.216.34", "93.184.216.35"]}),
    )
    assert first.url == "https://93.184.216.34:8443/in?x=1"
    assert second.url == "https://93.184.216.35:8443/in?x=1"
    assert first.headers == second.headers == {"Host": "hooks.shop.example:8443"}
    assert first.extensions == {"sni_hostname": "hooks.shop.example"}
    (v6,) = pin(
        "http://h.shop.example/in", False, resolver({"h.shop.example": ["2606:4700::1111"]})
    )
    assert v6.url == "http://[2606:4700::1111]/in" and v6.extensions == {}
    (literal,) = pin("https://8.8.8.8/in", False, resolver({}))
    assert literal.url == "https://8.8.8.8/in" and literal.headers == {}


@pytest.mark.parametrize(
    "addresses", [["10.1.2.3"], ["93.184.216.34", "127.0.0.1"], ["::1"], ["169.254.169.254"]]
)
def test_a_public_name_that_resolves_to_a_private_address_is_refused(
    addresses: list[str],
) -> None:
    """DNS rebinding: the name looked fine when it was set; every address counts at delivery."""
    with pytest.raises(UnsafeDestination, match="resolves to"):
        pin("https://hooks.shop.example/in", False, resolver({"hooks.shop.example": addresses}))


def _claimed() -> Claimed:
    return Claimed(
        delivery_id=1,
        event_id="evt_1",
        event_type="order.captured",
        merchant_id="m1",
        attempts=0,
        payload='{"x": 1}',
        locked_until=datetime(2026, 1, 1, tzinfo=UTC),
        endpoint=None,
        resolve_error=None,
    )


def test_the_worker_refuses_a_rebound_name_and_reaches_a_pinned_one(receiver: Receiver) -> None:
    """Over real HTTP: with private networks refused, a name resolving to 127.0.0.1 is not
    posted to; allowed (a test platform), the POST goes to the address the name resolved to,
    with the name in the Host header."""
    clock = FixedClock.on(date(2026, 1, 2))
    port = httpx.URL(receiver.url).port
    endpoint = Endpoint(url=f"http://hooks.shop.example:{port}/hooks", secret=b"s" * 32)
    rebinding = resolver({"hooks.shop.example": ["127.0.0.1"]})
    with httpx.Client() as client:
        refused = post_signed(
            client, clock, _claimed(), endpoint, 5.0, allow_private=False, resolve=rebinding
        )
        assert refused.status_code is None and refused.error is not None
        assert refused.error.startswith("refused:") and "127.0.0.1" in refused.error
        assert receiver.requests == []
        sent = post_signed(
            client, clock, _claimed(), endpoint, 5.0, allow_private=True, resolve=rebinding
        )
    assert sent.status_code == 200
    (request,) = receiver.requests
    assert request.headers["Host"] == f"hooks.shop.example:{port}"


def test_an_address_that_refuses_the_connection_is_followed_by_the_next(
    receiver: Receiver, closed_port_url: str
) -> None:
    """The name's first address does not answer (connection refused); the next one does. A
    refusal on every address is one failed attempt."""
    port = httpx.URL(receiver.url).port
    endpoint = Endpoint(url=f"http://hooks.shop.example:{port}/hooks", secret=b"s" * 32)
    closed_port = httpx.URL(closed_port_url).port
    clock = FixedClock.on(date(2026, 1, 2))
    # 127.0.0.2 is loopback too, but nothing listens there on the receiver's port
    both = resolver({"hooks.shop.example": ["127.0.0.2", "127.0.0.1"]})
    with httpx.Client() as client:
        sent = post_signed(
            client, clock, _claimed(), endpoint, 5.0, allow_private=True, resolve=both
        )
        assert sent.status_code == 200 and len(receiver.requests) == 1
        nowhere = Endpoint(url=f"http://hooks.shop.example:{closed_port}/h", secret=b"s" * 32)
        failed = post_signed(
            client, clock, _claimed(), nowhere, 5.0, allow_private=True, resolve=both
        )
    assert failed.status_code is None and failed.error is not None
    assert "ConnectError" in failed.error and len(receiver.requests) == 1


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("served_name", ["hooks.shop.example", "other.example"])
def test_a_pinned_https_delivery_checks_the_certificate_against_the_name(
    tmp_path: Path, served_name: str
) -> None:
    """Sent to the checked address, the TLS handshake still names the shop's host and the
    certificate is checked against it: a certificate for that name is accepted, one for
    another name is not."""
    cert, key = _certificate(tmp_path, served_name)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    receiver = Receiver()
    receiver.server.socket = server_side.wrap_socket(receiver.server.socket, server_side=True)
    receiver.thread.start()
    trust = ssl.create_default_context(cafile=str(cert))
    port = httpx.URL(receiver.url).port
    endpoint = Endpoint(url=f"https://hooks.shop.example:{port}/hooks", secret=b"s" * 32)
    try:
        with httpx.Client(verify=trust) as client:
            outcome = post_signed(
                client,
                FixedClock.on(date(2026, 1, 2)),
                _claimed(),
                endpoint,
                5.0,
                allow_private=True,
                resolve=resolver({"hooks.shop.example": ["127.0.0.1"]}),
            )
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    if served_name == "hooks.shop.example":
        assert outcome.status_code == 200, outcome
        assert receiver.requests[0].headers["Host"] == f"hooks.shop.example:{port}"
    else:
        assert outcome.status_code is None and outcome.error is not None
        assert "CERTIFICATE_VERIFY_FAILED" in outcome.error or "certificate" in outcome.error
        assert receiver.requests == []


# Other spellings of 127.0.0.1 and 10.0.0.1 that the C library's inet_aton reads (and so does
# getaddrinfo, which httpx's connection uses): issue 24 item 18 found `http://0x7f.1/x` accepted.
INET_ATON_SPELLINGS = [
    "http://0x7f.1/x",
    "http://0x7f000001/x",
    "http://0177.0.0.1/x",
    "http://0177.1/x",
    "http://127.1/x",
    "http://2130706433/x",
    "http://0x7F.0.0.1/x",
    "http://127.0.1/x",
    "http://10.1/x",
    "http://012.0.0.1/x",
    "http://167772161/x",
]


@pytest.mark.parametrize("url", INET_ATON_SPELLINGS)
def test_every_spelling_of_a_private_address_is_refused(url: str) -> None:
    import socket
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    # what the connection would reach: the system resolver reads the spelling without DNS
    reached = {ipaddress.ip_address(i[4][0]) for i in socket.getaddrinfo(host, 80)}
    assert all(not a.is_global for a in reached), reached
    with pytest.raises(UnsafeDestination, match="not a public address"):
        check_url(url, allow_private=False)


def test_an_inet_aton_spelling_of_a_public_address_is_accepted() -> None:
    check_url("http://0x8.0x8.0x8.0x8/hooks", allow_private=False)  # 8.8.8.8
