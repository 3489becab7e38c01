"""Live DNS checks: does the world see what `dns-records` says to publish? Each check is one async function
that returns findings (ok, warning or error, each with a one-line fix); all queries run concurrently."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from functools import wraps
from typing import Literal

from mailconf.dns import spf
from mailconf.dns.dkim import dkim_text, key_files, public_key, published_key
from mailconf.dns.lookup import DnsFailure, DnsTimeout, Lookup
from mailconf.dns.records import dmarc_text, host_addresses, mta_sts_policy, mta_sts_text, spf_text, tls_rpt_text
from mailconf.site import LoadedSite

Severity = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str  # the domain, host or address checked
    severity: Severity
    message: str
    fix: str = ""


@dataclass
class Context:
    loaded: LoadedSite
    lookup: Lookup

    @property
    def host(self) -> str:
        return self.loaded.site.host.name


Check = Callable[..., Awaitable[list[Finding]]]


def check(name: str) -> Callable[[Check], Check]:
    """Name a check; a DNS failure inside it becomes its error finding instead of stopping the others."""

    def wrap(function: Check) -> Check:
        @wraps(function)
        async def run(ctx: Context, *subject: str) -> list[Finding]:
            try:
                return await function(ctx, *subject)
            except DnsFailure as exc:
                where = subject[0] if subject else ctx.host
                return [Finding(name, where, "error", f"no answer: {exc}", "check that the name server serves it")]

        return run

    return wrap


def _publish(name: str, rtype: str, data: str) -> str:
    shown = f'"{data}"' if rtype == "TXT" else data
    return f"publish {name}. {rtype} {shown} (see `mailconf dns-records`)"


@check("address")
async def check_address(ctx: Context) -> list[Finding]:
    """The host's A/AAAA records are the site's public addresses."""
    if not host_addresses(ctx.loaded.site):
        return [_warn("address", ctx.host, "the site gives no public address to check", "add host.ipv4 (and ipv6)")]
    findings = []
    for version, expected in ((4, ctx.loaded.site.host.ipv4), (6, ctx.loaded.site.host.ipv6)):
        rtype = "A" if version == 4 else "AAAA"
        found = set(await ctx.lookup.addresses(ctx.host, version))
        shown = ", ".join(sorted(found))
        if expected is None:
            if found:
                findings.append(
                    _warn(
                        "address",
                        ctx.host,
                        f"{rtype} {shown} is not in the site",
                        f"add host.ipv{version} to the site, or remove the record",
                    )
                )
        elif not found:
            findings.append(_error("address", ctx.host, f"no {rtype} record", _publish(ctx.host, rtype, expected)))
        elif expected not in found:
            findings.append(
                _error(
                    "address",
                    ctx.host,
                    f"{rtype} is {shown}, the site says {expected}",
                    f"set {ctx.host}. {rtype} {expected}",
                )
            )
        elif len(found) > 1:
            findings.append(
                _warn(
                    "address",
                    ctx.host,
                    f"{rtype} lists {shown}, the site only {expected}",
                    "remove the other addresses, or use them in the site",
                )
            )
        else:
            findings.append(_ok("address", ctx.host, f"{rtype} {expected}"))
    return findings


@check("ptr")
async def check_ptr(ctx: Context) -> list[Finding]:
    """Forward-confirmed reverse DNS: each address's PTR names the host, and the host resolves back to it."""
    findings = []
    for address in host_addresses(ctx.loaded.site):
        names, forward = await asyncio.gather(
            ctx.lookup.ptr(address), ctx.lookup.addresses(ctx.host, 6 if ":" in address else 4)
        )
        fix = f"ask the provider of {address} to set its PTR to {ctx.host}"
        if not names:
            findings.append(_error("ptr", address, "no reverse DNS (PTR record)", fix))
        elif ctx.host not in names:
            findings.append(_error("ptr", address, f"reverse DNS is {', '.join(names)}, not {ctx.host}", fix))
        elif address not in forward:
            findings.append(
                _error(
                    "ptr",
                    address,
                    f"{ctx.host} does not resolve back to {address} (FCrDNS fails)",
                    f"make {ctx.host} resolve to {address}",
                )
            )
        else:
            findings.append(_ok("ptr", address, f"PTR {ctx.host}, which resolves back (FCrDNS)"))
    return findings


@check("mx")
async def check_mx(ctx: Context, domain: str) -> list[Finding]:
    exchanges = await ctx.lookup.mx(domain)
    fix = _publish(domain, "MX", f"10 {ctx.host}.")
    if not exchanges:
        return [_error("mx", domain, "no MX record: senders fall back to the domain's own address", fix)]
    if ctx.host not in exchanges:
        return [_error("mx", domain, f"MX points at {', '.join(exchanges)}, not {ctx.host}", fix)]
    return [_ok("mx", domain, f"MX {', '.join(exchanges)}")]


SPF_FIXES = {
    "permerror": "make the record valid and within 10 lookups: receivers reject it as it is",
    "temperror": "make the names the record refers to resolvable",
}


