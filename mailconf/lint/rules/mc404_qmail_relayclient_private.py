"""qmail's tcpserver rules give RELAYCLIENT to a wide private range.

PASSING:
--- control/me
mail.example.org
--- control/rcpthosts
example.org
--- tcp.smtp
10.1.2.:allow,RELAYCLIENT=""
FAILING:
--- control/me
mail.example.org
--- control/rcpthosts
example.org
--- tcp.smtp
10.:allow,RELAYCLIENT=""
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.qmail import QmailConfig
from mailconf.lint.rules._qmail import relay_grants
from mailconf.lint.rules._ranges import too_wide

ID = "MC404"
PROGRAM = "qmail"
SEVERITY = "warning"
RELAY = True
MESSAGE = "RELAYCLIENT trusts more hosts than it probably should"
HINT = "give RELAYCLIENT to the networks of your own clients only"


def check(config: QmailConfig) -> Iterator[tuple[Location, str]]:
    yield from too_wide(relay_grants(config), {"private"})
