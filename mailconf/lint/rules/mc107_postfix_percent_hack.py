"""Postfix rewrites user%domain and bang paths on a host that forwards to a hub.

PASSING:
--- main.cf
relayhost = [hub.example.org]
allow_percent_hack = no
swap_bangpath = no
FAILING:
--- main.cf
relayhost = [hub.example.org]
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.postfix import PostfixConfig

ID = "MC107"
PROGRAM = "postfix"
SEVERITY = "warning"
RELAY = True
MESSAGE = "address rewriting can route mail through the hub"
HINT = "set allow_percent_hack = no and swap_bangpath = no"


def check(config: PostfixConfig) -> Iterator[tuple[Location, str]]:
    if not config.value("relayhost"):
        return
    for name in ("allow_percent_hack", "swap_bangpath"):
        if config.is_yes(name):
            yield config.where(name), f"{name} = yes with relayhost set"
