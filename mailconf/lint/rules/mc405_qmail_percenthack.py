"""qmail rewrites user%domain@host for the domains in control/percenthack.

PASSING:
--- control/me
mail.example.org
--- control/rcpthosts
example.org
FAILING:
--- control/me
mail.example.org
--- control/rcpthosts
example.org
--- control/percenthack
example.org
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.qmail import QmailConfig

ID = "MC405"
PROGRAM = "qmail"
SEVERITY = "warning"
RELAY = True
MESSAGE = "the percent hack is on"
HINT = "empty or remove control/percenthack"


def check(config: QmailConfig) -> Iterator[tuple[Location, str]]:
    for line in config.control.get("percenthack", []):
        yield line.location, line.value
