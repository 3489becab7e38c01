"""Exim relays to every domain, or to a whole top-level domain (relay_to_domains).

PASSING:
--- exim4.conf
domainlist relay_to_domains = example.net : *.example.net
FAILING:
--- exim4.conf
domainlist relay_to_domains = *
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.exim import EximConfig, split_list
from mailconf.lint.rules._exim import resolve

ID = "MC203"
PROGRAM = "exim"
SEVERITY = "error"
RELAY = True
MESSAGE = "relay_to_domains is too wide"
HINT = "list each domain you are a backup MX or gateway for"


def wide(item: str) -> bool:
    item = item.strip().lower()
    return item == "*" or (item.startswith("*") and "." not in item[2:])


def check(config: EximConfig) -> Iterator[tuple[Location, str]]:
    setting = config.lists.get("relay_to_domains")
    if setting is not None:
        for item in resolve(config, split_list(setting.value)):
            if wide(item):
                yield setting.location, f"{item} matches domains you do not serve"
