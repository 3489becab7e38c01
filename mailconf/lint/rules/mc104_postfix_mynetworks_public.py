"""Postfix trusts (lets relay) everyone or a public range wider than /24 or /48.

PASSING:
--- main.cf
mynetworks = 127.0.0.0/8 [::1]/128 192.168.10.0/24 198.51.100.0/28
FAILING:
--- main.cf
mynetworks = 127.0.0.0/8,
    # the whole Internet, by mistake:
    0.0.0.0/0
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.postfix import PostfixConfig
from mailconf.lint.rules._postfix import mynetworks_too_wide

ID = "MC104"
PROGRAM = "postfix"
SEVERITY = "error"
RELAY = True
MESSAGE = "mynetworks lets the Internet relay"
HINT = "list your own clients' networks (public ones at most /24 or /48), or have them log in on submission"


def check(config: PostfixConfig) -> Iterator[tuple[Location, str]]:
    yield from mynetworks_too_wide(config, {"everyone", "public"}, "class", "trusts the whole address class")
