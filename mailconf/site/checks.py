"""Checks that span several parts of a site: duplicates, what aliases point at, alias loops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mailconf.site.model import Site

Finding = tuple[tuple[Any, ...], str, str]  # (path in the site, message, hint)


def check_site(site: Site) -> Iterator[Finding]:
    yield from _no_passwords_in_clear(site)
    yield from _duplicates(site)
    yield from _role_addresses_by_key(site)
    yield from _users_match_domains(site)
    yield from _aliases_resolve(site)
    yield from _alias_loops(site)
    yield from _fetchmail_has_smtp(site)


def _no_passwords_in_clear(site: Site) -> Iterator[Finding]:
    ports = site.host.ports
    if not site.tls.enabled and any((ports.submission, ports.smtps, ports.pop3, ports.pop3s, ports.imap, ports.imaps)):
        yield (
            ("tls", "enabled"),
            "TLS is off but password logins are on (submission, POP3 or IMAP): passwords would cross the network in clear",
            "keep `tls.enabled: true`, or turn those ports off (`false`)",
        )


def _duplicates(site: Site) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    for i, domain in enumerate(site.domains):
        if domain.name in seen:
            yield ("domains", i, "name"), f"domain {domain.name} is listed twice", "list each domain once"
        seen[domain.name] = i
    for i, name in enumerate(site.relay_domains):
        if name in seen:
            yield ("relay_domains", i), f"{name} is both a domain of ours and a relay domain", "keep one"
    users: set[str] = set()
    for i, user in enumerate(site.users):
        if user.key in users:
            yield ("users", i), f"user {user.key} is defined twice", "define each user once"
        users.add(user.key)
    for name in site.aliases:
        if name in users:
            yield ("aliases", name), f"{name} is both a user and an alias", "rename the alias or drop the user"


def _role_addresses_by_key(site: Site) -> Iterator[Finding]:
    """postmaster and abuse exist in every domain, local and virtual, from the site's own keys: a bare alias of
    that name would reach the local domains only, and leave the others (and root's mail) with the default."""
    for name in ("postmaster", "abuse"):
        if name in site.aliases:
            yield ("aliases", name), f"{name} is set as an alias", f"write `{name}: TARGET` at the top level instead"


def _users_match_domains(site: Site) -> Iterator[Finding]:
    virtual = set(site.virtual_domains)
    for i, user in enumerate(site.users):
        if user.address and user.address.partition("@")[2] not in virtual:
            yield (
                ("users", i),
                f"{user.address} is not in a virtual domain",
                "virtual users belong to a domain of `type: virtual`; local users are unix names (`name: joe`)",
            )
        if user.name and not site.local_domains:
            yield ("users", i), f"local user {user.name} but no local domain", "add a domain of `type: local`"
    for name in site.aliases:
        domain = name.partition("@")[2]
        if domain and domain not in virtual and domain not in site.local_domains:
            yield ("aliases", name), f"alias {name} is not in one of our domains", "aliases are for our domains"
        if not domain and not site.local_domains:
            yield ("aliases", name), f"alias {name} has no domain", "write the full address (name@domain)"


class _Directory:
    """Which addresses exist on this site, so alias targets can be resolved."""

    def __init__(self, site: Site):
        self.local_domains = set(site.local_domains)
        self.virtual_domains = set(site.virtual_domains)
        self.relay_domains = set(site.relay_domains)
        self.catch_all = {d.name for d in site.domains if d.catch_all}
        self.local_names = {u.name for u in site.local_users} | {"root", "postmaster", "abuse"}
        self.local_names |= {name for name in site.aliases if "@" not in name}
        self.addresses = {u.address for u in site.virtual_users} | {n for n in site.aliases if "@" in n}
        for domain in site.domains:
            self.addresses |= {f"postmaster@{domain.name}", f"abuse@{domain.name}"}

    def exists(self, target: str) -> bool:
        local, at, domain = target.rpartition("@")
        if not at:
            return target in self.local_names
        if target in self.addresses or domain in self.catch_all:
            return True
        if domain in self.local_domains:
            return local in self.local_names
        return domain not in self.virtual_domains  # relay domains and the rest of the world: outside

    def node(self, target: str) -> str:
        """Alias-graph node: addresses in local domains are the bare local part unless aliased on their own."""
        local, _, domain = target.rpartition("@")
        if domain in self.local_domains and target not in self.addresses:
            return local
        return target


def _aliases_resolve(site: Site) -> Iterator[Finding]:
    directory = _Directory(site)
    hint = "point it at a user, another alias, or an address outside our domains"
    for name, targets in site.aliases.items():
        for j, target in enumerate(targets):
            if not directory.exists(target):
                yield ("aliases", name, j), f"alias {name} points at {target}, which does not exist here", hint
    for i, domain in enumerate(site.domains):
        if domain.catch_all and not directory.exists(domain.catch_all):
            yield ("domains", i, "catch_all"), f"catch-all target {domain.catch_all} does not exist here", hint
    for field in ("postmaster", "abuse"):
        target = getattr(site, field)
        if target and not directory.exists(target):
            yield (field,), f"{field} target {target} does not exist here", hint


def _alias_loops(site: Site) -> Iterator[Finding]:
    directory = _Directory(site)
    graph: dict[str, list[str]] = {}
    for name, targets in site.aliases.items():
        graph.setdefault(directory.node(name), []).extend(directory.node(t) for t in targets)
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        # Iterative depth-first search; `path` holds the chain being explored.
        path, on_path, stack = [start], {start}, [iter(graph[start])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if nxt in on_path:
                loop = " -> ".join([*path[path.index(nxt) :], nxt])
                yield (
                    ("aliases", _alias_key(site, start)),
                    f"alias loop: {loop}",
                    "break the loop: one alias must end at a mailbox",
                )
                return
            if nxt in graph and nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(graph[nxt]))


def _alias_key(site: Site, node: str) -> str:
    return node if node in site.aliases else next((n for n in site.aliases if n.startswith(node + "@")), node)


def _fetchmail_has_smtp(site: Site) -> Iterator[Finding]:
    if site.fetchmail and site.fetchmail.mailboxes and site.host.ports.smtp is None:
        yield (
            ("host", "ports", "smtp"),
            "fetchmail hands the mail it collects to the MTA over SMTP, but the SMTP port is off",
            "turn `smtp` on (fetchmail connects to 127.0.0.1 or ::1 when listed in `host.listen`), "
            "or remove the fetchmail mailboxes",
        )
