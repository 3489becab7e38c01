"""Postfix trusts a wide private range, or the whole subnet of the host.

PASSING:
--- main.cf
compatibility_level = 3.6
mynetworks = 127.0.0.0/8 10.1.2.0/24
FAILING:
--- main.cf
compatibility_level = 3.6
mynetworks = 127.0.0.0/8 10.0.0.0/8
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.postfix import PostfixConfig
from mailconf.lint.rules._postfix import mynetworks_too_wide

ID = "MC105"
PROGRAM = "postfix"
SEVERITY = "warning"
RELAY = True
MESSAGE = "mynetworks trusts more hosts than it probably should"
HINT = "list the networks of your own clients only, or set mynetworks_style = host"


def check(config: PostfixConfig) -> Iterator[tuple[Location, str]]:
    yield from mynetworks_too_wide(config, {"private"}, "subnet", "trusts every host on the host's subnet")
