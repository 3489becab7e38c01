"""Sendmail accepts senders whose domain does not resolve, or unqualified senders.

PASSING:
--- sendmail.mc
FEATURE(`use_cw_file')dnl
FAILING:
--- sendmail.mc
FEATURE(accept_unresolvable_domains)dnl
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.sendmail import SendmailConfig

ID = "MC302"
PROGRAM = "sendmail"
SEVERITY = "warning"
RELAY = False
MESSAGE = "sender checks are weakened"
HINT = "remove the FEATURE"
FEATURES = ("accept_unresolvable_domains", "accept_unqualified_senders")


def check(config: SendmailConfig) -> Iterator[tuple[Location, str]]:
    for name, call in config.features().items():
        if name in FEATURES:
            yield call.location, name