def _mechanism(address: str) -> str:
    return f"{'ip6' if ':' in address else 'ip4'}:{address} before the `all`"


@check("spf")
async def check_spf(ctx: Context, domain: str) -> list[Finding]:
    """One SPF record that parses, authorises every host address and needs at most 10 lookups."""
    fix = _publish(domain, "TXT", spf_text(ctx.loaded.site))
    try:
        text = await spf.spf_record(ctx.lookup, domain)
        if text is None:
            return [_error("spf", domain, "no SPF record: receivers cannot tell your mail from forgeries", fix)]
        record = spf.parse_spf(text)
    except ValueError as exc:
        return [_error("spf", domain, f"SPF is broken: {exc}", fix)]
    findings = []
    lookups = await spf.count_lookups(ctx.lookup, domain)
    if lookups > spf.MAX_LOOKUPS:
        findings.append(
            _error(
                "spf",
                domain,
                f"SPF needs {lookups} DNS lookups; receivers stop at 10 (permerror)",
                "replace include/a/mx/exists with ip4:/ip6: mechanisms, or flatten the includes",
            )
        )
    if any(m.kind == "all" and m.qualifier in "+?" for m in record.mechanisms):
        findings.append(
            _warn("spf", domain, "SPF ends in +all/?all: any host may send as the domain", "end it in -all")
        )
    for address in host_addresses(ctx.loaded.site):
        state = spf.Evaluation()
        result = await spf.check_host(ctx.lookup, address, domain, state)
        if result != "pass":
            message = f"SPF gives {result} for the host's {address}"
            findings.append(_error("spf", domain, message, SPF_FIXES.get(result, f"add {_mechanism(address)}")))
        findings += [_warn("spf", domain, note, "use plain ip4:/ip6: mechanisms") for note in sorted(state.notes)]
    if not findings:
        findings.append(_ok("spf", domain, f"SPF authorises the host with {lookups} DNS lookup(s)"))
    return findings


DMARC_POLICIES = ("none", "quarantine", "reject")


def parse_dmarc(text: str) -> dict[str, str]:
    """The tags of a DMARC record (RFC 7489 6.3); ValueError says what a receiver would reject."""
    tags: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, equals, value = part.partition("=")
        if not equals:
            raise ValueError(f"{part!r} is not a tag=value pair")
        tags.setdefault(name.strip().lower(), value.strip())
    if next(iter(tags.items()), None) != ("v", "DMARC1"):
        raise ValueError("a DMARC record starts with v=DMARC1")
    if tags.get("p") not in DMARC_POLICIES:
        raise ValueError(f"p={tags.get('p', '')} must be one of {', '.join(DMARC_POLICIES)}")
    if tags.get("sp", "none") not in DMARC_POLICIES:
        raise ValueError(f"sp={tags['sp']} must be one of {', '.join(DMARC_POLICIES)}")
    for name in ("adkim", "aspf"):
        if tags.get(name, "r") not in ("r", "s"):
            raise ValueError(f"{name}={tags[name]} must be r or s")
    if not tags.get("pct", "100").isdigit() or int(tags.get("pct", "100")) > 100:
        raise ValueError(f"pct={tags['pct']} must be 0-100")
    for name in ("rua", "ruf"):
        for uri in filter(None, tags.get(name, "").split(",")):
            if ":" not in uri or (uri.startswith("mailto:") and "@" not in uri):
                raise ValueError(f"{name}: {uri!r} is not a mailto: address")
    return tags


@check("dmarc")
async def check_dmarc(ctx: Context, domain: str) -> list[Finding]:
    name = f"_dmarc.{domain}"
    wanted = dmarc_text(ctx.loaded.site, domain)
    records = [t for t in await ctx.lookup.txt(name) if t.lower().startswith("v=dmarc1")]
    if len(records) != 1:
        problem = "no DMARC record" if not records else f"{len(records)} DMARC records: receivers ignore them all"
        return [_error("dmarc", domain, problem, _publish(name, "TXT", wanted))]
    try:
        tags = parse_dmarc(records[0])
    except ValueError as exc:
        return [_error("dmarc", domain, f"DMARC is broken: {exc}", _publish(name, "TXT", wanted))]
    policy = ctx.loaded.site.dns.dmarc_policy
    if tags["p"] != policy:
        return [
            _warn("dmarc", domain, f"DMARC says p={tags['p']}, the site says {policy}", _publish(name, "TXT", wanted))
        ]
    if "rua" not in tags:
        return [_warn("dmarc", domain, "DMARC asks for no reports: failures go unseen", _publish(name, "TXT", wanted))]
    return [_ok("dmarc", domain, f"DMARC p={tags['p']}")]


