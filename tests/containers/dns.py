"""A DNS stand-in for the tier's node (no CoreDNS image can be pulled here, and there is no kube-proxy).

Answers A queries for `<service>.<namespace>.svc.<domain>` with the ready addresses of the Service's
EndpointSlices (pods reach those directly on the node's bridge, so the Service's ports must equal its target
ports, as the chart's do) and `kubernetes.default.svc.<domain>` with the API server's address. Every other
name: NXDOMAIN. Runs as its own process, in the tier's network namespace:

    python dns.py LISTEN_IP API_SERVER CA CERT KEY API_IP
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import sys
import urllib.request

DOMAIN = "svc.cluster.local"


def names(packet: bytes) -> tuple[str, int, int]:
    """The first question: (name, qtype, end offset)."""
    labels, i = [], 12
    while packet[i]:
        n = packet[i]
        labels.append(packet[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += n + 1
    qtype = struct.unpack("!H", packet[i + 1:i + 3])[0]
    return ".".join(labels).lower(), qtype, i + 5


def answer(packet: bytes, addresses: list[str] | None) -> bytes:
    """NXDOMAIN when `addresses` is None, else NOERROR with one A record per address (TTL 1 s)."""
    tid, _flags = struct.unpack("!HH", packet[:4])
    _, _, end = names(packet)
    rcode = 3 if addresses is None else 0
    header = struct.pack("!HHHHHH", tid, 0x8180 | rcode, 1, len(addresses or ()), 0, 0)
    records = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 1, 4) + socket.inet_aton(a) for a in addresses or ())
    return header + packet[12:end] + records


class Resolver:
    def __init__(self, server: str, ca: str, cert: str, key: str, api_ip: str):
        self.server, self.api_ip = server, api_ip
        self.context = ssl.create_default_context(cafile=ca)
        self.context.load_cert_chain(cert, key)

    def lookup(self, name: str, qtype: int) -> list[str] | None:
        if not name.endswith("." + DOMAIN):
            return None
        parts = name[: -len(DOMAIN) - 1].split(".")
        if len(parts) != 2:
            return None
        service, namespace = parts
        if (service, namespace) == ("kubernetes", "default"):
            return [self.api_ip] if qtype == 1 else []
        url = (f"{self.server}/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
               f"?labelSelector=kubernetes.io%2Fservice-name%3D{service}")
        try:
            with urllib.request.urlopen(url, context=self.context, timeout=5) as r:
                slices = json.load(r)["items"]
        except (OSError, ValueError):
            return None
        if not slices:
            return None
        found = sorted({a for s in slices if s.get("addressType") == "IPv4" for e in s.get("endpoints") or ()
                        if (e.get("conditions") or {}).get("ready", True) for a in e.get("addresses", ())})
        return found if qtype == 1 else []


def main(listen: str, *api) -> None:
    resolver = Resolver(*api)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((listen, 53))
    print("listening", flush=True)
    while True:
        packet, client = sock.recvfrom(512)
        try:
            name, qtype, _ = names(packet)
            sock.sendto(answer(packet, resolver.lookup(name, qtype)), client)
        except (IndexError, struct.error, UnicodeError):
            continue  # not a query this stand-in understands


if __name__ == "__main__":
    main(*sys.argv[1:])
