"""The login throttle's client address: from what the hub's own proxy appended, never from what the client wrote."""

from __future__ import annotations

import asyncio

import pytest
from teamhub.auth.clientaddr import LOOPBACK, OwnProxy, client_address, networks, parse_ip

INGRESS = networks(["10.42.0.0/16"])


def addr(peer, forwarded=(), trusted=(), own=LOOPBACK):
    return asyncio.run(client_address(peer, list(forwarded), trusted, OwnProxy(own)))


def test_client_written_entries_left_of_the_proxys_own_are_ignored():
    # configurable-http-proxy appended 192.0.2.7, the address that connected to it
    assert addr("127.0.0.1", ["198.51.100.20, 203.0.113.9, 192.0.2.7"]) == "192.0.2.7"


def test_trusted_ingress_hops_are_skipped_to_the_rightmost_untrusted_entry():
    chain = "198.51.100.20, 203.0.113.66, 10.42.3.4"  # forged, what the ingress saw, the ingress pod
    assert addr("127.0.0.1", [chain], INGRESS) == "203.0.113.66"
    assert addr("127.0.0.1", ["203.0.113.66", "10.42.3.4"], INGRESS) == "203.0.113.66"  # two header lines
    assert addr("127.0.0.1", ["10.42.9.9, 10.42.3.4"], INGRESS) == "10.42.9.9"  # all trusted: the leftmost


def test_a_peer_that_is_not_the_hubs_proxy_is_the_client_itself():
    """A user server talks to the hub directly (the NetworkPolicy allows it): its headers mean nothing."""
    assert addr("10.42.7.7", ["198.51.100.20"], INGRESS) == "10.42.7.7"
    assert addr("10.42.7.7", ["198.51.100.20"], INGRESS, own="") == "10.42.7.7"
    assert addr("127.0.0.1", ["198.51.100.20"], own="") == "127.0.0.1"  # no proxy trusted at all


def test_the_chart_finds_its_proxy_pods_by_dns():
    """In the chart the proxy is another pod: TEAMHUB_PROXY_PEERS names a headless Service ("localhost" here)."""
    assert addr("127.0.0.1", ["203.0.113.9"], own="localhost") == "203.0.113.9"
    assert addr("192.0.2.50", ["203.0.113.9"], own="localhost") == "192.0.2.50"
    assert addr("127.0.0.1", ["203.0.113.9"], own="no-such-host.invalid") == "127.0.0.1"


@pytest.mark.parametrize(("text", "expected"), [
    ("192.0.2.1", "192.0.2.1"), (" 192.0.2.1:8080", "192.0.2.1"), ("::ffff:192.0.2.1", "192.0.2.1"),
    ("[2001:db8::1]:443", "2001:db8::1"), ("2001:db8::1", "2001:db8::1"), ("unknown", None), ("", None),
])
def test_addresses_as_proxies_write_them(text, expected):
    ip = parse_ip(text)
    assert (str(ip) if ip else None) == expected
