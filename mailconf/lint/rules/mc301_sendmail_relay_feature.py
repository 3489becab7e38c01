"""Sendmail enables a FEATURE that lets outsiders relay.

PASSING:
--- sendmail.mc
FEATURE(`access_db')dnl
FAILING:
--- sendmail.mc
dnl quoting varies: all three forms count
FEATURE( `relay_based_on_MX')dnl
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.sendmail import SendmailConfig

ID = "MC301"
PROGRAM = "sendmail"
SEVERITY = "error"
RELAY = True
MESSAGE = "a relay FEATURE lets outside clients relay"
HINT = "remove the FEATURE; list clients in access (Connect:ADDR RELAY) or make them log in"
FEATURES = {
    "promiscuous_relay": "anyone relays to anywhere",
    "relay_entire_domain": "any host whose name is in your domain relays (names are the client's to choose)",
    "relay_based_on_MX": "anyone who points an MX record at you can relay through you",
    "relay_local_from": "a forged local sender address is enough to relay",
    "relay_mail_from": "a sender address listed in access is enough to relay",
    "loose_relay_check": "user%domain@yourhost is relayed",
}


def check(config: SendmailConfig) -> Iterator[tuple[Location, str]]:
    for name, call in config.features().items():
        if name in FEATURES:
            yield call.location, f"{name}: {FEATURES[name]}"
