"""SPF (RFC 7208): parse a record, count its DNS lookups, and evaluate check_host() for one address."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass, field

from mailconf.dns.lookup import DnsFailure, Lookup

MAX_LOOKUPS = 10  # RFC 7208 4.6.4: more is a permerror at every receiver
LOOKUP_KINDS = {"include", "a", "mx", "ptr", "exists"}
RESULTS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}

_MACRO = re.compile(r"%(\{[slodiphcrtv]\d*r?[.+,/_=-]*\}|[%_-])")
_DOMAIN_SPEC = re.compile(r"[A-Za-z0-9_.-]+")
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)")
_MECHANISM = re.compile(r"([+?~-]?)([A-Za-z0-9]+)(?::([^/]*))?(?:/(\d+))?(?://(\d+))?")


@dataclass(frozen=True)
class Mechanism:
    qualifier: str  # + - ~ ?
    kind: str  # all include a mx ptr ip4 ip6 exists
    target: str | None = None  # domain-spec or network
    cidr4: int | None = None
    cidr6: int | None = None

    @property
    def has_macro(self) -> bool:
        return self.target is not None and "%" in self.target


@dataclass(frozen=True)
class SpfRecord:
    mechanisms: tuple[Mechanism, ...]
    redirect: str | None = None


def is_spf(text: str) -> bool:
    return text.lower() == "v=spf1" or text.lower().startswith("v=spf1 ")


def parse_spf(text: str) -> SpfRecord:
    """The record's terms; ValueError names the first term a receiver would reject (permerror)."""
    if not text.isascii() or not text.isprintable():
        raise ValueError("an SPF record holds printable ASCII only")
    words = text.split(" ")
    if words[0].lower() != "v=spf1":
        raise ValueError("an SPF record starts with `v=spf1`")
    mechanisms: list[Mechanism] = []
    modifiers: dict[str, str] = {}
    for word in filter(None, words[1:]):
        modifier = _MODIFIER.fullmatch(word)
        if modifier:
            name = modifier[1].lower()
            if name in modifiers and name in ("redirect", "exp"):
                raise ValueError(f"`{name}=` appears twice")
            modifiers[name] = _domain_spec(modifier[2], word)
            continue
        mechanisms.append(_mechanism(word))
    redirect = modifiers.get("redirect")
    return SpfRecord(tuple(mechanisms), None if any(m.kind == "all" for m in mechanisms) else redirect)


def _mechanism(word: str) -> Mechanism:
    match = _MECHANISM.fullmatch(word)
    if not match:
        raise ValueError(f"`{word}` is not an SPF mechanism")
    qualifier, kind, target, cidr4, cidr6 = match[1] or "+", match[2].lower(), match[3], match[4], match[5]
    if kind in ("ip4", "ip6"):
        return _network(qualifier, kind, target, cidr4, cidr6, word)
    if kind not in LOOKUP_KINDS | {"all"}:
        raise ValueError(f"`{word}`: unknown mechanism {kind!r}")
    takes_target = kind != "all"
    needs_target = kind in ("include", "exists")
    takes_cidr = kind in ("a", "mx")
    if (target is None and needs_target) or (target is not None and not takes_target):
        raise ValueError(f"`{word}`: {kind} {'needs' if needs_target else 'takes no'} `:domain`")
    if (cidr4 or cidr6) and not takes_cidr:
        raise ValueError(f"`{word}`: {kind} takes no /prefix")
    c4, c6 = _prefix(cidr4, 32, word), _prefix(cidr6, 128, word)
    return Mechanism(qualifier, kind, None if target is None else _domain_spec(target, word), c4, c6)


def _network(qualifier: str, kind: str, target: str | None, cidr: str | None, extra: str | None, word: str):
    if not target or extra is not None:
        raise ValueError(f"`{word}`: write {kind}:ADDRESS[/PREFIX]")
    version = 4 if kind == "ip4" else 6
    try:
        address = ipaddress.ip_address(target)
    except ValueError:
        raise ValueError(f"`{word}`: {target!r} is not an IPv{version} address") from None
    if address.version != version:
        raise ValueError(f"`{word}`: {target!r} is not an IPv{version} address")
    prefix = _prefix(cidr, address.max_prefixlen, word)
    return Mechanism(qualifier, kind, target, *((prefix, None) if version == 4 else (None, prefix)))


def _prefix(text: str | None, limit: int, word: str) -> int | None:
    if text is None:
        return None
    if (text.startswith("0") and text != "0") or int(text) > limit:
        raise ValueError(f"`{word}`: /{text} is not a prefix length (0-{limit})")
    return int(text)


