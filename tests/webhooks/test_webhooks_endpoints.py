"""Endpoint URLs: anything that is not an http(s) URL with a host is refused with a clear
error (never a 500), whatever urllib makes of it."""

from __future__ import annotations

import pytest

from fenqi.webhooks.endpoints import validate_url
from fenqi.webhooks.errors import InvalidEndpoint


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example/hooks",
        "http://127.0.0.1:8080/x",
        "https://[::1]:8443/hooks",
    ],
)
def test_an_http_url_with_a_host_is_accepted(url: str) -> None:
    assert validate_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://\u00af]\u00c3\u00a6S\u00c6\u00f1]:",  # what schemathesis sent: urllib raises
        "http://[::1/hooks",  # unbalanced bracket
        "ftp://shop.example/hooks",
        "https:///no-host",
        "not a url",
        "https://shop.example/" + "a" * 3000,
    ],
)
def test_anything_else_is_refused_naming_the_field(url: str) -> None:
    with pytest.raises(InvalidEndpoint) as refused:
        validate_url(url)
    assert "url" in str(refused.value)
