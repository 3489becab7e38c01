"""Exim lets a wide private range relay (relay_from_hosts).

PASSING:
--- exim4.conf
hostlist relay_from_hosts = 127.0.0.1 : 10.1.2.0/24
FAILING:
--- exim4.conf
hostlist relay_from_hosts = 127.0.0.1 : 10.0.0.0/8
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.exim import EximConfig
from mailconf.lint.rules._exim import relay_from_hosts_grants
from mailconf.lint.rules._ranges import too_wide

ID = "MC204"
PROGRAM = "exim"
SEVERITY = "warning"
RELAY = True
MESSAGE = "relay_from_hosts trusts more hosts than it probably should"
HINT = "list the networks of your own clients only"


def check(config: EximConfig) -> Iterator[tuple[Location, str]]:
    yield from too_wide(relay_from_hosts_grants(config), {"private"})
