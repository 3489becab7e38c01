"""Exim lets everyone, or a public range wider than /24 or /48, relay (relay_from_hosts).

PASSING:
--- exim4.conf
hostlist relay_from_hosts = <; 127.0.0.1 ; ::1 ; 192.168.1.0/24
FAILING:
--- exim4.conf
hostlist relay_from_hosts = 127.0.0.1 : ::::1 : 0.0.0.0/0
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.exim import EximConfig
from mailconf.lint.rules._exim import relay_from_hosts_grants
from mailconf.lint.rules._ranges import too_wide

ID = "MC201"
PROGRAM = "exim"
SEVERITY = "error"
RELAY = True
MESSAGE = "relay_from_hosts lets the Internet relay"
HINT = "list your own clients' networks (public ones at most /24 or /48); others log in"
WIDTHS = {"everyone", "public"}


def check(config: EximConfig) -> Iterator[tuple[Location, str]]:
    yield from too_wide(relay_from_hosts_grants(config), WIDTHS)
