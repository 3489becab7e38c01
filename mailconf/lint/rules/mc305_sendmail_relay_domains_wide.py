"""Sendmail relays to (or for) a whole top-level domain: relay-domains, RELAY_DOMAIN or a To:/domain RELAY entry.

PASSING:
--- sendmail.mc
FEATURE(`access_db')dnl
RELAY_DOMAIN(`example.net')dnl
--- relay-domains
example.org
FAILING:
--- sendmail.mc
FEATURE(`access_db')dnl
--- relay-domains
example.org
com
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.sendmail import SendmailConfig
from mailconf.lint.rules._sendmail import relay_entries, wide_domain

ID = "MC305"
PROGRAM = "sendmail"
SEVERITY = "error"
RELAY = True
MESSAGE = "relaying is allowed for a whole top-level domain"
HINT = "list full domain names (domain entries also match every subdomain)"


def check(config: SendmailConfig) -> Iterator[tuple[Location, str]]:
    for entry in config.files.get("relay-domains", []):
        if wide_domain(entry.name):
            yield entry.location, f"{entry.name} in relay-domains"
    for call in config.calls:
        if call.name == "RELAY_DOMAIN":
            for name in call.arg(0).split():
                if wide_domain(name):
                    yield call.location, f"RELAY_DOMAIN({name})"
    for tag, key, entry in relay_entries(config):
        if tag in ("to", "") and wide_domain(key):  # Connect: names match the client's host name
            yield entry.location, f"{entry.name} RELAY"
