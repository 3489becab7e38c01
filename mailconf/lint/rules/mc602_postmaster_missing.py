"""The MTA's aliases give no postmaster (RFC 5321 requires the address; mail to it would bounce).

PASSING:
--- postfix/main.cf
alias_maps = hash:/etc/aliases
--- aliases
postmaster: root
FAILING:
--- postfix/main.cf
alias_maps = hash:/etc/aliases
--- aliases
root: joe
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mailconf.errors import Location

ID = "MC602"
PROGRAM = "site"
SEVERITY = "warning"
RELAY = False
MESSAGE = "no postmaster alias"
HINT = "add `postmaster: root` (or a person) to the aliases (qmail: alias/.qmail-postmaster)"


def check(configs: dict[str, list[Any]]) -> Iterator[tuple[Location, str]]:
    for program, found in configs.items():
        for config in found:
            aliases = getattr(config, "aliases", None)
            if aliases is not None and "postmaster" not in aliases.names:
                yield Location(aliases.file), program