def _domain_spec(spec: str, word: str) -> str:
    plain = _MACRO.sub("x", spec)
    if "%" in plain or not _DOMAIN_SPEC.fullmatch(plain) or ".." in plain or plain.startswith("."):
        raise ValueError(f"`{word}`: {spec!r} is not a domain")
    return spec


@dataclass
class Evaluation:
    """check_host() state: lookups spent and what could not be evaluated."""

    lookups: int = 0
    notes: set[str] = field(default_factory=set)


async def spf_record(resolver: Lookup, domain: str) -> str | None:
    """The one SPF record of `domain`; ValueError when there are several (permerror)."""
    records = [t for t in await resolver.txt(domain) if is_spf(t)]
    if len(records) > 1:
        raise ValueError(f"{domain} has {len(records)} SPF records; receivers reject them all")
    return records[0] if records else None


async def count_lookups(resolver: Lookup, domain: str, seen: frozenset[str] = frozenset()) -> int:
    """DNS lookups the record of `domain` can cost, following include and redirect (the worst case)."""
    if domain in seen or len(seen) > 2 * MAX_LOOKUPS:
        return MAX_LOOKUPS + 1  # a loop never ends: over the limit
    try:
        text = await spf_record(resolver, domain)
        record = parse_spf(text) if text else None
    except ValueError:
        return 0
    if record is None:
        return 0
    nested = [m.target for m in record.mechanisms if m.kind == "include" and m.target and not m.has_macro]
    if record.redirect and "%" not in record.redirect:
        nested.append(record.redirect)
    counts = await asyncio.gather(*(count_lookups(resolver, d.lower(), seen | {domain}) for d in nested))
    own = sum(m.kind in LOOKUP_KINDS for m in record.mechanisms) + bool(record.redirect)
    return own + sum(counts)


async def check_host(resolver: Lookup, ip: str, domain: str, state: Evaluation | None = None) -> str:
    """RFC 7208 check_host(): pass, fail, softfail, neutral, none, permerror or temperror."""
    state = state or Evaluation()
    try:
        text = await spf_record(resolver, domain)
        if text is None:
            return "none"
        record = parse_spf(text)
        for mechanism in record.mechanisms:
            if mechanism.kind in LOOKUP_KINDS:
                state.lookups += 1
                if state.lookups > MAX_LOOKUPS:
                    return "permerror"
            matched = await _matches(resolver, ip, domain, mechanism, state)
            if isinstance(matched, str):
                return matched
            if matched:
                return RESULTS[mechanism.qualifier]
        if record.redirect:
            state.lookups += 1
            if state.lookups > MAX_LOOKUPS or "%" in record.redirect:
                return "permerror"
            result = await check_host(resolver, ip, record.redirect.lower(), state)
            return "permerror" if result == "none" else result
        return "neutral"
    except ValueError:
        return "permerror"
    except DnsFailure:
        return "temperror"


async def _matches(resolver: Lookup, ip: str, domain: str, m: Mechanism, state: Evaluation) -> bool | str:
    """Whether `m` matches `ip`; a result string when evaluation must stop (an include's error)."""
    address = ipaddress.ip_address(ip)
    if m.kind == "all":
        return True
    if m.has_macro:
        state.notes.add(f"`{m.kind}:{m.target}` uses macros, which this check does not expand")
        return False
    target = (m.target or domain).lower()
    if m.kind in ("ip4", "ip6"):
        prefix = m.cidr4 if m.kind == "ip4" else m.cidr6
        network = ipaddress.ip_network(m.target if prefix is None else f"{m.target}/{prefix}", strict=False)
        return address.version == network.version and address in network
    if m.kind == "include":
        result = await check_host(resolver, ip, target, state)
        if result in ("permerror", "temperror"):
            return result
        return "permerror" if result == "none" else result == "pass"
    if m.kind == "ptr":
        state.notes.add("the `ptr` mechanism is slow and deprecated (RFC 7208 5.5): use ip4/ip6 or a")
        return False
    if m.kind == "exists":
        return bool(await resolver.addresses(target, 4))
    hosts = await resolver.mx(target) if m.kind == "mx" else [target]
    prefix = m.cidr4 if address.version == 4 else m.cidr6
    for host in hosts:
        for found in await resolver.addresses(host, address.version):
            network = ipaddress.ip_network(f"{found}/{prefix if prefix is not None else address.max_prefixlen}", False)
            if address in network:
                return True
    return False
