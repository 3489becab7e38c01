"""qmail's control/morercpthosts exists without morercpthosts.cdb (qmail-smtpd reads only the built file).

PASSING:
--- control/me
mail.example.org
--- control/rcpthosts
example.org
--- control/morercpthosts
example.net
--- control/morercpthosts.cdb
(built by qmail-newmrh)
FAILING:
--- control/me
mail.example.org
--- control/rcpthosts
example.org
--- control/morercpthosts
example.net
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.qmail import QmailConfig

ID = "MC406"
PROGRAM = "qmail"
SEVERITY = "warning"
RELAY = False
MESSAGE = "morercpthosts is not built"
HINT = "run qmail-newmrh after every change to control/morercpthosts"


def check(config: QmailConfig) -> Iterator[tuple[Location, str]]:
    if "morercpthosts" in config.control and "morercpthosts.cdb" not in config.control_files:
        yield config.location("morercpthosts"), ""
