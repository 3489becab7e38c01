"""Sendmail's access map gives RELAY to a wide private range.

PASSING:
--- sendmail.mc
FEATURE(`access_db')dnl
--- access
Connect:10.1.2          RELAY
FAILING:
--- sendmail.mc
FEATURE(`access_db')dnl
--- access
Connect:10              RELAY
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.sendmail import SendmailConfig
from mailconf.lint.rules._ranges import too_wide
from mailconf.lint.rules._sendmail import client_relay_grants

ID = "MC304"
PROGRAM = "sendmail"
SEVERITY = "warning"
RELAY = True
MESSAGE = "the access map trusts more hosts than it probably should"
HINT = "give RELAY to the networks of your own clients only"


def check(config: SendmailConfig) -> Iterator[tuple[Location, str]]:
    yield from too_wide(client_relay_grants(config), {"private"})
