"""qmail's tcpserver rules give RELAYCLIENT to everyone or to a public range wider than /24.

PASSING:
--- control/me
mail.example.org
--- control/rcpthosts
example.org
--- tcp.smtp
127.:allow,RELAYCLIENT=""
:allow
FAILING:
--- control/me
mail.example.org
--- control/rcpthosts
example.org
--- tcp.smtp
127.:allow,RELAYCLIENT=""
:allow,RELAYCLIENT=""
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.qmail import QmailConfig
from mailconf.lint.rules._qmail import relay_grants
from mailconf.lint.rules._ranges import too_wide

ID = "MC403"
PROGRAM = "qmail"
SEVERITY = "error"
RELAY = True
MESSAGE = "RELAYCLIENT lets the Internet relay"
HINT = 'give RELAYCLIENT="" to your own clients only (public ones at most a /24: 192.0.2.), then `:allow`'


def check(config: QmailConfig) -> Iterator[tuple[Location, str]]:
    yield from too_wide(relay_grants(config), {"everyone", "public"})