@check("dkim")
async def check_dkim(ctx: Context, domain: str) -> list[Finding]:
    """For each selector, the published public key is the one beside the site."""
    findings = []
    for selector in ctx.loaded.site.dns.dkim_selectors:
        name = f"{selector}._domainkey.{domain}"
        local = public_key(ctx.loaded, selector, domain)
        published = [published_key(t) for t in await ctx.lookup.txt(name) if "p=" in t]
        if local is None:
            findings.append(
                _warn(
                    "dkim",
                    name,
                    "no local key, so nothing to compare",
                    f"mailconf dkim-keygen -c {ctx.loaded.path} --selector {selector}, then publish it",
                )
            )
            continue
        private = key_files(ctx.loaded, selector, domain).private
        if private.exists() and private.stat().st_mode & 0o077:
            findings.append(_warn("dkim", name, f"{private} is readable by others", f"chmod 600 {private}"))
        fix = _publish(name, "TXT", dkim_text(local))
        if not published:
            findings.append(_error("dkim", name, "DKIM key not published: signatures cannot be verified", fix))
        elif local not in published:
            findings.append(_error("dkim", name, "the published DKIM key is not the local one (stale or revoked)", fix))
        else:
            findings.append(_ok("dkim", name, "published key matches the local key"))
    return findings


@check("mta-sts")
async def check_mta_sts(ctx: Context, domain: str) -> list[Finding]:
    """The TXT id is the id of the policy mailconf writes, and the policy host exists."""
    policy = mta_sts_policy(ctx.loaded.site)
    if policy is None:
        return []
    name, wanted = f"_mta-sts.{domain}", mta_sts_text(policy)
    records = [t for t in await ctx.lookup.txt(name) if t.startswith("v=STSv1")]
    if not records:
        return [
            _warn(
                "mta-sts", domain, "no MTA-STS record: senders may deliver without TLS", _publish(name, "TXT", wanted)
            )
        ]
    if wanted.partition("id=")[2] not in {_tag(r, "id") for r in records}:
        return [
            _error(
                "mta-sts",
                domain,
                f"MTA-STS id is {_tag(records[0], 'id') or 'missing'}, the policy's is "
                f"{wanted.partition('id=')[2]}: senders keep an old policy",
                _publish(name, "TXT", wanted),
            )
        ]
    policy_host = f"mta-sts.{domain}"
    if not await ctx.lookup.addresses(policy_host, 4) and not await ctx.lookup.addresses(policy_host, 6):
        return [
            _warn(
                "mta-sts",
                domain,
                f"{policy_host} does not resolve, so nobody can fetch the policy",
                _publish(policy_host, "CNAME", f"{ctx.host}."),
            )
        ]
    return [_ok("mta-sts", domain, f"MTA-STS id matches the {ctx.loaded.site.dns.mta_sts} policy")]


@check("tls-rpt")
async def check_tls_rpt(ctx: Context, domain: str) -> list[Finding]:
    name, wanted = f"_smtp._tls.{domain}", tls_rpt_text(ctx.loaded.site, domain)
    records = [t for t in await ctx.lookup.txt(name) if t.startswith("v=TLSRPTv1")]
    if len(records) != 1 or not _tag(records[0], "rua"):
        return [
            _warn(
                "tls-rpt", domain, "no usable TLS-RPT record: TLS failures go unreported", _publish(name, "TXT", wanted)
            )
        ]
    return [_ok("tls-rpt", domain, f"TLS reports to {_tag(records[0], 'rua')}")]


def _tag(text: str, name: str) -> str:
    for part in text.split(";"):
        key, _, value = part.partition("=")
        if key.strip() == name:
            return value.strip()
    return ""


def _ok(check: str, subject: str, message: str) -> Finding:
    return Finding(check, subject, "ok", message)


def _warn(check: str, subject: str, message: str, fix: str) -> Finding:
    return Finding(check, subject, "warning", message, fix)


def _error(check: str, subject: str, message: str, fix: str) -> Finding:
    return Finding(check, subject, "error", message, fix)


HOST_CHECKS: list[Check] = [check_address, check_ptr]
DOMAIN_CHECKS: list[Check] = [check_mx, check_spf, check_dmarc, check_dkim, check_mta_sts, check_tls_rpt]


async def check_dns(loaded: LoadedSite, lookup: Lookup) -> list[Finding]:
    """Every check for the host and each domain, run concurrently, in a stable order."""
    ctx = Context(loaded, lookup)
    try:  # one question first, so that a silent name server gives one clear line, not one per check
        await lookup.records(loaded.site.domains[0].name, "SOA")
    except DnsTimeout as exc:
        return [_error("nameserver", lookup.server, str(exc), "check the address and port, and that it is running")]
    except DnsFailure:
        pass  # the checks report it for their own names
    domains = [d.name for d in loaded.site.domains]
    runs = [c(ctx) for c in HOST_CHECKS] + [c(ctx, d) for d in domains for c in DOMAIN_CHECKS]
    return [f for found in await asyncio.gather(*runs) for f in found]


def text_report(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"{f.severity:<8} {f.check:<8} {f.subject}: {f.message}")
        if f.fix:
            lines.append(f"{'':<17} fix: {f.fix}")
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    lines.append(f"{errors} error(s), {warnings} warning(s), {len(findings) - errors - warnings} ok")
    return "\n".join(lines)


def json_report(findings: list[Finding]) -> str:
    return json.dumps({"findings": [asdict(f) for f in findings]}, indent=2)
