"""Postfix lets outside clients relay: a permit is reached before the relay guard.

PASSING:
--- main.cf
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
--- master.cf
smtp      inet  n       -       y       -       -       smtpd
FAILING:
--- main.cf
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
--- master.cf
smtp      inet  n       -       y       -       -       smtpd
  # an override that undoes main.cf
  -o smtpd_relay_restrictions=permit,reject_unauth_destination
"""

from __future__ import annotations

from collections.abc import Iterator

from mailconf.errors import Location
from mailconf.lint.readers.postfix import PostfixConfig
from mailconf.lint.rules._postfix import LISTS, has_guard, relay_verdicts, service_label

ID = "MC102"
PROGRAM = "postfix"
SEVERITY = "error"
RELAY = True
MESSAGE = "open relay: outside clients pass both restriction lists"
HINT = "put reject_unauth_destination before any permit, check_*_access or permit_mx_backup in the list"


def check(config: PostfixConfig) -> Iterator[tuple[Location, str]]:
    for service in config.smtpd_services():
        if not has_guard(config, service):
            continue  # MC101
        verdicts = relay_verdicts(config, service)
        if all(v.state == "open" for v in verdicts):
            decided = [(name, v.item) for name, v in zip(LISTS, verdicts, strict=True) if v.item is not None]
            if decided:
                name, item = decided[0]
                yield item.location, f"{service_label(service)}: `{item.name}` in {name} comes before the guard"
            else:
                where = config.where("smtpd_relay_restrictions", service)
                yield where, f"{service_label(service)}: the relay guard only logs (warn_if_reject)"
