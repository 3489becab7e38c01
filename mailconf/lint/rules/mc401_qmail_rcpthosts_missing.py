"""qmail has no control/rcpthosts: qmail-smtpd accepts every recipient, from anyone (open relay).

PASSING:
--- control/me
mail.example.org
--- control/rcpthosts
example.org
FAILING:
--- control/me
mail.example.org
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.qmail import QmailConfig

ID = "MC401"
PROGRAM = "qmail"
SEVERITY = "error"
RELAY = True
MESSAGE = "control/rcpthosts is missing: every recipient is accepted"
HINT = "create control/rcpthosts listing the domains this host receives mail for"


def check(config: QmailConfig) -> Iterator[tuple[Location, str]]:
    if "rcpthosts" not in config.control:
        yield config.location("rcpthosts"), ""
