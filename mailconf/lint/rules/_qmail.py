"""tcpserver rules addresses as networks: `1.2.3.` is 1.2.3.0/24, `1.2.3.0-127` is covered by 1.2.3.0/25."""

from __future__ import annotations

import math

from mailconf.errors import Location
from mailconf.lint.readers.qmail import QmailConfig


def as_network(address: str) -> str | None:
    if address == "":
        return "0.0.0.0/0"
    if address.startswith("="):
        return None  # a host name: matched by reverse DNS
    parts = address.rstrip(".").split(".")
    if len(parts) > 4 or not all(parts):
        return None
    octets, bits = [], 0
    for part in parts:
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            return None
        if dash:
            span = int(high) - int(low) + 1
            octets.append(low)
            bits += 8 - math.ceil(math.log2(max(span, 1)))
            break
        octets.append(low)
        bits += 8
    if any(int(o) > 255 for o in octets):
        return None
    return ".".join(octets + ["0"] * (4 - len(octets))) + f"/{bits}"


def relay_grants(config: QmailConfig) -> list[tuple[str, Location]]:
    """(network, location) for every rule that lets a client in with RELAYCLIENT set."""
    found = []
    for rule in config.tcp_rules:
        network = as_network(rule.address)
        if rule.allow and "RELAYCLIENT" in rule.variables and network:
            found.append((network, rule.location))
    return found
