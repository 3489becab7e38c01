"""Exim's rcpt ACL as an outside, unauthenticated client sending to a foreign domain meets it."""

from __future__ import annotations

from mailconf.errors import Location
from mailconf.lint.core import range_width
from mailconf.lint.readers.exim import EximConfig, Statement, split_list

# Modifiers and conditions an outsider satisfies at will (or that do not decide anything).
NO_BARRIER = {
    "message", "log_message", "logwrite", "control", "set", "delay", "add_header", "remove_header", "continue",
    "endpass", "udpsend", "queue", "debug", "local_parts", "senders", "verify", "encrypted",
}  # fmt: skip


def resolve(config: EximConfig, items: list[str], depth: int = 0) -> list[str]:
    """List items with `+name` references to named lists replaced by their items."""
    resolved = []
    for item in items:
        named = config.lists.get(item.lstrip("+")) if item.startswith("+") else None
        if named is not None and depth < 8:
            resolved += resolve(config, split_list(named.value), depth + 1)
        else:
            resolved.append(item)
    return resolved


def everyone(config: EximConfig, text: str) -> bool:
    """A host list that matches any client: `*`, 0.0.0.0/0, ::/0, public ranges too wide, or a negation."""
    items = resolve(config, split_list(text))
    return bool(items) and (items[0].startswith("!") or any(
        i == "*" or range_width(i) in ("everyone", "public") for i in items
    ))  # fmt: skip


def foreign_domains(config: EximConfig, text: str) -> bool:
    """A domain list that matches domains we do not serve: `*`, or a list that starts with a negation."""
    items = resolve(config, split_list(text))
    return bool(items) and (items[0].startswith("!") or "*" in items)


def no_barrier(config: EximConfig, statement: Statement) -> bool:
    """True when an outsider sending to a foreign domain meets every condition of the statement."""
    for condition in statement.conditions:
        name = condition.name
        if name in NO_BARRIER or name.startswith("!"):
            continue
        if name == "hosts" and everyone(config, condition.value):
            continue
        if name == "domains" and foreign_domains(config, condition.value):
            continue
        if name == "condition" and condition.value.strip().lower() in ("true", "yes", "1"):
            continue
        return False
    return True


def is_guard(config: EximConfig, statement: Statement) -> bool:
    """`require domains = +local_domains : +relay_to_domains`, `deny domains = !+local_domains ...`, or an
    unconditional deny/drop."""
    if statement.verb not in ("require", "deny", "drop"):
        return False
    deciding = [c for c in statement.conditions if c.name not in NO_BARRIER]
    if not deciding:
        return statement.verb != "require"
    domains = [c for c in deciding if c.name == "domains"]
    others = [c for c in deciding if c.name != "domains" and not (c.name == "hosts" and c.value.startswith("!"))]
    if len(domains) != 1 or others:
        return False
    negated = domains[0].value.lstrip().startswith("!")
    return negated if statement.verb != "require" else not foreign_domains(config, domains[0].value)


def rcpt_acl(config: EximConfig) -> tuple[str, list[Statement]] | None:
    name = config.option("acl_smtp_rcpt").strip()
    return (name, config.acls[name]) if name in config.acls else None


def relay_from_hosts_grants(config: EximConfig) -> list[tuple[str, Location]]:
    """(host item, location) for every item of hostlist relay_from_hosts (named lists resolved; `*` is everyone)."""
    setting = config.lists.get("relay_from_hosts")
    if setting is None:
        return []
    items = resolve(config, split_list(setting.value))
    return [("0.0.0.0/0" if item == "*" else item, setting.location) for item in items if not item.startswith("!")]
