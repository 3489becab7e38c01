"""Sendmail's access map: which entries grant RELAY, and to what."""

from __future__ import annotations

from mailconf.errors import Location
from mailconf.lint.core import Setting
from mailconf.lint.readers.sendmail import SendmailConfig
from mailconf.lint.rules._ranges import tld_or_wildcard


def relay_entries(config: SendmailConfig) -> list[tuple[str, str, Setting]]:
    """(tag, key, entry) for every access entry whose value is RELAY; the tag is lower case without colon."""
    found = []
    for entry in config.files.get("access", []):
        if entry.value.split()[:1] != ["RELAY"]:
            continue
        tag, colon, key = entry.name.partition(":")
        if not colon or tag.lower() not in ("connect", "to", "from", "spam"):
            tag, key = "", entry.name  # untagged (an IPv6: prefix is not a tag either)
        found.append((tag.lower(), key, entry))
    return found


def as_network(key: str) -> str | None:
    """An access-map address prefix as a network: `81` is 81.0.0.0/8, `IPv6:2001:db8` is 2001:db8::/32."""
    if key.lower().startswith("ipv6:"):
        groups = [g for g in key[5:].split(":") if g]
        if not groups or any(len(g) > 4 or any(c not in "0123456789abcdefABCDEF" for c in g) for g in groups):
            return None
        return ":".join(groups) + ("::" if len(groups) < 8 else "") + f"/{16 * min(len(groups), 8)}"
    parts = key.strip(".").split(".")
    if not key or not all(p.isdigit() and int(p) < 256 for p in parts) or len(parts) > 4:
        return None
    return ".".join(parts + ["0"] * (4 - len(parts))) + f"/{8 * len(parts)}"


def wide_domain(name: str) -> bool:
    """A top-level domain or a wildcard that is not an address prefix (`81` is a network)."""
    name = name.strip().lstrip("@")
    return tld_or_wildcard(name) and as_network(name) is None


def client_relay_grants(config: SendmailConfig) -> list[tuple[str, Location]]:
    """(network, location) for every access entry that gives RELAY to connecting clients by address."""
    return [
        (network, entry.location)
        for tag, key, entry in relay_entries(config)
        if tag in ("connect", "") and (network := as_network(key))
    ]
