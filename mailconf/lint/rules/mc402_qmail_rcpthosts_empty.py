"""qmail's control/rcpthosts is empty: every recipient is refused (a broken config, though not an open one).

PASSING:
--- control/me
mail.example.org
--- control/rcpthosts
example.org
FAILING:
--- control/me
mail.example.org
--- control/rcpthosts
# nothing yet
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.qmail import QmailConfig

ID = "MC402"
PROGRAM = "qmail"
SEVERITY = "error"
RELAY = False
MESSAGE = "control/rcpthosts is empty: all mail is refused"
HINT = "list the domains this host receives mail for in control/rcpthosts"


def check(config: QmailConfig) -> Iterator[tuple[Location, str]]:
    if config.control.get("rcpthosts") == [] and "morercpthosts" not in config.control:
        yield config.location("rcpthosts"), ""
