"""Sendmail's access map gives RELAY to a public range wider than /24 or /48.

PASSING:
--- sendmail.mc
FEATURE(`access_db')dnl
--- access
Connect:127.0.0.1       RELAY
Connect:192.168.1       RELAY
Connect:198.51.100.7    RELAY
FAILING:
--- sendmail.mc
FEATURE(`access_db')dnl
--- access
# 81 is a public /8
Connect:81              RELAY
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.sendmail import SendmailConfig
from mailconf.lint.rules._ranges import too_wide
from mailconf.lint.rules._sendmail import client_relay_grants

ID = "MC303"
PROGRAM = "sendmail"
SEVERITY = "error"
RELAY = True
MESSAGE = "the access map lets the Internet relay"
HINT = "give RELAY to your own clients' addresses only (public prefixes of at least 3 octets)"


def check(config: SendmailConfig) -> Iterator[tuple[Location, str]]:
    yield from too_wide(client_relay_grants(config), {"everyone", "public"})
