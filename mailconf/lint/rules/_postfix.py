"""How an outside, unauthenticated client sending to a foreign domain fares in Postfix's restriction lists."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mailconf.errors import Location
from mailconf.lint.core import Setting
from mailconf.lint.readers.postfix import PostfixConfig, Service
from mailconf.lint.rules._ranges import too_wide

GUARDS = {"reject_unauth_destination", "defer_unauth_destination", "reject", "defer", "defer_if_permit"}
# Permits that depend on what the client brings: a certificate from any CA the server trusts (postconf(5): "clients
# with a third-party certificate would also be allowed to relay").
MAYBE_PERMITS = {"permit_tls_all_clientcerts"}
LISTS = ("smtpd_relay_restrictions", "smtpd_recipient_restrictions")


@dataclass(frozen=True)
class ListVerdict:
    """`open`: the list lets the client through (a permit, or no guard); `maybe`: a guard stops it, unless an
    access map, class or client certificate before it answers OK; `closed`: a guard stops it."""

    state: str
    item: Setting | None  # the permit, access check or guard that decided


def judge(config: PostfixConfig, name: str, service: Service | None) -> ListVerdict:
    classes = set(config.value("smtpd_restriction_classes", service).replace(",", " ").split())
    maybe: Setting | None = None
    only_logs = False
    for item in config.tokens(name, service):
        word = item.name
        if ":" in word or word.startswith(("/", "{")):
            continue  # a lookup table: the argument of the item before it
        if word == "warn_if_reject":
            only_logs = True
            continue
        if word in GUARDS and not only_logs:
            return ListVerdict("maybe" if maybe else "closed", maybe or item)
        if word == "permit" or (word == "permit_mx_backup" and not config.value("permit_mx_backup_networks", service)):
            return ListVerdict("open", item)
        if maybe is None and (word.startswith("check_") or word in classes or word in MAYBE_PERMITS):
            maybe = item
        only_logs = False
    return ListVerdict("open", None)


def relay_verdicts(config: PostfixConfig, service: Service | None) -> tuple[ListVerdict, ListVerdict]:
    relay, recipient = (judge(config, name, service) for name in LISTS)
    return relay, recipient


def has_guard(config: PostfixConfig, service: Service | None) -> bool:
    return any(item.name in GUARDS for name in LISTS for item in config.tokens(name, service))


def service_label(service: Service | None) -> str:
    return f"service {service.name!r}" if service else "main.cf"


def mynetworks_too_wide(
    config: PostfixConfig, widths: set[str], style: str, why: str
) -> Iterator[tuple[Location, str]]:
    """mynetworks entries as wide as `widths`, in main.cf or a smtpd service's `-o` override; without mynetworks,
    the default mynetworks_style when it is `style` (`why` says what that style trusts)."""
    for service in [None, *config.smtpd_services()]:  # main.cf, and each smtpd (lint reports a finding once)
        if config.get("mynetworks", service) is None:
            if config.value("mynetworks_style", service) == style:
                yield config.where("mynetworks_style", service), f"mynetworks_style = {style} {why}"
            continue
        items = config.tokens("mynetworks", service)
        yield from too_wide([(item.name, item.location) for item in items if not item.name.startswith("!")], widths)
