"""Postfix forwards sender-routed addresses (user@remote@site) from untrusted clients.

PASSING:
--- main.cf
allow_untrusted_routing = no
FAILING:
--- main.cf
allow_untrusted_routing = yes
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.postfix import PostfixConfig

ID = "MC108"
PROGRAM = "postfix"
SEVERITY = "warning"
RELAY = True
MESSAGE = "allow_untrusted_routing = yes lets outsiders route mail through relay_domains"
HINT = "remove allow_untrusted_routing (its default is no)"


def check(config: PostfixConfig) -> Iterator[tuple[Location, str]]:
    if config.is_yes("allow_untrusted_routing"):
        yield config.where("allow_untrusted_routing"), ""
