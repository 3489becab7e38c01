"""Dovecot has TLS switched off: every login and every message crosses the network in clear.

PASSING:
--- dovecot.conf
ssl = required
FAILING:
--- dovecot.conf
ssl = no
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.dovecot import DovecotConfig

ID = "MC502"
PROGRAM = "dovecot"
SEVERITY = "error"
RELAY = False
MESSAGE = "TLS is off"
HINT = "set ssl = required (or yes) with ssl_cert and ssl_key"


def check(config: DovecotConfig) -> Iterator[tuple[Location, str]]:
    for setting in config.all("ssl"):
        listener = any(section.startswith("inet_listener") for section in setting.section)
        if setting.value.lower() == "no" and not listener:
            yield setting.location, "ssl = no"
