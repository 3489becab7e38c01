"""Exim's rcpt ACL does not refuse local parts holding @ % ! / | (the percent hack and source routes get through).

PASSING:
--- exim4.conf
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  deny    domains = !+local_domains
          local_parts = ^[./|] : ^.*[@%!`#&?] : ^.*/\\.\\./
  require domains = +local_domains : +relay_to_domains
  accept
FAILING:
--- exim4.conf
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  require domains = +local_domains : +relay_to_domains
  accept
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.exim import EximConfig
from mailconf.lint.rules._exim import rcpt_acl

ID = "MC207"
PROGRAM = "exim"
SEVERITY = "warning"
RELAY = True
MESSAGE = "no `deny local_parts = ^.*[@%!/|]` in the rcpt ACL"
HINT = "keep configure.default's deny of restricted characters in local parts"


def check(config: EximConfig) -> Iterator[tuple[Location, str]]:
    found = rcpt_acl(config)
    if found is None:
        return
    name, statements = found
    refused = any(
        s.verb in ("deny", "drop") and any("%" in c.value and "@" in c.value for c in s.get("local_parts"))
        for s in statements
    )
    if not refused:
        yield (statements[0].location if statements else config.main["acl_smtp_rcpt"].location), f"in {name}"
