"""Postfix: an access map or restriction class before the relay guard can return OK and open relaying.

PASSING:
--- main.cf
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination, check_client_access hash:/etc/postfix/clients
FAILING:
--- main.cf
smtpd_relay_restrictions = permit_mynetworks, check_client_access hash:/etc/postfix/clients, reject_unauth_destination
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.postfix import PostfixConfig
from mailconf.lint.rules._postfix import LISTS, relay_verdicts, service_label

ID = "MC103"
PROGRAM = "postfix"
SEVERITY = "warning"
RELAY = True
MESSAGE = "an access check before the relay guard may permit relaying"
HINT = "move check_*_access after reject_unauth_destination, or make sure the map never answers OK to outsiders"


def check(config: PostfixConfig) -> Iterator[tuple[Location, str]]:
    for service in config.smtpd_services():
        verdicts = relay_verdicts(config, service)
        states = {v.state for v in verdicts}
        if "closed" in states or states == {"open"}:
            continue
        for name, verdict in zip(LISTS, verdicts, strict=True):
            if verdict.state == "maybe" and verdict.item is not None:
                yield verdict.item.location, f"{service_label(service)}: `{verdict.item.name}` in {name}"
