"""Exim rewrites user%domain addresses (percent_hack_domains), or accepts domain literals.

PASSING:
--- exim4.conf
allow_domain_literals = false
FAILING:
--- exim4.conf
percent_hack_domains = *
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.exim import EximConfig

ID = "MC206"
PROGRAM = "exim"
SEVERITY = "warning"
RELAY = True
MESSAGE = "source-routing tricks are honoured"
HINT = "remove percent_hack_domains and allow_domain_literals"


def check(config: EximConfig) -> Iterator[tuple[Location, str]]:
    if config.option("percent_hack_domains").strip():
        yield config.main["percent_hack_domains"].location, "percent_hack_domains is set"
    if config.option("allow_domain_literals").strip().lower() in ("true", "yes"):
        yield config.main["allow_domain_literals"].location, "allow_domain_literals = true"
