"""The address a sign-in came from, taken from what the proxies in front of the hub appended, never
from what the client wrote.

JupyterHub runs Tornado with `xheaders=True`, so `request.remote_ip` is whatever the client puts in
`X-Real-Ip` (or the last `X-Forwarded-For` entry): a guessing loop could vary it to escape the login
throttle, or name a classroom's address to lock everyone there out. Instead:

1. The hop chain is the `X-Forwarded-For` entries followed by the TCP peer.
2. The peer is trusted only if it is the hub's own configurable-http-proxy (`OwnProxy`): loopback in
   local mode (`teamhub demo`, where the proxy runs beside the hub); in the chart the proxy is a separate
   pod whose address changes, so the hub asks DNS for the proxy pods behind the headless Service the
   chart makes for exactly this (`<release>-proxy-peers`, env TEAMHUB_PROXY_PEERS). Any other peer (a
   user server calling the hub directly, which the NetworkPolicy allows) is the client itself: its
   headers are ignored.
3. configurable-http-proxy appends the address it was connected from to `X-Forwarded-For`; that entry
   is the client unless it lies in `auth.local.trustedProxies` (an ingress controller, a load balancer),
   in which case the entry to its left, appended by that proxy, is examined the same way. The first
   entry not in a trusted range is the client address. `X-Real-Ip` is never read: no proxy here sets it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

LOOPBACK = "loopback"


def parse_ip(text: str):
    """An address from a header entry or a socket ('1.2.3.4', '1.2.3.4:80', '[::1]:80', '::ffff:1.2.3.4')."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if ip.version == 6 else ip


def networks(cidrs) -> tuple:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


class OwnProxy:
    """Is this TCP peer the hub's own configurable-http-proxy?

    `spec` is "loopback" (local mode), a DNS name resolving to the proxy pods (the chart's headless
    Service), or "" (no proxy is trusted: every request's address is its TCP peer)."""

    def __init__(self, spec: str, ttl: float = 30.0, clock=time.monotonic):
        self.spec, self.ttl, self.clock = spec, ttl, clock
        self._addresses: frozenset = frozenset()
        self._read_at = float("-inf")

    async def _resolve(self) -> frozenset:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.spec, None, proto=socket.IPPROTO_TCP)
        except OSError:
            return self._addresses  # DNS hiccup: keep what was known
        return frozenset(filter(None, (parse_ip(info[4][0]) for info in infos)))

    async def is_proxy(self, ip) -> bool:
        if not self.spec or ip is None:
            return False
        if self.spec == LOOPBACK:
            return ip.is_loopback
        # Read again when the answer is old, or when an unknown peer arrives (a new proxy pod), but
        # at most once a second so unknown peers cannot turn every request into a DNS query.
        now = self.clock()
        age = now - self._read_at
        if age > self.ttl or (ip not in self._addresses and age > 1.0):
            self._addresses, self._read_at = await self._resolve(), now
        return ip in self._addresses


async def client_address(peer: str, forwarded_for: list, trusted: tuple, own_proxy: OwnProxy) -> str:
    """The client's address for `peer` (the TCP peer) and the request's X-Forwarded-For header values."""
    peer_ip = parse_ip(peer or "")
    if not await own_proxy.is_proxy(peer_ip):
        return str(peer_ip) if peer_ip is not None else (peer or "unknown")
    entries = [e for value in forwarded_for for e in value.split(",") if e.strip()]
    address = str(peer_ip)
    for entry in reversed(entries):
        ip = parse_ip(entry)
        if ip is None:
            return entry.strip()[:64]  # written by a trusted hop's client: as good as any name for it
        address = str(ip)
        if not any(ip in net for net in trusted):
            return address
    return address  # every hop trusted: the leftmost one is the client
