"""Derived views of a site that every backend needs, computed once here instead of in four backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailconf.errors import Location, MailconfError, Problem
from mailconf.site.model import Site
from mailconf.site.types import CONTROL_CHARACTER

if TYPE_CHECKING:
    from mailconf.site import LoadedSite


def system_aliases(site: Site) -> dict[str, list[str]]:
    """Aliases keyed by local part, valid in every local domain (the /etc/aliases kind)."""
    aliases: dict[str, list[str]] = {
        "postmaster": [site.postmaster_target],
        "abuse": [site.abuse_target],
        "mailer-daemon": ["postmaster"],
    }
    if site.postmaster_target != "root":
        aliases["root"] = [site.postmaster_target]
    for name, targets in site.aliases.items():
        if "@" not in name:
            aliases[name] = list(targets)
    return aliases


def address_aliases(site: Site) -> dict[str, list[str]]:
    """Aliases keyed by full address: those the site names, plus postmaster@ and abuse@ every virtual domain."""
    aliases: dict[str, list[str]] = {}
    for domain in site.virtual_domains:
        aliases[f"postmaster@{domain}"] = [site.postmaster_target]
        aliases[f"abuse@{domain}"] = [site.abuse_target]
    for name, targets in site.aliases.items():
        if "@" in name:
            aliases[name] = list(targets)
    return aliases


def catch_alls(site: Site) -> dict[str, str]:
    return {d.name: d.catch_all for d in site.domains if d.catch_all}


def addresses_by_domain(site: Site) -> dict[str, list[str]]:
    """Every address that exists in each domain (mailboxes and aliases), e.g. to shield them from a catch-all."""
    found: dict[str, set[str]] = {d.name: set() for d in site.domains}
    local_names = [u.name for u in site.local_users if u.name] + list(system_aliases(site))
    for domain in site.local_domains:
        found[domain].update(f"{name}@{domain}" for name in local_names)
    for address in [u.address for u in site.virtual_users if u.address] + list(address_aliases(site)):
        found[address.rpartition("@")[2]].add(address)
    return {domain: sorted(addresses) for domain, addresses in found.items()}


def mailbox_path(site: Site, address: str) -> str:
    """Where a virtual mailbox lives relative to mailbox.virtual_root: DOMAIN/USER."""
    local, _, domain = address.rpartition("@")
    return f"{domain}/{local}"


def smarthost_login(loaded: LoadedSite) -> tuple[str, str] | None:
    """The smarthost's (username, password) from the site's 0600 credentials file, or None without one."""
    smarthost = loaded.site.smarthost
    if smarthost is None or smarthost.credentials_file is None:
        return None
    text = loaded.read_secret(smarthost.credentials_file).strip("\n")
    user, colon, password = text.partition(":")
    where = Location(str(loaded.path.parent / smarthost.credentials_file), 1, 1)
    if not colon or not user or not password or "\n" in text or any(c.isspace() for c in user):
        raise MailconfError([Problem(where, "the credentials file must hold one line: username:password")])
    if CONTROL_CHARACTER.search(password):
        raise MailconfError([Problem(where, "the password contains a control character")])
    return user, password
