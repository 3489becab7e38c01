"""Dovecot offers ANONYMOUS authentication (and an MTA using Dovecot's SASL may trust it).

PASSING:
--- dovecot.conf
auth_mechanisms = plain login
FAILING:
--- dovecot.conf
auth_mechanisms = plain login anonymous
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.dovecot import DovecotConfig

ID = "MC503"
PROGRAM = "dovecot"
SEVERITY = "warning"
RELAY = False
MESSAGE = "anonymous logins are offered"
HINT = "remove anonymous from auth_mechanisms"


def check(config: DovecotConfig) -> Iterator[tuple[Location, str]]:
    for setting in config.all("auth_mechanisms"):
        if "anonymous" in setting.value.lower().split():
            yield setting.location, ""
