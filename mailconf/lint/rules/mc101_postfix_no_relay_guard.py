"""Postfix has no relay guard: smtpd refuses to start, or relays for everyone.

PASSING:
--- main.cf
compatibility_level = 3.6
FAILING:
--- main.cf
compatibility_level = 3.6
smtpd_relay_restrictions = permit_mynetworks
smtpd_recipient_restrictions = permit_sasl_authenticated
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.postfix import PostfixConfig
from mailconf.lint.rules._postfix import has_guard, service_label

ID = "MC101"
PROGRAM = "postfix"
SEVERITY = "error"
RELAY = True
MESSAGE = "no relay guard in smtpd_relay_restrictions or smtpd_recipient_restrictions"
HINT = "end smtpd_relay_restrictions with reject_unauth_destination (or defer_unauth_destination)"


def check(config: PostfixConfig) -> Iterator[tuple[Location, str]]:
    for service in config.smtpd_services():
        if not has_guard(config, service):
            where = config.where("smtpd_relay_restrictions", service)
            yield where, f"{service_label(service)}: smtpd exits at start (and would relay for anyone)"
