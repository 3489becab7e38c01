"""Postfix relays for a wildcard or a whole top-level domain (relay_domains matches subdomains too).

PASSING:
--- main.cf
relay_domains = example.org, example.net
FAILING:
--- main.cf
relay_domains = example.org, com
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.postfix import PostfixConfig
from mailconf.lint.rules._ranges import tld_or_wildcard

ID = "MC106"
PROGRAM = "postfix"
SEVERITY = "error"
RELAY = True
MESSAGE = "relay_domains is too wide"
HINT = "list each domain you are a backup MX or gateway for, fully"


def wide_domain(name: str) -> bool:
    """A wildcard or a top-level domain; lookup tables, files, unexpanded $names and exclusions are not domains."""
    return ":" not in name and not name.strip().startswith(("$", "/", "!")) and tld_or_wildcard(name)


def check(config: PostfixConfig) -> Iterator[tuple[Location, str]]:
    for item in config.tokens("relay_domains"):
        if wide_domain(item.name):
            yield item.location, f"{item.name} matches every domain below it"
