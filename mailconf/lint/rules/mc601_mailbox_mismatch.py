"""The MTA delivers where Dovecot does not look (mbox vs Maildir, or another path).

PASSING:
--- postfix/main.cf
home_mailbox = Maildir/
--- dovecot/dovecot.conf
mail_location = maildir:~/Maildir
FAILING:
--- postfix/main.cf
mail_spool_directory = /var/mail
--- dovecot/dovecot.conf
mail_location = maildir:~/Maildir
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mailconf.errors import Location

ID = "MC601"
PROGRAM = "site"
SEVERITY = "error"
RELAY = False
MESSAGE = "users will not see their mail"
HINT = "make the MTA's mailbox (home_mailbox, defaultdelivery) and Dovecot's mail_location name the same place"


def check(configs: dict[str, list[Any]]) -> Iterator[tuple[Location, str]]:
    readers = [c.delivery() for c in configs.get("dovecot", [])]
    for program, found in configs.items():
        for config in found if program != "dovecot" else []:
            delivers = config.delivery() if hasattr(config, "delivery") else None
            for reads in readers:
                if delivers and reads and (delivers.format, delivers.path) != (reads.format, reads.path):
                    yield (
                        delivers.location,
                        (
                            f"{program} delivers to {delivers.format} {delivers.path}, Dovecot reads "
                            f"{reads.format} {reads.path} ({reads.location})"
                        ),
                    )
