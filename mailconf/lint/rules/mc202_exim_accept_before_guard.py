"""Exim accepts foreign recipients from any unauthenticated host before the relay guard.

PASSING:
--- exim4.conf
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  accept  hosts = :
  accept  authenticated = *
  require message = relay not permitted
          domains = +local_domains : +relay_to_domains
  accept
FAILING:
--- exim4.conf
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  accept  hosts = 0.0.0.0/0
  require message = relay not permitted
          domains = +local_domains : +relay_to_domains
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.exim import EximConfig
from mailconf.lint.rules._exim import is_guard, no_barrier, rcpt_acl

ID = "MC202"
PROGRAM = "exim"
SEVERITY = "error"
RELAY = True
MESSAGE = "open relay: an `accept` before the relay guard matches any outside client"
HINT = "put `require domains = +local_domains : +relay_to_domains` before accepts that any host can meet"


def check(config: EximConfig) -> Iterator[tuple[Location, str]]:
    if config.option("acl_smtp_rcpt").strip() == "accept":
        yield config.main["acl_smtp_rcpt"].location, "acl_smtp_rcpt = accept"
        return
    found = rcpt_acl(config)
    if found is None:
        return  # no rcpt ACL: Exim refuses every recipient
    name, statements = found
    for statement in statements:
        if is_guard(config, statement):
            return
        if statement.verb == "accept" and no_barrier(config, statement):
            yield statement.location, f"in {name}"
            return
